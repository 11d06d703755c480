//! Up-sync: a batch of a device's scan log, checked whole before anything
//! is stored, then stored whole (with its conflicts) or not at all.

use std::collections::HashSet;

use axum::Json;
use axum::extract::State;
use jo_shared::api::{ScanBatch, ScanBatchResponse, ScanVerdict, batch_message};
use jo_shared::signing::{verify_signature, verifying_key_from_bytes};

use super::error::ApiFailure;
use super::extract::{ApiJson, Device};
use crate::db::scans::{CheckedRecord, LatePolicy};
use crate::state::AppState;

/// Longest `raw` (the scanned text of a refused code), in bytes: more than
/// the largest QR code holds.
pub const MAX_RAW_BYTES: usize = 8 * 1024;

/// Longest `gate` and `reason`, in bytes.
pub const MAX_LABEL_BYTES: usize = 256;

/// Earliest device time accepted (2020-01-01 UTC): anything before is a
/// clock that was never set, or a forged record.
pub const MIN_SCANNED_AT: i64 = 1_577_836_800;
/// Latest device time accepted (2100-01-01 UTC). Times outside the bounds
/// are refused rather than stored: arithmetic on them (lateness, hours)
/// would overflow.
pub const MAX_SCANNED_AT: i64 = 4_102_444_800;
/// Highest log position accepted (2^40, a trillion scans): a position near
/// 2^63 would leave the device no room to upload its next record.
pub const MAX_SEQ: u64 = 1 << 40;

fn bad(i: usize, field: &str, what: &str) -> ApiFailure {
    ApiFailure::BadRequest(format!("records[{i}].{field}: {what}"))
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Checks a batch: bounds, the hash chain inside it, and the device's
/// signature over its last record. Returns the records with their hashes.
/// Whether each admission proves itself is for the store to tell (it holds
/// the tickets issued); an unproven one is stored and flagged, not refused:
/// the device's log must still go up.
pub fn check_batch(
    device: &Device,
    batch: ScanBatch,
    max_records: usize,
) -> Result<Vec<CheckedRecord>, ApiFailure> {
    let n = batch.records.len();
    if n == 0 {
        return Err(ApiFailure::BadRequest(
            "records: a batch holds at least one record".into(),
        ));
    }
    if n > max_records {
        return Err(ApiFailure::BadRequest(format!(
            "records: at most {max_records} records per batch, got {n}"
        )));
    }
    if i64::try_from(batch.pending).is_err() {
        return Err(ApiFailure::BadRequest("pending: out of range".into()));
    }
    let mut seen = HashSet::with_capacity(n);
    let mut out: Vec<CheckedRecord> = Vec::with_capacity(n);
    for (i, record) in batch.records.into_iter().enumerate() {
        if record.seq == 0 || record.seq > MAX_SEQ {
            return Err(bad(i, "seq", "must be between 1 and 2^40"));
        }
        if !(MIN_SCANNED_AT..=MAX_SCANNED_AT).contains(&record.scanned_at) {
            return Err(bad(
                i,
                "scanned_at",
                "must be a Unix time between 2020-01-01 and 2100-01-01",
            ));
        }
        if record
            .signature
            .as_ref()
            .is_some_and(|s| s.len() != 128 || !s.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(bad(i, "signature", "must be 128 hex digits"));
        }
        let prev_hash =
            hex32(&record.prev_hash).ok_or_else(|| bad(i, "prev_hash", "must be 64 hex digits"))?;
        if record.raw.as_ref().is_some_and(|r| r.len() > MAX_RAW_BYTES) {
            return Err(bad(i, "raw", &format!("at most {MAX_RAW_BYTES} bytes")));
        }
        if record
            .reason
            .as_ref()
            .is_some_and(|r| r.len() > MAX_LABEL_BYTES)
        {
            return Err(bad(
                i,
                "reason",
                &format!("at most {MAX_LABEL_BYTES} bytes"),
            ));
        }
        if record.gate.len() > MAX_LABEL_BYTES {
            return Err(bad(i, "gate", &format!("at most {MAX_LABEL_BYTES} bytes")));
        }
        if record.verdict == ScanVerdict::Admit
            && (record.ticket_id.is_none() || record.session_id.is_none())
        {
            return Err(bad(
                i,
                "ticket_id",
                "an admission carries its ticket_id and session_id",
            ));
        }
        if !seen.insert(record.scan_id.clone()) {
            return Err(bad(i, "scan_id", "repeated within the batch"));
        }
        if let Some(prev) = out.last() {
            // The signature covers the last record only; the chain is what
            // binds every earlier record of the batch to it.
            if record.seq != prev.record.seq + 1 || prev_hash != prev.hash {
                return Err(bad(
                    i,
                    "prev_hash",
                    "does not follow the previous record (a batch is a contiguous run of the log)",
                ));
            }
        }
        let hash = record.hash();
        out.push(CheckedRecord {
            record,
            hash,
            prev_hash,
        });
    }
    let last = out.last().ok_or_else(|| {
        ApiFailure::BadRequest("records: a batch holds at least one record".into())
    })?;
    let signature = hex::decode(&batch.signature).map_err(|_| ApiFailure::BadSignature)?;
    let key = verifying_key_from_bytes(&device.public_key).ok_or(ApiFailure::BadSignature)?;
    let message = batch_message(&device.id, last.record.seq, &last.hash);
    verify_signature(&key, &message, &signature).map_err(|_| ApiFailure::BadSignature)?;
    Ok(out)
}

/// Uploads a batch of the device's scan log. Idempotent by scan id: records
/// already stored are reported as duplicates. Conflicts (double admission,
/// admission after revocation, unknown ticket, an admission without a valid
/// ticket text or device signature, gaps or breaks in the hash chain, late
/// uploads) are stored and flagged for admins, never refused.
#[utoipa::path(
    post,
    path = "/api/v1/scans",
    tag = "up-sync",
    security(("bearer" = [])),
    request_body = ScanBatch,
    responses(
        (status = 200, description = "Stored (whole), duplicates reported", body = ScanBatchResponse),
        (status = 400, description = "Malformed batch, broken chain inside it, too many records, or a bad signature (`bad_signature`): nothing stored", body = jo_shared::api::ApiError),
        (status = 401, description = "No valid device token", body = jo_shared::api::ApiError),
        (status = 413, description = "Body too large", body = jo_shared::api::ApiError),
        (status = 429, description = "Rate limited: see Retry-After", body = jo_shared::api::ApiError),
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    device: Device,
    ApiJson(batch): ApiJson<ScanBatch>,
) -> Result<Json<ScanBatchResponse>, ApiFailure> {
    let policy = state.config.api;
    let pending = batch.pending;
    let records = match check_batch(&device, batch, policy.max_batch_records) {
        Ok(r) => r,
        Err(ApiFailure::BadSignature) => {
            // A live token with a batch its key did not sign: a bug, or a
            // stolen token. Worth an admin's attention.
            tracing::warn!(device_id = %device.id, "scan batch with a bad device signature refused");
            return Err(ApiFailure::BadSignature);
        }
        Err(e) => return Err(e),
    };
    let late = LatePolicy {
        late_upload_secs: policy.late_upload_secs,
        future_tolerance_secs: policy.future_tolerance_secs,
    };
    // For admissions of tickets this server never issued (their text is
    // checked against the keyring instead of the issued text).
    let (keyring, _) = crate::trust::current_for(&state)
        .await
        .map_err(ApiFailure::Internal)?;
    let out = state
        .store
        .store_scan_batch(device.id.clone(), records, pending, late, keyring)
        .await?;
    crate::metrics::scans(&out);
    if out.conflicts > 0 {
        tracing::warn!(device_id = %device.id, conflicts = out.conflicts, "scan conflicts recorded");
    }
    Ok(Json(ScanBatchResponse {
        stored: out.stored,
        duplicates: out.duplicates,
        conflicts: out.conflicts,
        server_time: crate::units::time::now(),
    }))
}
