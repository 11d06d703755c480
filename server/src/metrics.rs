//! Prometheus metrics, served at `/metrics` on their own address
//! (`--metrics-addr`, off by default), never on the public port: they tell
//! sales figures and load to whoever reads them.
//!
//! Recorded with the `metrics` facade (a call is a few atomic operations
//! when no recorder is installed, so handlers record unconditionally) and
//! rendered by `metrics-exporter-prometheus`:
//!
//! - `jo_http_requests_duration_seconds{method, route, status}`: latency per
//!   route, labelled with the route's pattern (`/orders/{number}/pay`),
//!   never the raw path (unbounded labels, and paths carry order numbers);
//! - `jo_checkouts_total{outcome}`, `jo_payments_total{outcome}`,
//!   `jo_tickets_issued_total`;
//! - `jo_scans_uploaded_total`, `jo_scan_duplicates_total`,
//!   `jo_scan_conflicts_total{kind}` (`double_admit`, `chain_gap`, …);
//! - `jo_db_pool_wait_seconds`: time a request waited for a database
//!   connection;
//! - `jo_mail_outbox_depth`: mails waiting in the outbox (all nodes'), read
//!   every 5 s.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::orders::{CheckoutOutcome, Order, PaymentResult};
use crate::db::scans::UploadOutcome;

/// Request latency histogram.
pub const REQUEST_DURATION: &str = "jo_http_requests_duration_seconds";
/// Database connection wait histogram.
pub const POOL_WAIT: &str = "jo_db_pool_wait_seconds";

/// The process's recorder: one per process (the `metrics` facade has a
/// single global recorder), shared by every server built in it.
static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let mut handle = HANDLE
        .lock()
        .map_err(|_| anyhow::anyhow!("metrics recorder lock poisoned"))?;
    if let Some(h) = handle.as_ref() {
        return Ok(h.clone());
    }
    // Buckets from 1 ms to 10 s: a page is a few ms, a payment with its
    // signing tens, anything near the proxy's 30 s timeout is an incident.
    let buckets = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let h = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), &buckets)?
        .set_buckets_for_metric(Matcher::Full(POOL_WAIT.into()), &buckets)?
        .install_recorder()
        .context("installing the metrics recorder")?;
    *handle = Some(h.clone());
    Ok(h)
}

/// The `/metrics` endpoint on its own listener, until `stopping` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
    state: crate::state::AppState,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let upkeep = handle.clone();
    let render = move || {
        let h = handle.clone();
        async move {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                h.render(),
            )
                .into_response()
        }
    };
    let app = axum::Router::new().route("/metrics", axum::routing::get(render));
    // Histograms keep their samples until drained: drain them regularly.
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let upkeep = async move {
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
            // A database away is /readyz's to say; the gauge keeps its value.
            if let Ok(depth) = state.store.outbox_depth().await {
                metrics::gauge!("jo_mail_outbox_depth").set(depth as f64);
            }
        }
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stopping.wait_for(|s| *s).await;
    });
    tokio::select! {
        r = server.into_future() => {
            if let Err(e) = r {
                tracing::warn!(error = %e, "metrics endpoint stopped");
            }
        }
        () = upkeep => {}
    }
}

/// Binds the metrics address (at start-up, so a taken port fails the start).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics address {addr}"))?;
    tracing::info!(address = %l.local_addr()?, "metrics at /metrics");
    Ok(l)
}

/// Middleware: the latency of every request, by route pattern.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let res = next.run(req).await;
    metrics::histogram!(
        REQUEST_DURATION,
        "method" => method,
        "route" => route,
        "status" => res.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    res
}

/// A checkout's outcome.
pub fn checkout(outcome: &CheckoutOutcome) {
    let label = match outcome {
        CheckoutOutcome::Created(_) => "ordered",
        CheckoutOutcome::Empty => "empty",
        CheckoutOutcome::Refused(_) => "refused",
        CheckoutOutcome::TooManyPending { .. } => "too_many_pending",
        CheckoutOutcome::TooManySeats { .. } => "too_many_seats",
    };
    metrics::counter!("jo_checkouts_total", "outcome" => label).increment(1);
}

/// A charged payment attempt's outcome (and, when paid, the tickets issued).
pub fn payment(result: &PaymentResult, order: &Order) {
    let label = match result {
        PaymentResult::Paid => "paid",
        PaymentResult::Declined(_) => "declined",
        PaymentResult::Processing => "processing",
        PaymentResult::Refunded => "refunded",
        PaymentResult::Failed => "failed",
    };
    metrics::counter!("jo_payments_total", "outcome" => label).increment(1);
    if matches!(result, PaymentResult::Paid) {
        let tickets: i64 = order.lines.iter().map(|l| l.quantity).sum();
        metrics::counter!("jo_tickets_issued_total").increment(u64::try_from(tickets).unwrap_or(0));
    }
}

/// A scan batch stored: records new, already known, and conflicts recorded
/// by kind (the stored kind string: a closed set, so a bounded label).
pub fn scans(out: &UploadOutcome) {
    metrics::counter!("jo_scans_uploaded_total").increment(u64::from(out.stored));
    metrics::counter!("jo_scan_duplicates_total").increment(out.duplicates.len() as u64);
    for (kind, n) in &out.conflicts_by_kind {
        metrics::counter!("jo_scan_conflicts_total", "kind" => kind.as_str())
            .increment(u64::from(*n));
    }
}

/// Time spent waiting for a database connection.
pub fn pool_wait(waited: Duration) {
    metrics::histogram!(POOL_WAIT).record(waited.as_secs_f64());
}
