//! `berth container cp|export|commit` against real containers, running and
//! stopped, on the real kernel. Root required.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use support::Engine;

/// A detached busybox that stays up.
fn run_sleeper(e: &Engine, name: &str) {
    e.ok(&["container", "run", "-d", "--name", name, "busybox", "sleep", "1000"]);
}

/// Entry names of a tar stream.
fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Runs berth with `input` on stdin.
fn berth_with_stdin(e: &Engine, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(e.root.path())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn mount_count() -> usize {
    fs::read_to_string("/proc/self/mountinfo").unwrap().lines().count()
}

fn finish(e: &Engine, names: &[&str]) {
    let mut args = vec!["container", "rm", "-f"];
    args.extend_from_slice(names);
    e.ok(&args);
    e.assert_no_residue();
}

#[test]
fn cp_in_and_out_of_a_running_container() {
    let e = Engine::new();
    run_sleeper(&e, "run-cp");
    let host = e.dir.path().join("host");
    fs::create_dir_all(host.join("tree/sub")).unwrap();
    fs::write(host.join("note.txt"), b"hello from the host\n").unwrap();
    fs::set_permissions(host.join("note.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::write(host.join("tree/sub/deep"), b"deep\n").unwrap();
    let host_s = host.to_str().unwrap();

    // A file to a new name, a file into a directory, a directory.
    e.ok(&["container", "cp", &format!("{host_s}/note.txt"), "run-cp:/tmp/renamed"]);
    e.ok(&["container", "cp", &format!("{host_s}/note.txt"), "run-cp:/tmp"]);
    e.ok(&["container", "cp", &format!("{host_s}/tree"), "run-cp:/tmp"]);
    e.ok(&["container", "cp", &format!("{host_s}/tree"), "run-cp:/renamed-tree"]);
    e.ok(&["container", "cp", &format!("{host_s}/tree/."), "run-cp:/tmp"]);
    let read = |path: &str| e.ok(&["container", "exec", "run-cp", "cat", path]);
    assert_eq!(read("/tmp/renamed"), "hello from the host\n");
    assert_eq!(read("/tmp/note.txt"), "hello from the host\n");
    assert_eq!(read("/tmp/tree/sub/deep"), "deep\n");
    assert_eq!(read("/renamed-tree/sub/deep"), "deep\n");
    assert_eq!(read("/tmp/sub/deep"), "deep\n");
    let mode = e.ok(&["container", "exec", "run-cp", "stat", "-c", "%a %u", "/tmp/note.txt"]);
    assert_eq!(mode, "640 0\n");
    // Docker refuses a file onto a missing directory path.
    let out = e.berth(&["container", "cp", &format!("{host_s}/note.txt"), "run-cp:/nowhere/"]);
    assert!(!out.status.success());

    // Out: a file written inside, a directory, and a tar stream on stdout.
    e.ok(&[
        "container",
        "exec",
        "run-cp",
        "sh",
        "-c",
        "mkdir -p /data/d && echo inside > /data/d/f && chmod 600 /data/d/f",
    ]);
    let back = e.dir.path().join("back");
    fs::create_dir(&back).unwrap();
    let back_s = back.to_str().unwrap();
    e.ok(&["container", "cp", "run-cp:/data/d/f", &format!("{back_s}/f-copy")]);
    e.ok(&["container", "cp", "run-cp:/data", back_s]);
    assert_eq!(fs::read_to_string(back.join("f-copy")).unwrap(), "inside\n");
    assert_eq!(fs::read_to_string(back.join("data/d/f")).unwrap(), "inside\n");
    let mode = fs::metadata(back.join("data/d/f")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let out = e.berth(&["container", "cp", "run-cp:/data", "-"]);
    assert!(out.status.success());
    let names = tar_names(&out.stdout);
    assert!(names.iter().any(|n| n == "data/d/f"), "{names:?}");
    let out = e.berth(&["container", "cp", "run-cp:/no/such", back_s]);
    assert!(!out.status.success());
    assert!(
        support::stderr(&out).contains("Could not find the file"),
        "{}",
        support::stderr(&out)
    );

    // In from a tar stream on stdin.
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(7);
    header.set_mode(0o755);
    tar.append_data(&mut header, "streamed/run.sh", &b"echo ok"[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let out = berth_with_stdin(&e, &["container", "cp", "-", "run-cp:/tmp"], &tar);
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert_eq!(
        e.ok(&["container", "exec", "run-cp", "sh", "/tmp/streamed/run.sh"]),
        "ok\n"
    );

    finish(&e, &["run-cp"]);
}

#[test]
fn cp_in_and_out_of_stopped_and_created_containers() {
    let e = Engine::new();
    let mounts = mount_count();
    let host = e.dir.path().join("host");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("in.txt"), b"copied while created\n").unwrap();
    let host_s = host.to_str().unwrap();

    // Created, never started: copy in, then start and read it.
    e.ok(&["container", "create", "--name", "made", "busybox", "cat", "/in.txt"]);
    e.ok(&["container", "cp", &format!("{host_s}/in.txt"), "made:/"]);
    assert_eq!(mount_count(), mounts, "cp into a created container left a mount");
    e.ok(&["container", "start", "made"]);
    e.ok(&["container", "wait", "made"]);
    assert_eq!(e.ok(&["container", "logs", "made"]), "copied while created\n");

    // Exited: copy out what it wrote, copy in, start it again and see it.
    e.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "done",
        "busybox",
        "sh",
        "-c",
        "echo written > /out.txt; [ -f /in.txt ] && cat /in.txt",
    ]);
    e.ok(&["container", "wait", "done"]);
    let back = e.dir.path().join("back.txt");
    e.ok(&["container", "cp", "done:/out.txt", back.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&back).unwrap(), "written\n");
    let out = e.berth(&["container", "cp", "done:/out.txt", "-"]);
    assert!(out.status.success());
    assert_eq!(tar_names(&out.stdout), ["out.txt"]);
    e.ok(&["container", "cp", &format!("{host_s}/in.txt"), "done:/in.txt"]);
    assert_eq!(mount_count(), mounts, "cp with a stopped container left a mount");
    e.ok(&["container", "start", "done"]);
    e.ok(&["container", "wait", "done"]);
    assert!(e.ok(&["container", "logs", "done"]).contains("copied while created"));

    finish(&e, &["made", "done"]);
}

#[test]
fn symlinks_in_the_container_never_reach_the_host() {
    let e = Engine::new();
    run_sleeper(&e, "evil");
    e.ok(&["container", "exec", "evil", "ln", "-s", "/etc", "/tmp/evil"]);
    e.ok(&[
        "container",
        "exec",
        "evil",
        "ln",
        "-s",
        "../../../../../etc/passwd",
        "/tmp/up",
    ]);
    let host = e.dir.path().join("host");
    fs::create_dir_all(&host).unwrap();
    let probe = format!("berth-cp-probe-{}", std::process::id());
    fs::write(host.join("x"), b"landed inside\n").unwrap();
    let x = host.join("x");
    let x = x.to_str().unwrap();
    let inside_passwd = e.ok(&["container", "exec", "evil", "cat", "/etc/passwd"]);
    let inside_hostname = e.ok(&["container", "exec", "evil", "cat", "/etc/hostname"]);
    assert_ne!(inside_passwd, fs::read_to_string("/etc/passwd").unwrap());

    let check = |state: &str| {
        // Reads through the link give the container's files.
        let got = host.join(format!("hostname-{state}"));
        e.ok(&["container", "cp", "evil:/tmp/evil/hostname", got.to_str().unwrap()]);
        if state == "running" {
            assert_eq!(fs::read_to_string(&got).unwrap(), inside_hostname);
        }
        let got = host.join(format!("passwd-{state}"));
        e.ok(&["container", "cp", "evil:/tmp/evil/passwd", got.to_str().unwrap()]);
        assert_eq!(fs::read_to_string(&got).unwrap(), inside_passwd);
        let got = host.join(format!("up-{state}"));
        e.ok(&["container", "cp", "-L", "evil:/tmp/up", got.to_str().unwrap()]);
        assert_eq!(fs::read_to_string(&got).unwrap(), inside_passwd);
        // Without -L the link itself is copied.
        let got = host.join(format!("link-{state}"));
        e.ok(&["container", "cp", "evil:/tmp/evil", got.to_str().unwrap()]);
        assert_eq!(fs::read_link(&got).unwrap(), Path::new("/etc"));

        // Writes through the link land in the container's /etc.
        let name = format!("{probe}-{state}");
        e.ok(&["container", "cp", x, &format!("evil:/tmp/evil/{name}")]);
        assert!(!Path::new("/etc").join(&name).exists(), "cp wrote the host's /etc");
        // A tar stream whose own link points at /etc stays inside too.
        let mut tar = tar::Builder::new(Vec::new());
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        tar.append_link(&mut link, "jump", "/etc").unwrap();
        let mut file = tar::Header::new_gnu();
        file.set_size(3);
        file.set_mode(0o644);
        tar.append_data(&mut file, format!("jump/{name}-tar"), &b"tar"[..])
            .unwrap();
        let out = berth_with_stdin(&e, &["container", "cp", "-", "evil:/tmp"], &tar.into_inner().unwrap());
        assert!(out.status.success(), "{}", support::stderr(&out));
        assert!(
            !Path::new("/etc").join(format!("{name}-tar")).exists(),
            "tar wrote the host's /etc"
        );
        name
    };
    let running = check("running");
    assert_eq!(
        e.ok(&["container", "exec", "evil", "cat", &format!("/etc/{running}")]),
        "landed inside\n"
    );
    assert_eq!(
        e.ok(&["container", "exec", "evil", "cat", &format!("/etc/{running}-tar")]),
        "tar"
    );

    e.ok(&["container", "stop", "-t", "0", "evil"]);
    let stopped = check("stopped");
    let out = e.berth(&["container", "cp", &format!("evil:/etc/{stopped}"), "-"]);
    assert!(out.status.success());
    assert_eq!(tar_names(&out.stdout), [stopped]);

    finish(&e, &["evil"]);
}

#[test]
fn export_running_and_stopped_containers() {
    let e = Engine::new();
    e.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "exp",
        "busybox",
        "sh",
        "-c",
        "echo data > /written; exec sleep 1000",
    ]);
    for _ in 0..200 {
        if e.berth(&["container", "exec", "exp", "test", "-f", "/written"])
            .status
            .success()
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let file = e.dir.path().join("running.tar");
    e.ok(&["container", "export", "-o", file.to_str().unwrap(), "exp"]);
    let check = |bytes: &[u8]| {
        let names = tar_names(bytes);
        assert!(names.iter().any(|n| n == "bin/busybox"), "no bin/busybox");
        assert!(names.iter().any(|n| n == "written"), "no /written");
        // The merged overlay only: nothing from /proc or /sys mounts.
        assert!(
            !names.iter().any(|n| n.starts_with("proc/") && n.len() > 5),
            "proc leaked in"
        );
        assert!(
            !names.iter().any(|n| n.starts_with("sys/") && n.len() > 4),
            "sys leaked in"
        );
    };
    check(&fs::read(&file).unwrap());
    e.ok(&["container", "stop", "-t", "0", "exp"]);
    let out = e.berth(&["container", "export", "exp"]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    check(&out.stdout);
    finish(&e, &["exp"]);
}

#[test]
fn commit_makes_an_image_that_runs() {
    let e = Engine::new();
    e.ok(&[
        "container",
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo committed > /marker",
    ]);
    let id = e.ok(&[
        "container",
        "commit",
        "--change",
        r#"CMD ["cat","/marker"]"#,
        "-m",
        "add a marker",
        "src",
        "marked:v1",
    ]);
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let out = e.ok(&["container", "run", "--name", "use", "marked:v1"]);
    assert_eq!(out, "committed\n");
    let by_id = e.ok(&["container", "run", "--name", "again", &id[7..19], "cat", "/marker"]);
    assert_eq!(by_id, "committed\n");

    // A running container commits too (paused meanwhile, then resumed).
    run_sleeper(&e, "live");
    e.ok(&["container", "exec", "live", "sh", "-c", "echo live > /live"]);
    let live = e.ok(&["container", "commit", "live"]);
    assert!(live.trim().starts_with("sha256:"));
    let inspect: serde_json::Value = serde_json::from_str(&e.ok(&["container", "inspect", "live"])).unwrap();
    assert_eq!(inspect[0]["State"]["Status"], "running");
    assert_eq!(
        e.ok(&["container", "run", "--name", "lived", live.trim(), "cat", "/live"]),
        "live\n"
    );

    finish(&e, &["src", "use", "again", "live", "lived"]);
}
