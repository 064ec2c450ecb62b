//! `container ls`, `inspect` and `top`: what berth shows of containers.

use std::fs;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::bail;
use clap::ValueEnum;

use crate::runtime::config::{ContainerState, Status};
use crate::runtime::container::{self, format_rfc3339, parse_rfc3339, Container};
use crate::runtime::ports;
use crate::store::Root;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

/// The STATUS column: `Up 3 minutes`, `Exited (0) 2 seconds ago`, ….
fn status_text(state: &ContainerState) -> String {
    let ago = |t: &Option<String>| -> String {
        t.as_deref()
            .and_then(parse_rfc3339)
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map(human_duration)
            .unwrap_or_else(|| "?".into())
    };
    match state.status {
        Status::Running => format!("Up {}", ago(&state.started_at)),
        Status::Paused => format!("Up {} (Paused)", ago(&state.started_at)),
        Status::Exited => format!(
            "Exited ({}) {} ago{}",
            state.exit_code.unwrap_or_default(),
            ago(&state.finished_at),
            if state.oom_killed { " (OOMKilled)" } else { "" }
        ),
        Status::Created => "Created".into(),
        Status::Dead => "Dead".into(),
    }
}

pub(super) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".into(),
        1..=59 => format!("{s} seconds"),
        60..=3599 => format!("{} minutes", s / 60),
        3600..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

pub(super) fn list(root: &Root, all: bool, quiet: bool, format: ListFormat) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    for c in container::list(root)? {
        let state = match c.state() {
            Ok(state) => state,
            // Removed since it was listed (by its monitor, `run --rm -d`).
            Err(e) if e.is_gone() => continue,
            Err(e) => return Err(e.into()),
        };
        if !all && !matches!(state.status, Status::Running | Status::Paused) {
            continue;
        }
        rows.push((c.clone(), state));
    }
    let mut out = std::io::stdout().lock();
    if quiet {
        for (c, _) in &rows {
            writeln!(out, "{}", c.short_id())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if format == ListFormat::Json {
        for (c, s) in &rows {
            let row = serde_json::json!({
                "ID": c.short_id(), "Image": c.config.image, "Command": c.config.args.join(" "),
                "CreatedAt": c.config.created, "State": s.status.to_string(), "Status": status_text(s),
                "Names": c.config.name, "ExitCode": s.exit_code, "OOMKilled": s.oom_killed, "Labels": c.config.labels,
                "Ports": ports_column(c),
            });
            writeln!(out, "{row}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = vec![["CONTAINER ID", "IMAGE", "COMMAND", "STATUS", "PORTS", "NAMES"].map(String::from)];
    for (c, state) in &rows {
        let mut command = format!("\"{}\"", c.config.args.join(" "));
        if command.len() > 22 {
            command = format!(
                "{}…\"",
                &command[..command.char_indices().nth(20).map_or(command.len(), |(i, _)| i)]
            );
        }
        table.push([
            c.short_id().to_string(),
            c.config.image.clone(),
            command,
            status_text(state),
            ports_column(c),
            c.config.name.clone(),
        ]);
    }
    write_columns(&mut out, &table)?;
    Ok(ExitCode::SUCCESS)
}

/// Rows as columns as wide as their widest cell plus three spaces (docker's
/// tabwriter): a long image name never runs into the next column.
fn write_columns<const N: usize>(out: &mut impl Write, table: &[[String; N]]) -> std::io::Result<()> {
    let mut widths = [0usize; N];
    for row in table {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in table {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

pub(super) fn inspect(c: &Container) -> anyhow::Result<serde_json::Value> {
    let s = c.state()?;
    Ok(serde_json::json!({
        "Id": c.config.id,
        "Name": format!("/{}", c.config.name),
        "Created": c.config.created,
        "Path": c.config.args.first(),
        "Args": c.config.args.get(1..).unwrap_or_default(),
        "State": {
            "Status": s.status.to_string(),
            "Running": s.status == Status::Running,
            "Paused": s.status == Status::Paused,
            "OOMKilled": s.oom_killed,
            "Dead": s.status == Status::Dead,
            "Pid": s.pid.unwrap_or(0),
            "ExitCode": s.exit_code.unwrap_or(0),
            "Error": s.error.clone().unwrap_or_default(),
            "StartedAt": s.started_at.clone().unwrap_or_else(|| format_rfc3339(SystemTime::UNIX_EPOCH)),
            "FinishedAt": s.finished_at.clone().unwrap_or_else(|| format_rfc3339(SystemTime::UNIX_EPOCH)),
        },
        "Image": c.config.image_id,
        "LogPath": c.log_path(),
        "Config": {
            "Hostname": c.config.hostname,
            "User": c.config.user,
            "Env": c.config.env,
            "Cmd": c.config.args,
            "Image": c.config.image,
            "WorkingDir": c.config.working_dir,
            "Labels": c.config.labels,
            "StopSignal": c.config.stop_signal,
            "StopTimeout": c.config.stop_timeout,
            "Tty": c.config.tty,
            "OpenStdin": c.config.interactive,
        },
        "NetworkSettings": {
            "Ports": network_ports(c),
        },
        "HostConfig": {
            "Privileged": c.config.privileged,
            "ReadonlyRootfs": c.config.read_only,
            "CapAdd": c.config.capabilities,
            "NetworkMode": c.config.network,
            "AutoRemove": c.config.removed_on_exit,
            "Init": c.config.init,
            "Resources": c.config.resources,
            "Mounts": c.config.mounts,
            "Devices": c.config.devices,
            "Ulimits": c.config.rlimits,
            "Sysctls": c.config.sysctls,
            "ShmSize": c.config.shm_size,
            "SecurityOpt": {"seccomp": c.config.seccomp, "no-new-privileges": c.config.no_new_privileges},
        },
    }))
}

/// `0.0.0.0:8080->80/tcp, …` as `docker ps` shows them.
fn ports_column(c: &Container) -> String {
    let entries: Vec<String> = c
        .config
        .ports
        .iter()
        .map(|p| format!("{}->{}/{}", ports::host_address(p), p.container_port, p.protocol))
        .collect();
    entries.join(", ")
}

/// `{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}`, docker's shape.
fn network_ports(c: &Container) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for p in &c.config.ports {
        let binding = serde_json::json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()});
        let entry = map
            .entry(format!("{}/{}", p.container_port, p.protocol))
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(list) = entry {
            list.push(binding);
        }
    }
    serde_json::Value::Object(map)
}

/// `container port C [PORT[/proto]]`.
pub(super) fn port(root: &Root, name: &str, filter: Option<&str>) -> anyhow::Result<ExitCode> {
    let c = container::find(root, name)?;
    let Some(filter) = filter else {
        for p in &c.config.ports {
            println!("{}", ports::describe(p));
        }
        return Ok(ExitCode::SUCCESS);
    };
    let (number, protocol) = filter.split_once('/').unwrap_or((filter, "tcp"));
    let number: u16 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid port {filter:?}: expected PORT[/tcp|udp]"))?;
    let matching: Vec<_> = c
        .config
        .ports
        .iter()
        .filter(|p| p.container_port == number && p.protocol.to_string() == protocol)
        .collect();
    if matching.is_empty() {
        bail!("no public port '{number}/{protocol}' published for {}", c.config.name);
    }
    for p in matching {
        println!("{}", ports::host_address(p));
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn top(root: &Root, name: &str) -> anyhow::Result<ExitCode> {
    let c = container::find(root, name)?;
    if !matches!(c.state()?.status, Status::Running | Status::Paused) {
        bail!("container {} is not running", c.config.name);
    }
    let cgroup = crate::runtime::cgroups::Cgroup::open(&Container::cgroup_name(&root.tag(), &c.config.id))?;
    let mut pids = cgroup.pids()?;
    pids.sort_unstable();
    println!("{:<10}{:<10}CMD", "PID", "PPID");
    for pid in pids {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_string();
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string))
            .unwrap_or_default();
        println!("{pid:<10}{ppid:<10}{cmd}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::write_columns;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let table = [
            ["ID", "IMAGE", "NAMES"].map(String::from),
            ["abc", "docker.io/library/busybox:latest", "web"].map(String::from),
        ];
        let mut out = Vec::new();
        write_columns(&mut out, &table).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("ID    IMAGE{}NAMES", " ".repeat(27 + 3)));
        assert_eq!(lines[1], "abc   docker.io/library/busybox:latest   web");
    }
}
