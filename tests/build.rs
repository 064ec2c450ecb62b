//! `berth image build` on the real kernel: RUN in berth's own containers,
//! COPY/ADD through overlays, the cache, and no residue on failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::Path;

use support::{stderr, stdout, Engine};

/// A build context with `files` (path, content) in the engine's tempdir.
fn context(engine: &Engine, name: &str, files: &[(&str, &str)]) -> String {
    let dir = engine.dir.path().join(name);
    for (path, content) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    dir.to_string_lossy().into_owned()
}

fn build(engine: &Engine, args: &[&str]) -> (String, String) {
    let mut all = vec!["image", "build"];
    all.extend_from_slice(args);
    let out = engine.berth(&all);
    assert!(out.status.success(), "build {args:?} failed:\n{}", stderr(&out));
    (stdout(&out).trim().to_string(), stderr(&out))
}

fn inspect(engine: &Engine, image: &str) -> serde_json::Value {
    let text = engine.ok(&["image", "inspect", image]);
    let mut list: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    list.remove(0)
}

#[test]
fn run_creates_files_and_metadata_lands_in_the_config() {
    let engine = Engine::new();
    let ctx = context(
        &engine,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\n\
             ARG GREETING=hi\n\
             ENV APP_HOME=/srv/app MODE=prod\n\
             WORKDIR $APP_HOME\n\
             RUN echo \"$GREETING $MODE\" > made.txt \\\n    && rm /etc/group\n\
             USER app\n\
             LABEL org.example.kind=demo\n\
             EXPOSE 8080\n\
             ENTRYPOINT [\"/bin/sh\", \"-c\"]\n\
             CMD [\"cat made.txt\"]\n",
        )],
    );
    let (id, progress) = build(&engine, &["-t", "demo:run", "--build-arg", "GREETING=hello", &ctx]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert!(
        progress.contains("[3/10] ENV APP_HOME=/srv/app MODE=prod"),
        "{progress}"
    );
    let out = engine.ok(&["container", "run", "--rm", "demo:run"]);
    assert_eq!(out.trim(), "hello prod");
    // The deleted file is a whiteout in the RUN layer.
    let out = engine.berth(&[
        "container",
        "run",
        "--rm",
        "demo:run",
        "test -e /etc/group || echo gone",
    ]);
    assert_eq!(stdout(&out).trim(), "gone");

    let image = inspect(&engine, "demo:run");
    let config = &image["Config"];
    assert_eq!(config["WorkingDir"], "/srv/app");
    assert_eq!(config["User"], "app");
    assert_eq!(config["Env"], serde_json::json!(["APP_HOME=/srv/app", "MODE=prod"]));
    assert_eq!(config["Labels"]["org.example.kind"], "demo");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(config["Cmd"], serde_json::json!(["cat made.txt"]));
    assert!(config["ExposedPorts"].get("8080/tcp").is_some(), "{config}");
    assert_eq!(image["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    engine.ok(&["image", "rm", "demo:run"]);
    engine.assert_no_residue();
}

#[test]
fn copy_honours_dockerignore_and_add_extracts_local_tars() {
    let engine = Engine::new();
    let ctx = context(
        &engine,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY . /app/\nCOPY --chown=app:app src/*.txt /globbed/\nADD payload.tar.gz /unpacked/\n",
            ),
            (".dockerignore", "*.key\nbuild\n!build/keep.txt\n"),
            ("secret.key", "do not ship"),
            ("build/out.o", "object"),
            ("build/keep.txt", "kept"),
            ("src/a.txt", "a"),
            ("src/b.md", "b"),
        ],
    );
    let staging = engine.dir.path().join("payload");
    fs::create_dir_all(staging.join("inner")).unwrap();
    fs::write(staging.join("inner/file.txt"), "from the tar").unwrap();
    let status = std::process::Command::new("tar")
        .args(["-czf", &format!("{ctx}/payload.tar.gz"), "-C"])
        .arg(&staging)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    build(&engine, &["-t", "demo:copy", &ctx]);
    let listing = engine.ok(&[
        "container",
        "run",
        "--rm",
        "demo:copy",
        "sh",
        "-c",
        "ls -a /app /app/build; stat -c '%U %n' /globbed/*; cat /unpacked/inner/file.txt",
    ]);
    assert!(!listing.contains("secret.key"), "{listing}");
    assert!(!listing.contains("out.o"), "{listing}");
    assert!(listing.contains("keep.txt"), "{listing}");
    assert!(listing.contains("Dockerfile"), "{listing}");
    assert!(listing.contains("app /globbed/a.txt"), "{listing}");
    assert!(!listing.contains("b.md\napp"), "{listing}");
    assert!(listing.contains("from the tar"), "{listing}");
    engine.ok(&["image", "rm", "demo:copy"]);
    engine.assert_no_residue();
}

#[test]
fn multi_stage_copies_from_an_earlier_stage_and_target_stops_early() {
    let engine = Engine::new();
    let ctx = context(
        &engine,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox AS builder\nRUN mkdir /out && echo built > /out/artifact\n\
             FROM busybox AS unused\nRUN exit 1\n\
             FROM busybox\nCOPY --from=builder /out/artifact /artifact\nCMD [\"cat\", \"/artifact\"]\n",
        )],
    );
    build(&engine, &["-t", "demo:multi", &ctx]);
    assert_eq!(engine.ok(&["container", "run", "--rm", "demo:multi"]).trim(), "built");
    build(&engine, &["-t", "demo:builder", "--target", "builder", &ctx]);
    let out = engine.ok(&["container", "run", "--rm", "demo:builder", "cat", "/out/artifact"]);
    assert_eq!(out.trim(), "built");
    let out = engine.berth(&["container", "run", "--rm", "demo:builder", "cat", "/artifact"]);
    assert!(!out.status.success());
    engine.ok(&["image", "rm", "demo:multi", "demo:builder"]);
    engine.assert_no_residue();
}

#[test]
fn second_build_hits_the_cache_and_no_cache_reruns() {
    let engine = Engine::new();
    let ctx = context(
        &engine,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN cat /proc/sys/kernel/random/uuid > /stamp\nCOPY file.txt /file.txt\n",
            ),
            ("file.txt", "one"),
        ],
    );
    let stamp = |image: &str| engine.ok(&["container", "run", "--rm", image, "cat", "/stamp"]);
    let (first, _) = build(&engine, &["-t", "demo:cache", &ctx]);
    let first_stamp = stamp("demo:cache");

    let started = std::time::Instant::now();
    let (second, progress) = build(&engine, &["-t", "demo:cache", &ctx]);
    let elapsed = started.elapsed();
    assert_eq!(progress.matches("CACHED").count(), 2, "{progress}");
    assert_eq!(first, second, "an unchanged rebuild gives the same image");
    assert_eq!(stamp("demo:cache"), first_stamp, "the RUN did not run again");
    assert!(elapsed.as_millis() < 1000, "cached rebuild took {elapsed:?}");

    // A changed input re-runs only from that step on.
    fs::write(Path::new(&ctx).join("file.txt"), "two").unwrap();
    let (_, progress) = build(&engine, &["-t", "demo:cache", &ctx]);
    assert_eq!(progress.matches("CACHED").count(), 1, "{progress}");
    assert_eq!(stamp("demo:cache"), first_stamp);

    let (_, progress) = build(&engine, &["-t", "demo:cache", "--no-cache", &ctx]);
    assert!(!progress.contains("CACHED"), "{progress}");
    assert_ne!(stamp("demo:cache"), first_stamp, "--no-cache runs RUN again");
    engine.ok(&["image", "rm", "demo:cache"]);
    engine.assert_no_residue();
}

#[test]
fn failing_run_names_its_line_and_exit_code_and_leaves_nothing() {
    let engine = Engine::new();
    let ctx = context(
        &engine,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo fine\n\nRUN echo about to fail \\\n  && echo on stderr >&2 \\\n  && exit 7\nRUN echo never\n",
        )],
    );
    let out = engine.berth(&["image", "build", "-t", "demo:broken", &ctx]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("Dockerfile:4: RUN /bin/sh -c echo about to fail"), "{err}");
    assert!(err.contains("exited with 7"), "{err}");
    assert!(err.contains("on stderr"), "{err}");
    assert!(!err.contains("#4 [4/4]"), "{err}");
    let images = engine.ok(&["image", "ls"]);
    assert!(!images.contains("demo"), "no half image: {images}");
    let tmp = engine.root.tmp_dir();
    let left: Vec<_> = fs::read_dir(&tmp).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(left.is_empty(), "staging left in {}: {left:?}", tmp.display());
    engine.assert_no_residue();
}

#[test]
fn parse_errors_point_at_the_line() {
    let engine = Engine::new();
    let ctx = context(
        &engine,
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN true\nCOPY onlyone\n")],
    );
    let out = engine.berth(&["image", "build", &ctx]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Dockerfile:3: COPY requires at least two arguments"),
        "{}",
        stderr(&out)
    );
    let ctx = context(
        &engine,
        "url",
        &[("Dockerfile", "FROM busybox\nADD https://example.com/x /x\n")],
    );
    let out = engine.berth(&["image", "build", &ctx]);
    assert!(
        stderr(&out).contains("Dockerfile:2: ADD from a URL"),
        "{}",
        stderr(&out)
    );
    engine.assert_no_residue();
}
