//! The headless subcommands' pipeline and output: `verify IMAGE…` and
//! `replay --frames DIR` print one JSON object per line.

use std::time::Instant;

use jo_shared::verify::{Refusal, Verdict};
use serde::Serialize;

use crate::decode::{Attempt, FrameDecoder, Miss};
use crate::frames::{Frame, FrameError, FrameSource};
use crate::gate::Gate;
use crate::store::StoreError;

/// One line of `verify` or `replay` output.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Line {
    /// The image file (verify) or frame label (replay).
    pub file: String,
    /// `admit`, `refuse` or `used`; `null` in replay for a frame without a code.
    pub verdict: Option<&'static str>,
    /// Why refused or used (`bad_signature`, `already_used`, `no_code`, …).
    pub reason: Option<String>,
    /// When refused as `revoked`: why the server revoked it (`transferred`,
    /// `refunded`, …), so that the gate can tell the holder what happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<&'static str>,
    /// The decoded QR string, when one was decoded.
    pub text: Option<String>,
    /// The holder's name, from an authentic ticket only.
    pub holder: Option<String>,
    /// People admitted (or that the ticket admits, when refused but authentic).
    pub admits: Option<u8>,
    /// The ticket's session, from an authentic ticket only.
    pub session: Option<u32>,
    /// When used: the earlier entry's time and gate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_at: Option<i64>,
    /// When used: the gate of the earlier entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_gate: Option<String>,
    /// Whether this is the same code as the previous frame (not a new scan).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
    /// The logged scan's id (a new scan only): the line is printed after the
    /// scan is durably in the log under this id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_id: Option<String>,
    /// Which decoding attempt read the code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<Attempt>,
    /// Decoding time, milliseconds.
    pub decode_ms: f64,
    /// Frame-to-verdict time (decode, verify, durable log), milliseconds.
    pub total_ms: f64,
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// Runs one frame through the pipeline. `Ok(line)` whatever the frame holds;
/// `Err` only when the decision could not be logged (then no verdict exists).
pub fn process(
    gate: &mut Gate,
    decoder: &mut FrameDecoder,
    frame: Result<Frame, FrameError>,
    label: &str,
    now: i64,
    missing_is_refusal: bool,
) -> Result<Line, StoreError> {
    let start = Instant::now();
    let mut line = Line {
        file: label.to_owned(),
        verdict: None,
        reason: None,
        revocation_reason: None,
        text: None,
        holder: None,
        admits: None,
        session: None,
        used_at: None,
        used_gate: None,
        repeat: false,
        scan_id: None,
        attempt: None,
        decode_ms: 0.0,
        total_ms: 0.0,
    };
    let frame = match frame {
        Ok(f) => f,
        Err(e) => {
            line.verdict = Some("refuse");
            line.reason = Some(format!("bad_image: {e}"));
            line.total_ms = ms(start.elapsed());
            return Ok(line);
        }
    };
    line.file = frame.label.clone();
    let (found, decode_time) = decoder.decode(&frame.image);
    line.decode_ms = ms(decode_time);
    let Some(found) = found else {
        match decoder.last_miss() {
            // Two codes at once are refused, whatever the mode: which one
            // the holder meant is not for the gate to guess.
            Some(miss @ Miss::SeveralCodes) => {
                line.verdict = Some("refuse");
                line.reason = Some(miss.reason_code().into());
            }
            Some(miss @ Miss::Stopped) => {
                if missing_is_refusal {
                    line.verdict = Some("refuse");
                    line.reason = Some(miss.reason_code().into());
                }
            }
            None => {
                // Truly nothing in view: the last code has left the frame.
                gate.nothing_seen();
                if missing_is_refusal {
                    line.verdict = Some("refuse");
                    line.reason = Some("no_code".into());
                }
            }
        }
        line.total_ms = ms(start.elapsed());
        return Ok(line);
    };
    line.attempt = Some(found.attempt);
    let scan = gate.scan(&found.text, now)?;
    line.text = Some(found.text);
    fill(&mut line, &scan);
    line.total_ms = ms(start.elapsed());
    Ok(line)
}

/// Decides on a ticket string given as text (no picture: `jo-scanner
/// gate` and the benchmarks), logged like a scan.
pub fn scan_text(gate: &mut Gate, text: &str, label: &str, now: i64) -> Result<Line, StoreError> {
    let start = Instant::now();
    let scan = gate.scan(text, now)?;
    let mut line = Line {
        file: label.to_owned(),
        verdict: None,
        reason: None,
        revocation_reason: None,
        text: Some(text.trim().to_owned()),
        holder: None,
        admits: None,
        session: None,
        used_at: None,
        used_gate: None,
        repeat: false,
        scan_id: None,
        attempt: None,
        decode_ms: 0.0,
        total_ms: 0.0,
    };
    fill(&mut line, &scan);
    line.total_ms = ms(start.elapsed());
    Ok(line)
}

fn fill(line: &mut Line, scan: &crate::gate::Scan) {
    line.verdict = Some(scan.verdict.kind());
    line.reason = scan.verdict.reason_code().map(str::to_owned);
    if let Verdict::Refuse {
        reason: Refusal::Revoked { reason },
        ..
    } = &scan.verdict
    {
        line.revocation_reason = Some(reason.as_str());
    }
    line.repeat = scan.repeat;
    line.scan_id = scan.record.as_ref().map(|r| r.scan_id.to_string());
    if let Some(t) = scan.verdict.ticket() {
        line.holder = Some(t.holder.to_string());
        line.admits = Some(t.admits);
        line.session = Some(t.session_id);
    }
    if let Verdict::AlreadyUsed { prior, .. } = &scan.verdict {
        line.used_at = Some(prior.scanned_at);
        line.used_gate = Some(prior.gate.clone());
    }
}

/// Summary of a replay.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// Frames read.
    pub frames: usize,
    /// Frames in which a code was decoded.
    pub decoded: usize,
    /// New scans (repeats of the previous code excluded).
    pub scans: usize,
    /// Admissions.
    pub admit: usize,
    /// Refusals.
    pub refuse: usize,
    /// Already used.
    pub used: usize,
    /// Frame-to-verdict time, median, milliseconds.
    pub p50_ms: f64,
    /// Frame-to-verdict time, 95th percentile, milliseconds.
    pub p95_ms: f64,
    /// Slowest frame, milliseconds.
    pub max_ms: f64,
}

/// Replays a frame source, calling `emit` for each frame's line, and returns the summary.
pub fn replay(
    gate: &mut Gate,
    source: &mut dyn FrameSource,
    now: impl Fn() -> i64,
    mut emit: impl FnMut(&Line),
) -> Result<Summary, StoreError> {
    let mut decoder = FrameDecoder::new();
    let mut times = Vec::new();
    let mut s = Summary {
        frames: 0,
        decoded: 0,
        scans: 0,
        admit: 0,
        refuse: 0,
        used: 0,
        p50_ms: 0.0,
        p95_ms: 0.0,
        max_ms: 0.0,
    };
    let mut n = 0usize;
    while let Some(frame) = source.next_frame() {
        n += 1;
        let label = format!("frame-{n}");
        let line = process(gate, &mut decoder, frame, &label, now(), false)?;
        s.frames += 1;
        times.push(line.total_ms);
        if line.text.is_some() {
            s.decoded += 1;
        }
        if line.text.is_some() && !line.repeat {
            s.scans += 1;
            match line.verdict {
                Some("admit") => s.admit += 1,
                Some("used") => s.used += 1,
                _ => s.refuse += 1,
            }
        }
        emit(&line);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if times.is_empty() {
            return 0.0;
        }
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        times[i.min(times.len() - 1)]
    };
    s.p50_ms = pct(0.50);
    s.p95_ms = pct(0.95);
    s.max_ms = times.last().copied().unwrap_or(0.0);
    Ok(s)
}
