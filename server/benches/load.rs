//! A small HTTP load generator: keeps `JO_BENCH_CONNECTIONS` keep-alive
//! connections busy on `JO_BENCH_URL` for `JO_BENCH_SECS` seconds and prints
//! requests/s and latency percentiles. Used by `scripts/bench-server.sh`
//! (no oha/wrk needed). Without `JO_BENCH_URL` it starts the server in-process.
//! `JO_BENCH_COOKIE` (e.g. `jo_session=…`) is sent with every request.

#![allow(missing_docs)]

use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let connections: usize = env_or("JO_BENCH_CONNECTIONS", 16);
    let secs: u64 = env_or("JO_BENCH_SECS", 10);
    let client_threads: usize = env_or("JO_BENCH_CLIENT_THREADS", 1);
    // The client gets its own small runtime so that it takes as little CPU
    // from the server (same machine) as possible.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_threads)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut _in_process = None;
        let url = match std::env::var("JO_BENCH_URL") {
            Ok(u) => u,
            Err(_) => {
                let dir = tempfile::tempdir()?;
                let app = jo_server::Application::build(jo_server::Config::for_tests(dir.path().join("data"))).await?;
                let url = format!("http://127.0.0.1:{}/", app.port());
                std::thread::spawn(move || {
                    let server_rt = tokio::runtime::Runtime::new().expect("runtime");
                    let _ = server_rt.block_on(app.run_until_stopped());
                });
                _in_process = Some(dir);
                url
            }
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(cookie) = std::env::var("JO_BENCH_COOKIE") {
            headers.insert(reqwest::header::COOKIE, cookie.parse()?);
        }
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .default_headers(headers)
            .build()?;
        // Warm-up.
        for _ in 0..50 {
            client.get(&url).send().await?.bytes().await?;
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let client = client.clone();
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat_us: Vec<u32> = Vec::with_capacity(100_000);
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let start = Instant::now();
                    match client.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            lat_us.push(u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX));
                        }
                        _ => errors += 1,
                    }
                }
                (lat_us, errors)
            }));
        }
        let started = Instant::now();
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await?;
            all.extend(l);
            errors += e;
        }
        let elapsed = started.elapsed().as_secs_f64();
        all.sort_unstable();
        let pct = |p: f64| {
            let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len().max(1)) - 1;
            f64::from(all.get(i).copied().unwrap_or(0)) / 1000.0
        };
        println!(
            "GET {url}: {} requests in {elapsed:.1} s = {:.0} req/s with {connections} connections; \
             latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {errors} errors",
            all.len(),
            all.len() as f64 / elapsed,
            pct(0.50),
            pct(0.90),
            pct(0.99),
            pct(1.0),
        );
        anyhow::Ok(())
    })
}
