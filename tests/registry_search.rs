//! `berth image search`: a real registry's catalog (Debian's
//! docker-registry on 127.0.0.1, two repositories per page so the listing
//! must follow `Link`), with and without credentials; a registry without a
//! catalog and a stand-in for Docker Hub's search API (in-test HTTP
//! servers: there is no internet here, and no registry ships the Hub API).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod registry_support;

use registry_support::*;
use serde_json::Value;

/// Pushes a one-layer image as `repo_tag`.
fn push_image(registry: &Registry, env: &Env, repo_tag: &str, creds: bool) {
    let layout = Layout::new(env.tmp.path().join(repo_tag.replace([':', '/'], "-")));
    let built = layout.image(host_arch(), &[(layer("etc/name", repo_tag.as_bytes()), true)]);
    layout.finish(&built.descriptor);
    registry.push(&layout.dir, repo_tag, creds);
}

fn catalog_gets(registry: &Registry) -> usize {
    registry
        .log()
        .lines()
        .filter(|l| l.contains("\"GET /v2/_catalog"))
        .count()
}

#[test]
fn search_filters_a_registry_catalog_read_page_by_page() {
    let registry = Registry::start_with(false, "catalog:\n  maxentries: 2\n");
    let env = Env::new();
    for repo in [
        "berth/busy-one:v1",
        "berth/busy-two:v1",
        "other/app:v1",
        "team/BusyBox:v1",
    ] {
        push_image(&registry, &env, &repo.to_lowercase(), false);
    }
    let host = registry.host();

    let out = env.ok(&["image", "search", &format!("{host}/busy")]);
    assert_eq!(
        out,
        format!("NAME\n{host}/berth/busy-one\n{host}/berth/busy-two\n{host}/team/busybox\n")
    );
    assert!(
        catalog_gets(&registry) >= 2,
        "two repositories per page: more than one page read\n{}",
        registry.log()
    );

    // REGISTRY/ lists everything; --limit stops early; JSON names only.
    let all = env.ok(&["image", "search", &format!("{host}/")]);
    assert_eq!(all.lines().count(), 5, "{all}");
    assert!(all.contains(&format!("{host}/other/app\n")), "{all}");
    let json: Value = serde_json::from_str(&env.ok(&[
        "image",
        "search",
        "--limit",
        "1",
        "--format",
        "json",
        &format!("{host}/BUSY"),
    ]))
    .unwrap();
    assert_eq!(json, serde_json::json!([{"name": format!("{host}/berth/busy-one")}]));

    let none = env.ok(&["image", "search", &format!("{host}/nothing-like-this")]);
    assert_eq!(none, "NAME\n");
}

#[test]
fn search_of_a_private_registry_needs_its_login() {
    let registry = Registry::start(true);
    let env = Env::new();
    push_image(&registry, &env, "private/app:v1", true);
    let host = registry.host();
    let query = format!("{host}/app");

    let err = env.fails(&["image", "search", &query]);
    assert!(err.contains(&format!("cannot search {host} for \"app\"")), "{err}");
    assert!(err.contains(&format!("run `berth login {host}`")), "{err}");

    let login = env.berth(
        &["login", "-u", USER, "--password-stdin", &host],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
    assert_eq!(
        env.ok(&["image", "search", &query]),
        format!("NAME\n{host}/private/app\n")
    );
}

#[test]
fn a_registry_without_catalog_or_search_is_a_clear_error() {
    for status in [404, 405, 403] {
        let server = FakeHttp::start(move |_, target| match target {
            "/v2/" => (200, Vec::new(), b"{}".to_vec()),
            _ => (status, Vec::new(), b"no".to_vec()),
        });
        let env = Env::new();
        let host = format!("127.0.0.1:{}", server.port);
        let err = env.fails(&["image", "search", &format!("{host}/app")]);
        assert!(err.contains(&format!("cannot search {host} for \"app\"")), "{err}");
        assert!(
            err.contains(&format!(
                "{host} offers neither a search API nor a catalog (GET /v2/_catalog answered {status}"
            )),
            "{err}"
        );
        assert!(
            server.requests().iter().any(|r| r.starts_with("GET /v2/_catalog ")),
            "{:?}",
            server.requests()
        );
    }
}

#[test]
fn a_plain_term_asks_the_hub_search_api() {
    let hub = FakeHttp::start(|_, target| {
        if !target.starts_with("/v1/search?") {
            return (404, Vec::new(), Vec::new());
        }
        let body = serde_json::json!({
            "num_results": 2, "query": "busy", "page": 1,
            "results": [
                {"name": "busybox", "description": "Busybox base image.", "star_count": 3000,
                 "is_official": true, "is_automated": false},
                {"name": "someone/busy", "description": "Unofficial, with a description that goes past the edge",
                 "star_count": 4, "is_official": false, "is_automated": true},
            ],
        });
        (
            200,
            vec![("Content-Type".into(), "application/json".into())],
            body.to_string().into_bytes(),
        )
    });
    let env = Env::new();
    let url = format!("http://127.0.0.1:{}", hub.port);
    let vars = [("BERTH_HUB_SEARCH_URL", url.as_str())];
    let out = env.berth_env(&["image", "search", "--limit", "2", "busy"], None, &vars);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "\
NAME           DESCRIPTION                                     STARS     OFFICIAL
busybox        Busybox base image.                             3000      [OK]
someone/busy   Unofficial, with a description that goes pas…   4
"
    );
    assert_eq!(hub.requests(), vec!["GET /v1/search?q=busy&n=2 HTTP/1.1".to_string()]);

    let out = env.berth_env(&["image", "search", "--format", "json", "docker.io/busy"], None, &vars);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["name"], "busybox");
    assert_eq!(json[0]["star_count"], 3000);
    assert_eq!(json[1]["is_automated"], true);
    assert!(hub.requests()[1].contains("q=busy&n=25"), "{:?}", hub.requests());

    // The Hub failing is named as such.
    let down = FakeHttp::start(|_, _| (503, Vec::new(), b"maintenance".to_vec()));
    let url = format!("http://127.0.0.1:{}", down.port);
    let out = env.berth_env(
        &["image", "search", "busy"],
        None,
        &[("BERTH_HUB_SEARCH_URL", url.as_str())],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("cannot search Docker Hub ({url}) for \"busy\"")) && err.contains("answered 503"),
        "{err}"
    );
}
