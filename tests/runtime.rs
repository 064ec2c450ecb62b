//! The container runtime on the real kernel, driven through the binary:
//! isolation, limits, lifecycle, logs, exec, failure paths, residue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{stderr, stdout, Engine};

#[test]
fn container_is_isolated_like_docker() {
    let e = Engine::new();
    let script = r#"
        hostname
        echo "pid=$$"
        grep -E '^(CapEff|NoNewPrivs|Seccomp|SigIgn|SigBlk):' /proc/self/status
        echo "keys=$(cat /proc/keys | wc -c)"
        echo "timer_list=$(cat /proc/timer_list | wc -c)"
        echo 1 > /proc/sys/kernel/shm_rmid_forced 2>/dev/null && echo procsys=rw || echo procsys=ro
        touch /sys/x 2>/dev/null && echo sys=rw || echo sys=ro
        echo "user=$(id -u):$(id -g)"
        echo "cwd=$(pwd)"
        echo "env=$GREETING"
        ls /dev | tr '\n' ' '; echo
        exit 7
    "#;
    let out = e.berth(&[
        "container",
        "run",
        "--rm",
        "--hostname",
        "isolated",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "exit code propagates; stderr: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    for expected in [
        "isolated\n",
        "pid=1\n",
        "CapEff:\t00000000a80425fb\n",
        "NoNewPrivs:\t0\n",
        "Seccomp:\t2\n",
        // Nothing of the engine's own signal setup (Rust ignores SIGPIPE)
        // leaks into the container: `yes | head` must end by SIGPIPE.
        "SigIgn:\t0000000000000000\n",
        "SigBlk:\t0000000000000000\n",
        "keys=0\n",
        "timer_list=0\n",
        "procsys=ro\n",
        "sys=ro\n",
        "user=0:0\n",
        "cwd=/tmp\n",
        "env=hi\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    for node in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx",
    ] {
        assert!(text.contains(&format!("{node} ")), "/dev/{node} missing in:\n{text}");
    }
    e.assert_no_residue();
}

#[test]
fn user_groups_and_security_options() {
    let e = Engine::new();
    let out = e.ok(&["container", "run", "--rm", "-u", "app", "busybox", "id"]);
    assert_eq!(out.trim(), "uid=1000(app) gid=1000(app) groups=29(audio),44(video)");
    let out = e.ok(&[
        "container",
        "run",
        "--rm",
        "-u",
        "4242:44",
        "busybox",
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    assert_eq!(out, "4242\n44\n");
    let out = e.ok(&[
        "container",
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_BIND_SERVICE",
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "grep",
        "-E",
        "^(CapEff|NoNewPrivs|Seccomp):",
        "/proc/self/status",
    ]);
    assert_eq!(out, "CapEff:\t0000000000000400\nNoNewPrivs:\t1\nSeccomp:\t0\n");
    let out = e.ok(&[
        "container",
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "grep",
        "^CapEff",
        "/proc/self/status",
    ]);
    // Privileged: every capability the host gives berth itself.
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_eff = host.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    assert_eq!(out.trim(), host_eff);
    e.assert_no_residue();
}

#[test]
fn cgroup_limits_are_visible_inside() {
    let e = Engine::new();
    let out = e.ok(&[
        "container", "run", "--rm", "-m", "64m", "--cpus", "0.5", "--pids-limit", "20", "--ulimit", "nofile=1024:2048",
        "busybox", "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max; ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(out, "67108864\n50000\n20\n1024\n2048\n");
    e.assert_no_residue();
}

#[test]
fn mounts_read_only_rootfs_and_tmpfs() {
    let e = Engine::new();
    let host = e.dir.path().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in.txt"), "from host\n").unwrap();
    let bind = format!("{}:/data", host.display());
    let out = e.ok(&[
        "container",
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "cat /data/in.txt; echo made > /data/out.txt",
    ]);
    assert_eq!(out, "from host\n");
    assert_eq!(std::fs::read_to_string(host.join("out.txt")).unwrap(), "made\n");

    let ro = format!("{}:/data:ro", host.display());
    let out = e.berth(&["container", "run", "--rm", "-v", &ro, "busybox", "touch", "/data/nope"]);
    assert_ne!(out.status.code(), Some(0), "read-only bind must refuse writes");

    let out = e.berth(&["container", "run", "--rm", "--read-only", "--tmpfs", "/scratch:size=1m", "busybox", "sh", "-c",
        "touch /rootfile 2>/dev/null && echo root=rw || echo root=ro; dd if=/dev/zero of=/scratch/f bs=1k count=2048 2>/dev/null && echo tmpfs=unbounded || echo tmpfs=full"]);
    assert_eq!(stdout(&out), "root=ro\ntmpfs=full\n");
    e.assert_no_residue();
}

#[test]
fn detached_logs_exec_stop_and_rm() {
    let e = Engine::new();
    let id = e.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo out-line; echo err-line >&2; exec sleep 1000",
    ]);
    assert_eq!(id.trim().len(), 64);
    let listed = e.ok(&["container", "ls"]);
    assert!(listed.contains("web") && listed.contains("Up "), "{listed}");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = e.berth(&["container", "logs", "web"]);
        if stdout(&out).contains("out-line") && stderr(&out).contains("err-line") {
            break;
        }
        assert!(Instant::now() < deadline, "logs never arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stamped = e.ok(&["container", "logs", "-t", "--tail", "1", "web"]);
    assert!(stamped.is_empty() || stamped.contains('T'), "{stamped}");

    let out = e.berth(&["container", "exec", "web", "sh", "-c", "hostname; echo $$; exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines[0], &id.trim()[..12]);
    assert_ne!(lines[1], "1", "exec runs beside pid 1");
    // exec joins the container's cgroup in every hierarchy: its own paths
    // read like pid 1's (both `/` in the container's cgroup namespace).
    let both = e.ok(&[
        "container",
        "exec",
        "web",
        "sh",
        "-c",
        "cat /proc/self/cgroup; echo ==; cat /proc/1/cgroup",
    ]);
    let (own, init) = both.split_once("==\n").unwrap();
    assert_eq!(own, init, "{both}");
    assert!(own.lines().all(|l| l.ends_with(":/")), "{both}");
    assert_eq!(e.ok(&["container", "exec", "-u", "app", "web", "id", "-u"]), "1000\n");
    // The CLI's ignored SIGPIPE does not reach the exec'd command.
    assert_eq!(
        e.ok(&["container", "exec", "web", "grep", "SigIgn", "/proc/self/status"]),
        "SigIgn:\t0000000000000000\n"
    );
    let out = e.berth(&["container", "exec", "web", "no-such-binary"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("executable file not found in $PATH"),
        "{}",
        stderr(&out)
    );

    let top = e.ok(&["container", "top", "web"]);
    assert!(top.contains("sleep 1000"), "{top}");

    // `sleep` as pid 1 has no SIGTERM handler: stop kills it after -t.
    let started = Instant::now();
    e.ok(&["container", "stop", "-t", "1", "web"]);
    assert!(started.elapsed() >= Duration::from_millis(900));
    let inspect: serde_json::Value = serde_json::from_str(&e.ok(&["container", "inspect", "web"])).unwrap();
    assert_eq!(inspect[0]["State"]["Status"], "exited");
    assert_eq!(inspect[0]["State"]["ExitCode"], 137);
    let all = e.ok(&["container", "ls", "-a"]);
    assert!(all.contains("Exited (137)"), "{all}");

    let out = e.berth(&["container", "run", "-d", "--name", "web", "busybox", "true"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));

    e.ok(&["container", "rm", "web"]);
    e.assert_no_residue();
}

#[test]
fn rm_containers_get_a_volatile_rootfs_and_survive_a_restart() {
    let e = Engine::new();
    let root_mount = "grep ' / / ' /proc/self/mountinfo";
    // `--rm`: the upper dir is thrown away, so the overlay skips syncs.
    let thrown = e.ok(&["container", "run", "--rm", "busybox", "sh", "-c", root_mount]);
    assert!(thrown.contains("overlay") && thrown.contains("volatile"), "{thrown}");
    let kept = e.ok(&["container", "run", "--name", "kept", "busybox", "sh", "-c", root_mount]);
    assert!(kept.contains("overlay") && !kept.contains("volatile"), "{kept}");
    e.ok(&["container", "rm", "kept"]);

    // A detached `--rm` container is removed when it stops, but kept by a
    // restart (as docker's): its volatile overlay mounts again, with what
    // it wrote.
    let run_rm_detached = |name: &str, command: &str| {
        e.ok(&[
            "container",
            "run",
            "-d",
            "--rm",
            "--name",
            name,
            "busybox",
            "sh",
            "-c",
            command,
        ]);
    };
    run_rm_detached("again", "echo kept-file > /written; exec sleep 1000");
    let inspect: serde_json::Value = serde_json::from_str(&e.ok(&["container", "inspect", "again"])).unwrap();
    assert_eq!(inspect[0]["HostConfig"]["AutoRemove"], true);
    let exec_ok = |args: &[&str]| {
        e.berth(&[&["container", "exec", "again"], args].concat())
            .status
            .success()
    };
    wait_until("the file appears", || exec_ok(&["test", "-f", "/written"]));
    e.ok(&["container", "restart", "-t", "0", "again"]);
    let after = e.ok(&[
        "container",
        "exec",
        "again",
        "sh",
        "-c",
        &format!("cat /written; {root_mount}"),
    ]);
    assert!(
        after.starts_with("kept-file\n") && after.contains("volatile"),
        "{after}"
    );
    e.ok(&["container", "stop", "-t", "0", "again"]);
    wait_until("the stopped --rm container is removed", || {
        e.ok(&["container", "ls", "-aq"]).trim().is_empty()
    });
    // `rm -f` races its monitor's own removal, and succeeds either way.
    for _ in 0..3 {
        run_rm_detached("raced", "exec sleep 1000");
        e.ok(&["container", "rm", "-f", "raced"]);
    }
    e.assert_no_residue();
}

/// Polls `done` every 50 ms for up to 10 s; fails naming `what`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn pause_freezes_and_unpause_resumes() {
    let e = Engine::new();
    e.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/next; mv /tmp/next /tmp/count; done",
    ]);
    let inspect: serde_json::Value = serde_json::from_str(&e.ok(&["container", "inspect", "counter"])).unwrap();
    let pid = inspect[0]["State"]["Pid"].as_i64().unwrap();
    // The loop replaces the file by rename, so every read sees a number
    // (once the first one exists).
    let count = || -> u64 {
        for _ in 0..200 {
            let text = std::fs::read_to_string(format!("/proc/{pid}/root/tmp/count")).unwrap_or_default();
            if let Ok(n) = text.trim().parse() {
                return n;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the counter file never became readable")
    };
    std::thread::sleep(Duration::from_millis(300));
    e.ok(&["container", "pause", "counter"]);
    let frozen = count();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(), frozen, "the counter moved while paused");
    assert!(e.ok(&["container", "ls"]).contains("(Paused)"));
    let out = e.berth(&["container", "exec", "counter", "true"]);
    assert_ne!(out.status.code(), Some(0), "exec into a paused container is refused");
    e.ok(&["container", "unpause", "counter"]);
    // Under load the loop may take a while to get scheduled again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while count() <= frozen {
        assert!(Instant::now() < deadline, "the counter did not resume");
        std::thread::sleep(Duration::from_millis(20));
    }
    e.ok(&["container", "rm", "-f", "counter"]);
    e.assert_no_residue();
}

#[test]
fn init_reaps_and_forwards_signals() {
    let e = Engine::new();
    e.ok(&[
        "container",
        "run",
        "-d",
        "--init",
        "--name",
        "tini",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    e.ok(&["container", "stop", "-t", "10", "tini"]);
    assert!(started.elapsed() < Duration::from_secs(5), "SIGTERM was not forwarded");
    let logs = e.ok(&["container", "logs", "tini"]);
    assert!(logs.contains("got-term"), "{logs}");
    let inspect: serde_json::Value = serde_json::from_str(&e.ok(&["container", "inspect", "tini"])).unwrap();
    assert_eq!(inspect[0]["State"]["ExitCode"], 0);
    e.ok(&["container", "rm", "tini"]);
    e.assert_no_residue();
}

#[test]
fn oom_kill_is_detected() {
    let e = Engine::new();
    let out = e.berth(&[
        "container",
        "run",
        "--name",
        "hog",
        "-m",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "sh",
        "-c",
        "tail /dev/zero",
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let inspect: serde_json::Value = serde_json::from_str(&e.ok(&["container", "inspect", "hog"])).unwrap();
    assert_eq!(inspect[0]["State"]["OOMKilled"], true);
    assert!(e.ok(&["container", "ls", "-a"]).contains("OOMKilled"));
    e.ok(&["container", "rm", "hog"]);
    e.assert_no_residue();
}

#[test]
fn failures_are_clear_and_leave_nothing() {
    let e = Engine::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["container", "run", "--rm", "busybox", "no-such-cmd"],
            "exec: \"no-such-cmd\": executable file not found in $PATH",
        ),
        (&["container", "run", "--rm", "nosuchimage"], "nosuchimage"),
        (
            &["container", "run", "--rm", "-m", "lots", "busybox", "true"],
            "invalid memory \"lots\"",
        ),
        (
            &["container", "run", "--rm", "-u", "nobody-here", "busybox", "true"],
            "unable to find user nobody-here",
        ),
        (
            &[
                "container",
                "run",
                "--rm",
                "--ulimit",
                "nofile=30000:30000",
                "busybox",
                "true",
            ],
            "nofile",
        ),
        (
            &["container", "run", "--rm", "--cap-add", "FLY", "busybox", "true"],
            "FLY",
        ),
    ];
    for (args, message) in cases {
        let out = e.berth(args);
        assert_ne!(out.status.code(), Some(0), "{args:?} should fail");
        assert!(
            stderr(&out).contains(message),
            "{args:?}: expected {message:?} in {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
        e.assert_no_residue();
    }
}

#[test]
fn fifty_containers_leave_zero_residue() {
    let e = Engine::new();
    for i in 0..50 {
        let out = e.ok(&["container", "run", "--rm", "busybox", "sh", "-c", &format!("echo {i}")]);
        assert_eq!(out, format!("{i}\n"));
    }
    e.assert_no_residue();
}

#[test]
fn every_setup_step_failure_cleans_up() {
    let e = Engine::new();
    for point in ["cgroup", "mount", "pivot_root", "exec"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(e.root.path())
            .args(["container", "run", "--rm", "busybox", "true"])
            .env("BERTH_FAIL_AT", point)
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0), "failure at {point} must fail the run");
        assert!(
            stderr(&out).contains(&format!("injected failure at {point}")),
            "{point}: {}",
            stderr(&out)
        );
        e.assert_no_residue();
        // A detached create+start failing leaves the container "created",
        // with nothing running and nothing mounted.
        let id = e.ok(&["container", "create", "--name", point, "busybox", "true"]);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(e.root.path())
            .args(["container", "start", point])
            .env("BERTH_FAIL_AT", point)
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0));
        let inspect: serde_json::Value = serde_json::from_str(&e.ok(&["container", "inspect", point])).unwrap();
        assert_eq!(inspect[0]["State"]["Status"], "created");
        assert!(inspect[0]["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("injected failure"));
        e.ok(&["container", "rm", id.trim()]);
        e.assert_no_residue();
    }
}

/// Runs `berth --root R ARGS` (one shell string) in a terminal, through
/// script(1).
fn in_terminal(e: &Engine, args: &str) -> std::process::Output {
    let command = format!(
        "{} --root {} {args}",
        env!("CARGO_BIN_EXE_berth"),
        e.root.path().display()
    );
    std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap()
}

#[test]
fn exec_tty_comes_from_the_containers_devpts() {
    let e = Engine::new();
    e.ok(&["container", "run", "-d", "--name", "box", "busybox", "sleep", "100"]);
    // Without -i the outer terminal is not raw: each line ends "\r\r\n".
    let lines = |out: &std::process::Output| stdout(out).replace('\r', "");
    let out = in_terminal(&e, "container exec -t box sh -c 'tty; test -t 0 && echo tty0; exit 5'");
    assert_eq!(lines(&out), "/dev/pts/0\ntty0\n");
    assert_eq!(out.status.code(), Some(5));
    // A non-root user owns its terminal (runc's fixStdioPermissions).
    let out = in_terminal(&e, "container exec -t -u 1000 box sh -c 'stat -c %u $(tty)'");
    assert_eq!(lines(&out), "1000\n");
    // Without -t there is no terminal inside.
    let out = e.berth(&["container", "exec", "box", "sh", "-c", "tty || true"]);
    assert_eq!(stdout(&out), "not a tty\n");
    e.ok(&["container", "rm", "-f", "box"]);
    e.assert_no_residue();
}

#[test]
fn privileged_sees_the_host_devices() {
    let e = Engine::new();
    let Some(device) = ["kmsg", "loop-control", "fuse"]
        .into_iter()
        .find(|d| std::path::Path::new("/dev").join(d).exists())
    else {
        panic!("this host has none of /dev/kmsg, /dev/loop-control, /dev/fuse");
    };
    let check = format!("test -c /dev/{device} && echo present || echo absent; readlink /dev/ptmx");
    let out = e.ok(&[
        "container",
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        &check,
    ]);
    assert_eq!(out, "present\npts/ptmx\n");
    let out = e.ok(&["container", "run", "--rm", "busybox", "sh", "-c", &check]);
    assert_eq!(out, "absent\npts/ptmx\n");
    e.assert_no_residue();
}

fn berth_with_stdin(e: &Engine, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(e.root.path())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn interactive_stdin_tty_and_attach() {
    let e = Engine::new();
    let out = berth_with_stdin(
        &e,
        &["container", "run", "--rm", "-i", "busybox", "sh", "-c", "cat; exit 4"],
        "line one\nline two\n",
    );
    assert_eq!(stdout(&out), "line one\nline two\n");
    assert_eq!(out.status.code(), Some(4));

    // A real terminal, through script(1): the container gets a tty from
    // its own devpts, so tty(1) can name it.
    let out = in_terminal(
        &e,
        "container run --rm -t busybox sh -c 'tty; test -t 0 && test -t 1 && echo both-tty; exit 6'",
    );
    assert!(stdout(&out).contains("both-tty"), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("/dev/pts/0\r\n"), "{:?}", stdout(&out));
    assert_eq!(out.status.code(), Some(6));

    // Attaching later to a detached, interactive container.
    e.ok(&[
        "container",
        "run",
        "-d",
        "-i",
        "--name",
        "reader",
        "busybox",
        "sh",
        "-c",
        "read line; echo got:$line; exit 2",
    ]);
    let out = berth_with_stdin(&e, &["container", "attach", "reader"], "hello\n");
    assert_eq!(stdout(&out), "got:hello\n");
    assert_eq!(out.status.code(), Some(2));
    e.ok(&["container", "rm", "reader"]);
    e.assert_no_residue();
}

#[test]
fn devices_sysctls_shm_and_network_modes() {
    let e = Engine::new();
    let out = e.ok(&[
        "container", "run", "--rm", "--device", "/dev/zero:/dev/myzero", "--sysctl", "kernel.shm_rmid_forced=1",
        "--shm-size", "8m", "busybox", "sh", "-c",
        "head -c 3 /dev/myzero | wc -c; cat /proc/sys/kernel/shm_rmid_forced; df -k /dev/shm | tail -1 | awk '{print $2}'; \
         mknod /tmp/fuse c 10 229 && (cat /tmp/fuse 2>&1 | grep -q 'not permitted' && echo fuse-denied)",
    ]);
    assert_eq!(out, "3\n1\n8192\nfuse-denied\n");
    let isolated = e.ok(&["container", "run", "--rm", "busybox", "ls", "/sys/class/net"]);
    assert_eq!(isolated, "lo\n", "--network none (the default for now) has only lo");
    // Other tests add and remove berth bridges and veths all the time:
    // compare the host's own links only.
    let own = |name: &str| !name.starts_with("berth") && !name.starts_with("bveth");
    let host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| own(name))
        .collect();
    let shared = e.ok(&[
        "container",
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(
        shared.lines().filter(|name| own(name)).count(),
        host.len(),
        "--network host sees the host's links"
    );
    e.assert_no_residue();
}

/// The program of this root's monitor processes (`/proc/PID/exe`).
fn monitor_programs(e: &Engine) -> Vec<std::path::PathBuf> {
    monitor_pids(e)
        .into_iter()
        .filter_map(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
        .collect()
}

/// The pids of this engine root's monitors.
fn monitor_pids(e: &Engine) -> Vec<i32> {
    let root = e.root.path().to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "__monitor") && args.contains(&root) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn monitor_is_the_small_binary_and_berth_alone_still_works() {
    let e = Engine::new();
    e.ok(&["container", "run", "-d", "--name", "small", "busybox", "sleep", "1000"]);
    let programs = monitor_programs(&e);
    assert_eq!(programs.len(), 1, "one monitor: {programs:?}");
    assert_eq!(
        programs[0],
        std::path::Path::new(env!("CARGO_BIN_EXE_berth-monitor")),
        "the dedicated monitor binary runs beside berth"
    );
    // It starts without std's runtime (`no_main`) but still ignores
    // SIGPIPE: an attached client that goes away must not kill it.
    let pid = monitor_pids(&e)[0];
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let ignored = status.lines().find_map(|l| l.strip_prefix("SigIgn:\t")).unwrap();
    let ignored = u64::from_str_radix(ignored.trim(), 16).unwrap();
    assert_ne!(ignored & (1 << (libc::SIGPIPE - 1)), 0, "{status}");
    e.ok(&["container", "rm", "-f", "small"]);

    // A berth installed without berth-monitor beside it runs its own
    // hidden verb instead.
    let alone = e.dir.path().join("bin");
    std::fs::create_dir_all(&alone).unwrap();
    let berth = alone.join("berth");
    std::fs::hard_link(env!("CARGO_BIN_EXE_berth"), &berth)
        .or_else(|_| std::fs::copy(env!("CARGO_BIN_EXE_berth"), &berth).map(|_| ()))
        .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(&berth)
            .arg("--root")
            .arg(e.root.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["container", "run", "-d", "--name", "alone", "busybox", "sleep", "1000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let programs = monitor_programs(&e);
    assert_eq!(programs, vec![berth.clone()], "the berth binary monitors itself");
    let out = run(&["container", "rm", "-f", "alone"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["container", "run", "--rm", "busybox", "echo", "still-works"]);
    assert_eq!(stdout(&out), "still-works\n", "{}", stderr(&out));
    e.assert_no_residue();
}
