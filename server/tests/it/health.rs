//! The probes a proxy and an orchestrator use: `/healthz` (the process
//! answers) and `/readyz` (it can serve).

use crate::common::{Browser, spawn_app};

#[tokio::test]
async fn readyz_says_ready_then_not_once_the_signing_key_is_withdrawn() {
    let app = spawn_app().await;
    let b = Browser::new(&app);
    let (status, body) = b.get_text("/healthz").await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "ok"));
    let (status, body) = b.get_text("/readyz").await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "ready\n"));

    // An operator withdraws the key this node signs with: the node must
    // leave the proxy's rotation (it would sell tickets the gates refuse).
    let keys = app.data.path().join("data").join("keys");
    let key_id = jo_shared::keys::load_signer(&keys)
        .expect("the node's key")
        .key_id();
    std::fs::write(
        keys.join(jo_shared::keys::WITHDRAWN_FILE),
        format!("{key_id}\n"),
    )
    .expect("withdraws");
    let r = b.get("/readyz").await;
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body = r.text().await.expect("body");
    assert!(body.starts_with("not ready: the signing key"), "{body}");
    assert!(!body.contains('/'), "no path in a public answer: {body}");
    // Alive all the same.
    assert_eq!(b.get("/healthz").await.status().as_u16(), 200);
}

/// A throwaway PostgreSQL cluster of this test's own (the shared one of the
/// test run must not be stopped under the other tests).
struct OwnCluster {
    dir: std::path::PathBuf,
}

impl OwnCluster {
    fn script(&self, what: &str) -> String {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-throwaway.sh");
        let out = std::process::Command::new(script)
            .arg(what)
            .arg(&self.dir)
            .output()
            .expect("runs pg-throwaway.sh");
        assert!(
            out.status.success(),
            "pg-throwaway.sh {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-throwaway.sh");
        let _ = std::process::Command::new(script)
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_lost_while_serving_is_503_then_the_node_recovers_by_itself() {
    // Runs in the PostgreSQL pass of scripts/test (a lost SQLite file is
    // not a state the embedded database has).
    if std::env::var_os("JO_TEST_DATABASE_URL").is_none() {
        assert!(
            std::env::var("JO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "JO_TEST_DATABASE_URL is not set"
        );
        eprintln!("skipped: JO_TEST_DATABASE_URL is not set (scripts/test sets it)");
        return;
    }
    let cluster = OwnCluster {
        dir: std::env::temp_dir().join(format!("jo-lost-db-{}", std::process::id())),
    };
    let url = cluster.script("start");
    let app = crate::common::spawn_app_with(|c| {
        c.postgres = Some(jo_server::config::PostgresSettings {
            url: jo_server::config::Secret::new(url.clone()),
            password: None,
            connections: 4,
        });
    })
    .await;
    let b = Browser::new(&app);
    assert_eq!(b.get("/sessions").await.status().as_u16(), 200);

    cluster.script("pause");
    let r = b.get("/sessions").await;
    assert_eq!(
        r.status().as_u16(),
        503,
        "a page while the database is away"
    );
    let retry: u32 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(retry > 0);
    let body = r.text().await.expect("body");
    assert!(body.contains("Réessayez dans quelques secondes"), "{body}");
    let r = b.get("/readyz").await;
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.text().await.expect("body").contains("database"));
    assert_eq!(b.get("/healthz").await.status().as_u16(), 200, "alive");

    // Back: the node serves again without a restart.
    cluster.script("resume");
    let mut status = 0;
    for _ in 0..50 {
        status = b.get("/sessions").await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200, "recovered once the database is back");
    assert_eq!(b.get("/readyz").await.status().as_u16(), 200);
}
