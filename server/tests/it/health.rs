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
