//! A real Docker token server for the bearer flow (distribution's
//! docs/spec/auth/token.md), and a docker-registry that trusts it.
//!
//! The registry runs with `auth: token:` and a `rootcertbundle` holding a
//! self-signed certificate made here with openssl; the server answers
//! `GET /token?service=…&scope=…` with an RS256 JWT signed by that
//! certificate's key (signed by `openssl dgst`, the certificate in the
//! `x5c` header), so the registry verifies every token itself. Like
//! Docker Hub, it grants anonymous callers `pull` only and the test user
//! whatever they ask; wrong credentials get a 401. Every request is
//! recorded so a test can show the client went through the flow.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::json;

use crate::registry_support::{Registry, PASSWORD, USER};

pub const SERVICE: &str = "berth-test-registry";
pub const ISSUER: &str = "berth-test-token-server";

/// One request the token server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The `scope` asked for ("" for a login check).
    pub scope: String,
    /// The user of a valid `Authorization: Basic`, if any.
    pub user: Option<String>,
    /// What the token grants, `name:actions` per scope.
    pub granted: Vec<String>,
}

pub struct TokenServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<TokenRequest>>>,
    pub cert: PathBuf,
}

impl TokenServer {
    /// Makes a key and certificate under `dir` and starts answering.
    pub fn start(dir: &Path) -> TokenServer {
        let (key, cert) = (dir.join("token.key"), dir.join("token.crt"));
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=berth-token",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap();
        assert!(der.status.success());
        let x5c = STANDARD.encode(der.stdout);

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (key, x5c, log) = (key.clone(), x5c.clone(), log.clone());
                std::thread::spawn(move || answer(stream, &key, &x5c, &log));
            }
        });
        TokenServer { port, requests, cert }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// A registry that accepts only this server's tokens.
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::start(false);
        registry.kill();
        let config = registry.dir.path().join("config.yml");
        let mut text = fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.realm(),
            self.cert.display()
        ));
        fs::write(&config, text).unwrap();
        registry.restart();
        registry
    }
}

fn answer(mut stream: TcpStream, key: &Path, x5c: &str, log: &Mutex<Vec<TokenRequest>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    let service = params.iter().find(|(k, _)| k == "service").map(|(_, v)| v.as_str());
    let scopes: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' '))
        .collect();
    let credentials = headers
        .get("authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let user = match credentials.as_deref() {
        None => None,
        Some(pair) if pair == format!("{USER}:{PASSWORD}") => Some(USER.to_string()),
        Some(_) => return respond(&mut stream, "401 Unauthorized", r#"{"details":"wrong credentials"}"#),
    };
    if path != "/token" || service != Some(SERVICE) {
        return respond(&mut stream, "404 Not Found", "{}");
    }
    let mut access = Vec::new();
    let mut granted = Vec::new();
    for scope in &scopes {
        let mut parts = scope.splitn(3, ':');
        let (Some(kind), Some(name), Some(actions)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let actions: Vec<&str> = actions.split(',').filter(|a| user.is_some() || *a == "pull").collect();
        granted.push(format!("{name}:{}", actions.join(",")));
        access.push(json!({"type": kind, "name": name, "actions": actions}));
    }
    log.lock().unwrap().push(TokenRequest {
        scope: scopes.join(" "),
        user: user.clone(),
        granted,
    });
    let token = sign(key, x5c, user.as_deref().unwrap_or(""), access);
    let body = json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
    respond(&mut stream, "200 OK", &body);
}

/// An RS256 JWT the registry verifies against the certificate in `x5c`.
fn sign(key: &Path, x5c: &str, subject: &str, access: Vec<serde_json::Value>) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = json!({
        "iss": ISSUER, "sub": subject, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    openssl.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = openssl.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl dgst failed");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(out.stdout))
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Percent-decoding of a query component (`+` is a space).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
