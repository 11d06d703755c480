//! Shop benchmark (`cargo bench -p jo-server --bench shop`, or
//! `scripts/bench-shop.sh`): starts the server in-process on a temporary
//! data directory and prints
//!
//! 1. completed checkouts per second, end to end over HTTP: add to cart,
//!    checkout (order + seat hold), payment page, payment (simulated gateway,
//!    purchase key, ticket signing, one transaction), then the ticket's QR
//!    PNG — `JO_BENCH_BUYERS` buyers in parallel for `JO_BENCH_SECS`;
//! 2. the latency of the session list page under an open-loop load of
//!    `JO_BENCH_RATE` requests/s (default 1,000) for `JO_BENCH_SECS`: p50, p99, max;
//! 3. the CPU cost of a ticket's parts: signing, QR symbol, PNG, PDF.
//!
//! The client runs in the same process on its own small runtime, so on a
//! 2-core machine the figures include the load generator's cost; the CPU
//! time of each side (per checkout) is printed with the rate.
//!
//! The store is SQLite by default; `JO_BENCH_DATABASE=postgres://…` runs
//! it on that PostgreSQL server (a fresh database is made there), and
//! `JO_BENCH_NODES=2` starts two server nodes on it, each with its own
//! runtime and connection pool as two processes would have, the buyers
//! shared between them. `JO_BENCH_PHASES=checkout` runs phase 1 only.

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jo_server::config::Secret;
use jo_server::db::direct::Direct;
use jo_server::db::sql::params;
use jo_server::db::users::{NewUser, Role};

// The tests' SMTP sink: confirmation mails go over real SMTP, as they would
// to a relay in production, and are counted.
#[allow(dead_code)]
#[path = "../tests/it/common/smtp.rs"]
mod smtp;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

const PASSWORD: &str = "Bench-Password-Seine-2024!";

/// Thread names of the two runtimes, to tell the server's CPU time from the
/// load generator's.
const SERVER_THREADS: &str = "jo-server";
const CLIENT_THREADS: &str = "bench-client";

/// CPU seconds used so far by this process's threads named `name` (user +
/// system, from `/proc`; Linux only, 0 elsewhere). Threads that ended are
/// not counted, so read it around a phase, not across the whole run.
fn cpu_secs(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ticks = 0u64;
    for task in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state …": comm may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(name) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
        for i in [11, 12] {
            ticks += fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    // USER_HZ is 100 on every Linux this runs on.
    ticks as f64 / 100.0
}

fn main() -> anyhow::Result<()> {
    let secs: u64 = env_or("JO_BENCH_SECS", 10);
    let buyers: usize = env_or("JO_BENCH_BUYERS", 32);
    let rate: u64 = env_or("JO_BENCH_RATE", 1000);
    let nodes: usize = env_or("JO_BENCH_NODES", 1);
    let only_checkout = std::env::var("JO_BENCH_PHASES").as_deref() == Ok("checkout");
    let dir = tempfile::tempdir()?;
    let mut config = jo_server::Config::for_tests(dir.path().join("data"));
    if let Some(url) = std::env::var("JO_BENCH_DATABASE")
        .ok()
        .filter(|u| u.starts_with("postgres"))
    {
        let db = jo_server::db::direct::scratch_postgres(&url, "jo_bench")?;
        config.postgres = Some(jo_server::config::PostgresSettings {
            url: Secret::new(db),
            password: None,
            // The server's default pool.
            connections: 16,
        });
    }
    let backend = if config.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    // Production password hashing would only slow the set-up logins.
    config.argon2 = jo_server::config::Argon2Params::INSECURE_FOR_TESTS;
    // Each bench buyer checks out hundreds of times in one session, far
    // beyond what one person may buy (10 by default): no such limit here.
    config.shop.max_tickets_per_session = i64::MAX;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(CLIENT_THREADS)
        .enable_all()
        .build()?;
    // The mail relay runs with the load generator (its CPU counts there).
    let mut sink = client_rt.block_on(smtp::SmtpSink::start());
    config.smtp = Some(jo_server::config::SmtpSettings {
        host: "127.0.0.1".into(),
        port: sink.port,
        tls: jo_server::config::SmtpTls::None,
        username: None,
        password: None,
    });

    // Each node on a runtime of its own, as a process of its own would be.
    let mut bases = Vec::new();
    for _ in 0..nodes.max(1) {
        let server_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(SERVER_THREADS)
            .enable_all()
            .build()?;
        let app = server_rt.block_on(jo_server::Application::build(config.clone()))?;
        bases.push(format!("http://127.0.0.1:{}", app.port()));
        std::thread::spawn(move || {
            let _ = server_rt.block_on(app.run_until_stopped());
        });
    }
    let base = bases[0].clone();
    println!("-- {backend}, {} node(s)", bases.len());

    client_rt.block_on(async move {
        // ----- set-up: buyers with sessions; big sessions so nothing sells out
        let store = jo_server::startup::open_store(&config).await?;
        let hasher = jo_server::auth::password::PasswordHasher::new(config.argon2)?;
        let hash = hasher.hash(Secret::new(PASSWORD.to_owned())).await?;
        let conn = Direct::open(&config)?;
        let (session_id, solo): (i64, i64) = conn.with(|c| {
            c.execute("UPDATE game_sessions SET capacity = 10000000", params![])?;
            c.query_row(
                "SELECT (SELECT id FROM game_sessions WHERE code = 'ATH01'), (SELECT id FROM offers WHERE name = 'Solo')",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })?;
        let mut clients = Vec::new();
        for i in 0..buyers {
            // Buyers shared between the nodes, as a proxy would spread them.
            let base = &bases[i % bases.len()];
            let email = format!("bench{i}@example.com");
            store
                .create_user(NewUser {
                    username: format!("bench{i}"),
                    email: email.clone(),
                    first_name: "Élodie".into(),
                    last_name: "Martin".into(),
                    password_hash: hash.clone(),
                    user_key: jo_shared::doublekey::UserKey::generate()?,
                    role: Role::Buyer,
                    email_verified: true,
                })
                .await?
                .map_err(|_| anyhow::anyhow!("user exists"))?;
            let client = reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()?;
            let page = client.get(format!("{base}/login")).send().await?.text().await?;
            let csrf = between(&page, "name=\"csrf\" value=\"", "\"").unwrap_or("").to_owned();
            let r = client
                .post(format!("{base}/login"))
                .form(&[("email", email.as_str()), ("password", PASSWORD), ("csrf", &csrf)])
                .send()
                .await?;
            anyhow::ensure!(r.status() == 303, "login failed: {}", r.status());
            // Login rotates the CSRF cookie: read the token again.
            let page = client.get(format!("{base}/cart")).send().await?.text().await?;
            let csrf = between(&page, "name=\"csrf\" value=\"", "\"").unwrap_or("").to_owned();
            clients.push((client, csrf, base.clone()));
        }

        // ----- 1. checkouts per second, end to end
        let done = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(secs);
        let started = Instant::now();
        let (server_cpu0, client_cpu0) = (cpu_secs(SERVER_THREADS), cpu_secs(CLIENT_THREADS));
        let mut tasks = Vec::new();
        for (client, csrf, base) in clients.clone() {
            let (done, failed) = (done.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat_us = Vec::new();
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    match one_checkout(&client, &base, &csrf, session_id, solo).await {
                        Ok(()) => {
                            done.fetch_add(1, Ordering::Relaxed);
                            lat_us.push(t0.elapsed().as_micros() as u64);
                        }
                        Err(e) => {
                            if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("checkout failed: {e:#}");
                            }
                        }
                    }
                }
                lat_us
            }));
        }
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await?);
        }
        // A checkout is complete once its confirmation mail reached the
        // relay: the clock runs until every one has (or 30 s more).
        let n = done.load(Ordering::Relaxed);
        let mut mails = sink.drain();
        let mail_deadline = Instant::now() + Duration::from_secs(30);
        while (mails as u64) < n && Instant::now() < mail_deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
            mails += sink.drain();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let server_cpu = cpu_secs(SERVER_THREADS) - server_cpu0;
        let client_cpu = cpu_secs(CLIENT_THREADS) - client_cpu0;
        lat.sort_unstable();
        println!(
            "checkouts end to end (cart + order + hold + payment + signing + QR PNG + mail with PDF over SMTP): \
             {n} in {elapsed:.1} s = {:.0}/s with {buyers} buyers; per checkout p50 {:.1} ms, p99 {:.1} ms; \
             {mails} mails received; {} failed",
            n as f64 / elapsed,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            failed.load(Ordering::Relaxed)
        );
        let per = 1000.0 / (n.max(1) as f64);
        println!(
            "  CPU per checkout: server {:.2} ms, load generator {:.2} ms (over {elapsed:.1} s: {:.2} + {:.2} cores busy)",
            server_cpu * per,
            client_cpu * per,
            server_cpu / elapsed,
            client_cpu / elapsed
        );
        let tickets: i64 =
            conn.with(|c| c.query_row("SELECT count(*) FROM tickets", params![], |r| r.get(0)))?;
        println!("  tickets signed and stored: {tickets}");
        if only_checkout {
            return anyhow::Ok(());
        }

        // ----- 2. session list latency at a fixed rate (open loop)
        let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
        for _ in 0..50 {
            client.get(format!("{base}/sessions")).send().await?.bytes().await?;
        }
        let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
        let total = rate * secs;
        let mut handles = Vec::with_capacity(total as usize);
        let t_start = Instant::now();
        for i in 0..total {
            let due = t_start + interval * u32::try_from(i).unwrap_or(u32::MAX);
            tokio::time::sleep_until(due.into()).await;
            let client = client.clone();
            let url = format!("{base}/sessions");
            handles.push(tokio::spawn(async move {
                // Latency from the scheduled time: a late send counts against us.
                match client.get(url).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        Some(due.elapsed().as_micros() as u64)
                    }
                    _ => None,
                }
            }));
        }
        let mut lat = Vec::with_capacity(handles.len());
        let mut errors = 0;
        for h in handles {
            match h.await? {
                Some(l) => lat.push(l),
                None => errors += 1,
            }
        }
        let achieved = lat.len() as f64 / t_start.elapsed().as_secs_f64();
        lat.sort_unstable();
        println!(
            "GET /sessions at {rate} req/s for {secs} s: {} ok ({achieved:.0}/s), {errors} errors; \
             latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            lat.len(),
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat, 1.0)
        );
        anyhow::Ok(())
    })?;

    if only_checkout {
        return Ok(());
    }
    // ----- 3. PDF generation per ticket
    let signer = jo_shared::TicketSigner::generate()?;
    let issued = jo_server::tickets::issue(
        &signer,
        &jo_shared::doublekey::UserKey::generate()?,
        &jo_shared::doublekey::PurchaseKey::generate()?,
        &jo_server::tickets::TicketSpec {
            index: 0,
            session_id: 1,
            admits: 4,
            valid_from: 1_900_000_000,
            valid_until: 1_900_010_000,
            holder: "Élodie Martin-Dupont de la Tour",
        },
    )?;
    let ticket = jo_server::shop::pdf::PdfTicket {
        title: "Finale 100 m hommes".into(),
        sport: "Athlétisme".into(),
        venue: "Stade de France, Saint-Denis".into(),
        address: "ZAC du Cornillon Nord, 93216 Saint-Denis".into(),
        entrance: "Porte D, tribune Est".into(),
        when: "dimanche 4 août 2024, 21:50".into(),
        doors: "20:20".into(),
        holder: issued.holder.clone(),
        admits: 4,
        offer: "Famille".into(),
        order_number: "ABCDE-12345".into(),
        ticket_ref: issued.ticket_id.to_hex(),
        qr: issued.qr,
    };
    let time_per = |runs: u32, f: &mut dyn FnMut()| {
        let t0 = Instant::now();
        for _ in 0..runs {
            f();
        }
        t0.elapsed().as_secs_f64() / f64::from(runs) * 1e6
    };
    let user_key = jo_shared::doublekey::UserKey::generate()?;
    let purchase_key = jo_shared::doublekey::PurchaseKey::generate()?;
    let sign_us = time_per(2000, &mut || {
        let spec = jo_server::tickets::TicketSpec {
            index: 0,
            session_id: 1,
            admits: 1,
            valid_from: 1_900_000_000,
            valid_until: 1_900_010_000,
            holder: "Élodie Martin",
        };
        jo_server::tickets::issue(&signer, &user_key, &purchase_key, &spec).unwrap();
    });
    // Each ticket's symbol is encoded once (shop::qr) and shared by its PNG
    // and its PDF page; these are the two parts apart.
    let symbol = jo_server::shop::qr::Symbol::encode(&ticket.qr)?;
    let symbol_us = time_per(300, &mut || {
        jo_server::shop::qr::Symbol::encode(&ticket.qr).unwrap();
    });
    let png_us = time_per(2000, &mut || {
        symbol.png(6);
    });
    println!(
        "per ticket, one core: signing {sign_us:.0} µs, QR symbol encoding {symbol_us:.0} µs (once), \
         QR PNG from the symbol {png_us:.0} µs ({} bytes)",
        symbol.png(6).len()
    );
    let runs = 2000;
    let t0 = Instant::now();
    let mut size = 0;
    for _ in 0..runs {
        size =
            jo_server::shop::pdf::render(std::slice::from_ref(&ticket), jo_server::i18n::Lang::Fr)?
                .len();
    }
    let per = t0.elapsed().as_secs_f64() / f64::from(runs);
    println!(
        "PDF ticket: {:.0} µs per one-ticket PDF once its QR symbol is encoded ({size} bytes), one core",
        per * 1e6
    );
    Ok(())
}

async fn one_checkout(
    client: &reqwest::Client,
    base: &str,
    csrf: &str,
    session_id: i64,
    offer_id: i64,
) -> anyhow::Result<()> {
    let (sid, oid) = (session_id.to_string(), offer_id.to_string());
    let r = client
        .post(format!("{base}/cart/add"))
        .form(&[
            ("csrf", csrf),
            ("session_id", &sid),
            ("offer_id", &oid),
            ("quantity", "1"),
        ])
        .send()
        .await?;
    anyhow::ensure!(r.status() == 303, "add: {}", r.status());
    let r = client
        .post(format!("{base}/checkout"))
        .form(&[("csrf", csrf)])
        .send()
        .await?;
    anyhow::ensure!(r.status() == 303, "checkout: {}", r.status());
    let pay_path = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let page = client
        .get(format!("{base}{pay_path}"))
        .send()
        .await?
        .text()
        .await?;
    let idem = between(&page, "name=\"idem\" value=\"", "\"")
        .unwrap_or("")
        .to_owned();
    let r = client
        .post(format!("{base}{pay_path}"))
        .form(&[
            ("csrf", csrf),
            ("idem", &idem),
            ("card_holder", "Élodie Martin"),
            ("card_number", "4242424242424242"),
            ("card_expiry", "12/39"),
            ("card_cvv", "123"),
        ])
        .send()
        .await?;
    anyhow::ensure!(r.status() == 303, "pay: {}", r.status());
    let order_path = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let page = client
        .get(format!("{base}{order_path}"))
        .send()
        .await?
        .text()
        .await?;
    let ticket = between(&page, "href=\"/tickets/", "/ticket.pdf")
        .ok_or_else(|| anyhow::anyhow!("no ticket on the order page"))?
        .to_owned();
    let r = client
        .get(format!("{base}/tickets/{ticket}/qr.png"))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "qr: {}", r.status());
    r.bytes().await?;
    Ok(())
}
