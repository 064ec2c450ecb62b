//! Named and anonymous volumes through the binary: persistence, in-use
//! refusal, `--rm`, copy-up of image content, `ro`, tmpfs and bind
//! volumes of the local driver. Every test ends with no residue and an
//! empty `<root>/volumes`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{stderr, stdout, Engine};

fn volume_names(e: &Engine) -> Vec<String> {
    e.ok(&["volume", "ls", "-q"]).lines().map(str::to_string).collect()
}

/// Nothing of the test's volumes is left, on disk or mounted.
fn assert_clean(e: &Engine) {
    e.assert_no_residue();
    let dir = e.root.path().join("volumes");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "volumes left behind: {left:?}");
}

#[test]
fn named_volume_outlives_its_containers_and_honours_ro() {
    let e = Engine::new();
    e.ok(&[
        "container",
        "run",
        "--name",
        "writer",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    e.ok(&["container", "rm", "writer"]);
    let out = e.ok(&[
        "container",
        "run",
        "--rm",
        "-v",
        "data:/data",
        "busybox",
        "cat",
        "/data/f",
    ]);
    assert_eq!(out, "kept\n");

    let inspect: serde_json::Value = serde_json::from_str(&e.ok(&["volume", "inspect", "data"])).unwrap();
    assert_eq!(inspect[0]["Name"], "data");
    assert_eq!(inspect[0]["Driver"], "local");
    assert_eq!(inspect[0]["Scope"], "local");
    let mountpoint = inspect[0]["Mountpoint"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(format!("{mountpoint}/f")).unwrap(), "kept\n");
    assert!(e.ok(&["volume", "ls"]).contains("local           data"));

    let out = e.berth(&[
        "container",
        "run",
        "--rm",
        "-v",
        "data:/data:ro",
        "busybox",
        "sh",
        "-c",
        "cat /data/f; touch /data/no",
    ]);
    assert_ne!(out.status.code(), Some(0), "a ro volume refuses writes");
    assert_eq!(stdout(&out), "kept\n");
    assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));

    let out = e.berth(&["container", "run", "--rm", "-v", "a/b:/data", "busybox", "true"]);
    assert!(
        stderr(&out).contains("invalid characters for a local volume name"),
        "{}",
        stderr(&out)
    );
    assert_eq!(e.ok(&["volume", "rm", "data"]), "data\n");
    assert_clean(&e);
}

#[test]
fn volume_rm_is_refused_while_in_use() {
    let e = Engine::new();
    assert_eq!(e.ok(&["volume", "create", "--label", "team=db", "busy"]), "busy\n");
    assert_eq!(
        e.ok(&["volume", "create", "--label", "team=db", "busy"]),
        "busy\n",
        "idempotent"
    );
    let out = e.berth(&["volume", "create", "-o", "type=tmpfs", "busy"]);
    assert!(
        stderr(&out).contains("already exists with different options"),
        "{}",
        stderr(&out)
    );
    let out = e.berth(&["volume", "create", "-o", "type=none", "-o", "device=/srv", "bad"]);
    assert!(stderr(&out).contains("o=bind"), "{}", stderr(&out));

    e.ok(&[
        "container",
        "create",
        "--name",
        "user",
        "-v",
        "busy:/x",
        "busybox",
        "true",
    ]);
    let out = e.berth(&["volume", "rm", "busy"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("remove busy: volume is in use - [user]"),
        "{}",
        stderr(&out)
    );
    e.ok(&["volume", "prune", "-a"]);
    assert_eq!(volume_names(&e), vec!["busy"], "prune keeps volumes in use");
    e.ok(&["container", "rm", "user"]);
    e.ok(&["volume", "rm", "busy"]);
    let out = e.berth(&["volume", "rm", "busy"]);
    assert!(stderr(&out).contains("No such volume: busy"), "{}", stderr(&out));
    e.ok(&["volume", "rm", "-f", "busy"]);
    assert_clean(&e);
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_run_rm() {
    let e = Engine::new();
    e.ok(&[
        "container",
        "run",
        "--rm",
        "-v",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "echo x > /scratch/y",
    ]);
    assert!(volume_names(&e).is_empty(), "--rm removes the anonymous volume");

    e.ok(&[
        "container",
        "run",
        "--name",
        "keep",
        "-v",
        "/scratch",
        "-v",
        "named:/n",
        "busybox",
        "true",
    ]);
    let names = volume_names(&e);
    assert_eq!(names.len(), 2);
    assert!(
        names
            .iter()
            .any(|n| n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit())),
        "{names:?}"
    );
    e.ok(&["container", "rm", "-v", "keep"]);
    assert_eq!(volume_names(&e), vec!["named"], "rm -v keeps named volumes");

    e.ok(&[
        "container",
        "run",
        "--name",
        "kept",
        "-v",
        "/scratch",
        "busybox",
        "true",
    ]);
    e.ok(&["container", "rm", "kept"]);
    assert_eq!(volume_names(&e).len(), 2, "rm without -v keeps it");
    e.ok(&["volume", "prune"]);
    assert_eq!(volume_names(&e), vec!["named"], "prune takes unused anonymous volumes");
    e.ok(&["volume", "prune", "-a"]);

    // Detached: the monitor removes the container and its volume.
    e.ok(&["container", "run", "-d", "--rm", "-v", "/scratch", "busybox", "true"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !volume_names(&e).is_empty() {
        assert!(Instant::now() < deadline, "the monitor left the anonymous volume");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_clean(&e);
}

#[test]
fn image_content_is_copied_into_an_empty_volume() {
    let e = Engine::new();
    e.ok(&[
        "container",
        "run",
        "--name",
        "seed",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data && echo a > /data/a && echo b > /data/b && chown -R 1000:1000 /data && chmod 750 /data",
    ]);
    e.ok(&["container", "commit", "seed", "seeded:1"]);
    // A layer deleting /data/b: the copy must see the merged view.
    e.ok(&["container", "run", "--name", "prune-b", "seeded:1", "rm", "/data/b"]);
    e.ok(&["container", "commit", "-c", "VOLUME /data", "prune-b", "seeded:2"]);
    e.ok(&["container", "rm", "seed", "prune-b"]);

    let out = e.ok(&[
        "container",
        "run",
        "--rm",
        "-v",
        "vol:/data",
        "seeded:1",
        "sh",
        "-c",
        "ls /data | tr '\\n' ' '; stat -c '%u:%g %a' /data; echo changed > /data/a",
    ]);
    assert_eq!(out, "a b 1000:1000 750\n");
    let out = e.ok(&[
        "container",
        "run",
        "--rm",
        "-v",
        "vol:/data",
        "seeded:1",
        "cat",
        "/data/a",
    ]);
    assert_eq!(out, "changed\n", "a volume with content is not copied over");
    let out = e.ok(&[
        "container",
        "run",
        "--rm",
        "-v",
        "bare:/data:nocopy",
        "seeded:1",
        "ls",
        "/data",
    ]);
    assert_eq!(out, "", "nocopy");
    let out = e.ok(&[
        "container",
        "run",
        "--rm",
        "-v",
        "fresh:/data",
        "seeded:2",
        "ls",
        "/data",
    ]);
    assert_eq!(out, "a\n", "the whiteout hides b");

    // The image's VOLUME gets an anonymous volume, filled from the image.
    e.ok(&[
        "container",
        "run",
        "--name",
        "anon",
        "seeded:2",
        "sh",
        "-c",
        "cat /data/a; echo more > /data/c",
    ]);
    assert_eq!(e.ok(&["container", "logs", "anon"]), "a\n");
    let anonymous: Vec<String> = volume_names(&e).into_iter().filter(|n| n.len() == 64).collect();
    assert_eq!(anonymous.len(), 1);
    let mountpoint = e.root.path().join("volumes").join(&anonymous[0]).join("_data");
    assert_eq!(std::fs::read_to_string(mountpoint.join("c")).unwrap(), "more\n");
    e.ok(&["container", "rm", "-v", "anon"]);
    e.ok(&["volume", "rm", "vol", "bare", "fresh"]);
    e.ok(&["image", "rm", "seeded:1", "seeded:2"]);
    assert_clean(&e);
}

#[test]
fn tmpfs_volume_enforces_its_size_in_the_container_only() {
    let e = Engine::new();
    e.ok(&["volume", "create", "-o", "type=tmpfs", "-o", "o=size=1m", "tv"]);
    let inspect: serde_json::Value = serde_json::from_str(&e.ok(&["volume", "inspect", "tv"])).unwrap();
    assert_eq!(inspect[0]["Options"]["type"], "tmpfs");
    let out = e.ok(&["container", "run", "--rm", "-v", "tv:/t", "busybox", "sh", "-c",
        "grep ' /t ' /proc/mounts | cut -d' ' -f3; dd if=/dev/zero of=/t/f bs=1k count=2048 2>/dev/null && echo unbounded || echo full"]);
    assert_eq!(out, "tmpfs\nfull\n");
    let mountpoint = e.root.path().join("volumes/tv/_data");
    assert_eq!(
        std::fs::read_dir(&mountpoint).unwrap().count(),
        0,
        "nothing reached the host"
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(e.root.path().to_str().unwrap()),
        "no mount on the host"
    );
    e.ok(&["volume", "rm", "tv"]);
    assert_clean(&e);
}

#[test]
fn bind_volume_shows_host_files() {
    let e = Engine::new();
    let host = e.dir.path().join("host-dir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in.txt"), "from host\n").unwrap();
    let device = format!("device={}", host.display());
    e.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &device,
        "bv",
    ]);
    let out = e.ok(&[
        "container",
        "run",
        "--rm",
        "-v",
        "bv:/b",
        "busybox",
        "sh",
        "-c",
        "cat /b/in.txt; echo back > /b/out.txt",
    ]);
    assert_eq!(out, "from host\n");
    assert_eq!(std::fs::read_to_string(host.join("out.txt")).unwrap(), "back\n");
    e.ok(&["volume", "rm", "bv"]);
    assert!(
        host.join("in.txt").exists(),
        "removing a bind volume keeps the host's files"
    );

    std::fs::remove_dir_all(&host).unwrap();
    e.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &device,
        "gone",
    ]);
    let out = e.berth(&["container", "run", "--rm", "-v", "gone:/b", "busybox", "true"]);
    assert!(
        stderr(&out).contains("is not a directory on the host"),
        "{}",
        stderr(&out)
    );
    e.ok(&["volume", "rm", "gone"]);
    assert_clean(&e);
}
