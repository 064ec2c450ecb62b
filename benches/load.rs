//! Load benchmark: a generated 500-service stack file, loaded, resolved and
//! hashed (`service_hash` of every service) N times.
//!
//! `cargo bench --bench load` prints the median and p95 and fails when the
//! median exceeds the budget in an optimized build.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use berth::spec::hash::service_hash;
use berth::spec::{load, LoadOptions};

const SERVICES: usize = 500;
const DATABASES: usize = 5;
const ITERATIONS: usize = 20;
const MEDIAN_BUDGET_MS: f64 = 50.0;

/// A realistic large stack: databases with healthchecks, application
/// services in dependency chains of ten fanning out to the databases, both
/// environment forms, short-syntax ports and volumes, several networks,
/// labels, and a few services that `extends` a shared base.
fn stack_file() -> String {
    let mut out = String::new();
    let w = &mut out;
    // `writeln!` into a String cannot fail.
    let _ = writeln!(w, "name: bench\n\nx-owner: platform-team\n\nservices:");
    let _ = writeln!(
        w,
        "  base-app:
    image: registry.example.com/base/app:${{BASE_TAG:-1.0}}
    restart: unless-stopped
    environment:
      - RUST_LOG=info
      - TZ=${{TIMEZONE:-UTC}}
    labels:
      com.example.tier: base
    logging:
      driver: json-file
      options:
        max-size: 10m"
    );
    for d in 0..DATABASES {
        let _ = writeln!(
            w,
            "  db{d}:
    image: postgres:16.{d}
    environment:
      POSTGRES_DB: app{d}
      POSTGRES_USER: ${{DB_USER:-app}}
      POSTGRES_PASSWORD_FILE: /run/secrets/db-password
    volumes:
      - db{d}-data:/var/lib/postgresql/data
    networks: [backend]
    secrets: [db-password]
    healthcheck:
      test: [CMD-SHELL, pg_isready -U app]
      interval: 5s
      timeout: 3s
      retries: 5
      start_period: 10s
    deploy:
      resources:
        limits:
          memory: 512M
          cpus: '1.5'"
        );
    }
    let app_services = SERVICES - DATABASES - 1;
    for i in 0..app_services {
        let _ = writeln!(w, "  svc{i}:");
        if i % 50 == 7 {
            let _ = writeln!(w, "    extends:\n      service: base-app");
        } else {
            let _ = writeln!(
                w,
                "    image: registry.example.com/team{}/svc{i}:1.{}.{}",
                i % 12,
                i % 7,
                i
            );
        }
        if i % 2 == 0 {
            let _ = writeln!(
                w,
                "    environment:
      - SERVICE_NAME=svc{i}
      - PORT=80
      - DATABASE_URL=postgres://app@db{}:5432/app{}
      - LOG_LEVEL=${{LOG_LEVEL:-info}}
      - FEATURE_FLAGS=a,b,c
      - EMPTY_FROM_CALLER",
                i % DATABASES,
                i % DATABASES
            );
        } else {
            let _ = writeln!(
                w,
                "    environment:
      SERVICE_NAME: svc{i}
      PORT: 80
      DATABASE_URL: postgres://app@db{}:5432/app{}
      LOG_LEVEL: ${{LOG_LEVEL:-info}}
      WORKERS: {}
      DEBUG: 'false'",
                i % DATABASES,
                i % DATABASES,
                1 + i % 8
            );
        }
        let _ = writeln!(
            w,
            "    ports:
      - \"{}:80\"
      - \"127.0.0.1:{}:443/tcp\"",
            10000 + i,
            20000 + i
        );
        if i % 3 == 0 {
            let _ = writeln!(
                w,
                "      - \"9{:03}-9{:03}:9000-9001/udp\"",
                i % 500 * 2,
                i % 500 * 2 + 1
            );
        }
        let _ = writeln!(
            w,
            "    volumes:
      - cache{}:/var/cache/app
      - ./config/svc{i}:/etc/app:ro
      - /var/log/svc{i}:/var/log/app:rw
    networks:
      - frontend
      - backend
      - zone{}",
            i % 20,
            i % 8
        );
        // Chains of ten, each link on the previous service; every service
        // also depends on one database (fan-out), half of them healthy.
        let _ = writeln!(w, "    depends_on:");
        if i % 10 != 0 {
            let _ = writeln!(w, "      svc{}:\n        condition: service_started", i - 1);
        }
        let condition = if i % 2 == 0 {
            "service_healthy"
        } else {
            "service_started"
        };
        let _ = writeln!(
            w,
            "      db{}:\n        condition: {condition}\n        restart: true",
            i % DATABASES
        );
        let _ = writeln!(
            w,
            "    healthcheck:
      test: [CMD, curl, -fsS, http://localhost/healthz]
      interval: 30s
      timeout: 5s
      retries: 3
      start_period: 15s
    labels:
      com.example.team: team{}
      com.example.service: svc{i}
      traefik.http.routers.svc{i}.rule: Host(`svc{i}.example.com`)
    restart: on-failure:3
    stop_grace_period: 20s
    command: [\"/app/bin/server\", \"--port\", \"80\", \"--name\", \"svc{i}\"]",
            i % 12
        );
        if i % 25 == 0 {
            let _ = writeln!(
                w,
                "    x-bench-note: sampled\n    ulimits:\n      nofile:\n        soft: 20000\n        hard: 40000"
            );
        }
    }
    let _ = writeln!(w, "\nnetworks:\n  frontend:\n  backend:\n    internal: true");
    for z in 0..8 {
        let _ = writeln!(
            w,
            "  zone{z}:\n    ipam:\n      config:\n        - subnet: 10.{z}.0.0/16"
        );
    }
    let _ = writeln!(w, "\nvolumes:");
    for d in 0..DATABASES {
        let _ = writeln!(w, "  db{d}-data:");
    }
    for c in 0..20 {
        let _ = writeln!(w, "  cache{c}:\n    labels:\n      com.example.cache: \"{c}\"");
    }
    let _ = writeln!(w, "\nsecrets:\n  db-password:\n    file: ./secrets/db-password.txt");
    out
}

fn options(file: &Path) -> LoadOptions {
    LoadOptions {
        files: vec![file.to_path_buf()],
        working_dir: file.parent().unwrap_or(Path::new("/")).to_path_buf(),
        os_env: BTreeMap::from([("HOME".to_string(), "/home/bench".to_string())]),
        ..LoadOptions::default()
    }
}

/// Loads (which resolves and validates) and hashes every service.
fn run_once(options: &LoadOptions) -> Result<(Duration, usize), Box<dyn Error>> {
    let start = Instant::now();
    let loaded = load(options)?;
    let hashes: Vec<String> = loaded.project.services.values().map(service_hash).collect();
    let elapsed = start.elapsed();
    std::hint::black_box(&hashes);
    Ok((elapsed, loaded.project.services.len()))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    // Nearest-rank percentile.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> Result<(), Box<dyn Error>> {
    // `cargo bench` passes `--bench`; libtest-style filters are ignored.
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("compose.yaml");
    let text = stack_file();
    std::fs::write(&file, &text)?;
    let options = options(&file);

    // Warm-up, and a check that the file means what it should.
    let (_, services) = run_once(&options)?;
    if services != SERVICES {
        return Err(format!("generated stack has {services} services, expected {SERVICES}").into());
    }

    let mut samples = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let (elapsed, _) = run_once(&options)?;
        samples.push(elapsed.as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    let median = if ITERATIONS % 2 == 0 {
        (samples[ITERATIONS / 2 - 1] + samples[ITERATIONS / 2]) / 2.0
    } else {
        samples[ITERATIONS / 2]
    };
    let p95 = percentile(&samples, 95.0);
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!(
        "load+resolve+hash, {SERVICES} services ({} KiB, {} lines), {ITERATIONS} iterations [{profile}]: \
         median {median:.2} ms, p95 {p95:.2} ms, min {:.2} ms, max {:.2} ms",
        text.len() / 1024,
        text.lines().count(),
        samples[0],
        samples[ITERATIONS - 1]
    );
    if !cfg!(debug_assertions) && median > MEDIAN_BUDGET_MS {
        eprintln!("median {median:.2} ms exceeds the {MEDIAN_BUDGET_MS} ms budget");
        std::process::exit(1);
    }
    Ok(())
}
