//! Published ports (`-p`) on bridge networks, driven through the binary:
//! the monitor's forwarder reached from the host, ephemeral ports,
//! conflicts refused before anything is created, ports released at stop.
//! Each test has its own network and 10.201.x.0/24 subnet, and host ports
//! found free by binding port 0 first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};

use std::time::{Duration, Instant};

use support::{host_address, network_engine, stderr};

fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port()
}

/// `GET /` over the published port, retried while httpd starts.
fn http_get(ip: IpAddr, port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")?;
            let mut reply = String::new();
            s.read_to_string(&mut reply)?;
            Ok(reply)
        })();
        match attempt {
            Ok(reply) if reply.contains("hello-from-berth") => return reply,
            other => assert!(Instant::now() < deadline, "no HTTP answer on {ip}:{port}: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

const HTTPD: &str = "mkdir -p /www && echo hello-from-berth > /www/index.html && exec httpd -f -p 80 -h /www";

#[test]
fn http_through_published_ports_then_released_at_stop() {
    let e = network_engine();
    e.ok(&["network", "create", "--subnet", "10.201.1.0/24", "bp-http"]);
    let (lo_port, any_port) = (free_port(), free_port());
    let lo_spec = format!("127.0.0.1:{lo_port}:80");
    let any_spec = format!("{any_port}:80");
    e.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "bp-http",
        "-p",
        &lo_spec,
        "-p",
        &any_spec,
        "-p",
        "80",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    http_get(IpAddr::V4(Ipv4Addr::LOCALHOST), lo_port);
    http_get(IpAddr::V4(host_address()), any_port);

    // `container port`, `ls` and `inspect` report them, the ephemeral one
    // with the port picked at create.
    let listed = e.ok(&["container", "port", "web"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert_eq!(lines[0], format!("80/tcp -> 127.0.0.1:{lo_port}"));
    assert_eq!(lines[1], format!("80/tcp -> 0.0.0.0:{any_port}"));
    let ephemeral: u16 = lines[2].strip_prefix("80/tcp -> 0.0.0.0:").unwrap().parse().unwrap();
    assert_ne!(ephemeral, 0);
    http_get(IpAddr::V4(Ipv4Addr::LOCALHOST), ephemeral);
    assert!(e
        .ok(&["container", "ls"])
        .contains(&format!("127.0.0.1:{lo_port}->80/tcp")));
    let inspect: serde_json::Value = serde_json::from_str(&e.ok(&["container", "inspect", "web"])).unwrap();
    assert_eq!(
        inspect[0]["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        lo_port.to_string()
    );

    // Stopped, the container holds no host port.
    e.ok(&["container", "stop", "-t", "1", "web"]);
    TcpListener::bind(("127.0.0.1", lo_port)).unwrap();
    TcpListener::bind(("0.0.0.0", any_port)).unwrap();
    TcpListener::bind(("0.0.0.0", ephemeral)).unwrap();

    e.ok(&["container", "rm", "web"]);
    e.ok(&["network", "rm", "bp-http"]);
    e.assert_no_residue();
}

#[test]
fn a_port_in_use_or_no_bridge_is_refused_before_anything_exists() {
    let e = network_engine();
    e.ok(&["network", "create", "--subnet", "10.201.2.0/24", "bp-busy"]);
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let spec = format!("127.0.0.1:{port}:80");
    let out = e.berth(&[
        "container",
        "run",
        "-d",
        "--name",
        "c",
        "--network",
        "bp-busy",
        "-p",
        &spec,
        "busybox",
        "sleep",
        "100",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "port {port}/tcp is already in use on 127.0.0.1 by another process"
        )),
        "{err}"
    );
    assert_eq!(e.ok(&["container", "ls", "-a", "-q"]), "");

    // A port another berth container publishes is named by that container.
    let free = free_port();
    let first = format!("127.0.0.1:{free}:80");
    e.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "bp-busy",
        "-p",
        &first,
        "busybox",
        "sleep",
        "100",
    ]);
    let out = e.berth(&[
        "container",
        "create",
        "--name",
        "c2",
        "--network",
        "bp-busy",
        "-p",
        &first,
        "busybox",
        "true",
    ]);
    assert!(stderr(&out).contains("by container \"holder\""), "{}", stderr(&out));
    e.ok(&["container", "rm", "-f", "holder"]);

    // Without a bridge network there is nothing to publish on.
    let out = e.berth(&["container", "create", "-p", "8080:80", "busybox", "true"]);
    assert!(stderr(&out).contains("need a bridge network"), "{}", stderr(&out));
    let out = e.berth(&[
        "container",
        "create",
        "--network",
        "none",
        "-p",
        "8080:80",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert_eq!(e.ok(&["container", "ls", "-a", "-q"]), "");

    e.ok(&["network", "rm", "bp-busy"]);
    e.assert_no_residue();
}
