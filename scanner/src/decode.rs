//! QR decoding for webcams: zxing-cpp reads, rqrr gives a second opinion,
//! and both run behind a guard.
//!
//! zxing-cpp (its C++ core, built with the crate) finds small, blurred,
//! noisy and JPEG-blocked codes that rqrr misses, in a few milliseconds a
//! 720p frame; rqrr still reads some perspective and glare frames that
//! zxing-cpp does not (measured with `scripts/decode-rate.sh`). Each frame
//! goes through cheap attempts first and dearer ones only when those fail:
//!
//! 1. the region where the last code was found (a code held up to the
//!    camera stays put for a second or two), with zxing-cpp then rqrr;
//! 2. zxing-cpp on the whole frame (it searches at several scales itself);
//! 3. the second opinions: zxing-cpp on the frame sharpened by an unsharp
//!    mask (blur, motion), then rqrr on the frame at half resolution, on the
//!    half frame binarised at Otsu's threshold (dim screens, glare), and on
//!    the full frame.
//!
//! On a camera stream ([`Mode::Stream`]) a frame gets one second opinion
//! only, a different one from the frame before: consecutive frames of one
//! presentation are nearly the same picture, so the attempt that just failed
//! is the least likely to succeed, and the frame's time stays within the
//! gate's budget. A single photo ([`Mode::Photo`], `verify`) gets them all.
//!
//! Whatever a decoder answers is only a string: the gate parses it strictly
//! and checks its signature, the same for both decoders.
//!
//! The decoders run on a thread of their own, behind [`std::panic::catch_unwind`]
//! and a time cap: a crafted frame that makes a decoder panic or loop costs
//! that frame, never the gate (see [`Miss::Stopped`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use image::{GrayImage, Luma};
use jo_shared::qr;

/// Which attempt read the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attempt {
    /// The last code's region.
    Region,
    /// zxing-cpp on the whole frame.
    Zxing,
    /// zxing-cpp on the whole frame sharpened (an unsharp mask: blurred
    /// and moving codes, soft shadows).
    Sharpened,
    /// rqrr at half resolution.
    Half,
    /// rqrr at full resolution.
    Full,
    /// rqrr on the Otsu-binarised half-resolution frame.
    Binarised,
}

/// The second opinions, in the order a stream cycles through them (a
/// single picture gets them all, in this order).
const SECOND_OPINIONS: [Attempt; 4] = [
    Attempt::Sharpened,
    Attempt::Half,
    Attempt::Binarised,
    Attempt::Full,
];

/// A successful decode.
#[derive(Debug, Clone)]
pub struct Found {
    /// The code's text.
    pub text: String,
    /// Which attempt read it.
    pub attempt: Attempt,
}

/// Why a frame gave no code although something was there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// Several different codes in one frame (a ticket beside another, a
    /// poster behind): none is taken, the holder is asked to show one.
    SeveralCodes,
    /// The decoder was stopped (it panicked, or overran [`HARD_CAP`]); the
    /// frame says nothing about what is in front of the camera.
    Stopped,
}

impl Miss {
    /// A short code for logs and the command line.
    pub fn reason_code(self) -> &'static str {
        match self {
            Self::SeveralCodes => "several_codes",
            Self::Stopped => "decoder_stopped",
        }
    }
}

/// How many attempts a frame gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A camera stream: one second opinion a frame, a different one each frame.
    Stream,
    /// A single picture: every attempt, within [`PHOTO_BUDGET`].
    Photo,
}

/// No new attempt starts on a stream frame after this long: the gate's
/// frame-to-verdict budget at 720p is 30 ms, and logging a scan durably
/// (an fsync) takes its share of it.
pub const STREAM_BUDGET: Duration = Duration::from_millis(22);

/// No new attempt starts on a single picture after this long.
pub const PHOTO_BUDGET: Duration = Duration::from_millis(45);

/// A frame's decoding is abandoned after this long, whatever a decoder is
/// doing (a crafted frame must not hold the gate): every frame is answered
/// in under 100 ms, with room for a loaded machine's scheduling.
pub const HARD_CAP: Duration = Duration::from_millis(60);

/// Decoder threads abandoned after overrunning the cap that may still be
/// running; while this many are, frames are not decoded (so a stream of
/// hostile frames cannot pile up threads, CPU or memory).
const MAX_ABANDONED: usize = 2;

/// Most symbols read in one frame: enough to tell "several codes", and a
/// bound on the work a frame full of codes can cause.
const MAX_SYMBOLS: usize = 4;

/// Frames without a code after which a stream forgets where the last code
/// was: as many as end a presentation at the gate (a code blurred by a hand
/// moving for a frame or two is still looked for where it was).
pub const REGION_KEEP: u32 = 8;

/// Side, in frame pixels, above which a code is read at half scale in its
/// region by rqrr: tickets are QR version 10 at most (57 modules), so 240 px
/// keeps more than 2 px per module after halving.
const BIG_CODE_SIDE: i32 = 240;

/// A symbol read by one of the decoders.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Symbol {
    text: String,
    /// Corners in the decoded image's pixels.
    corners: [(i32, i32); 4],
}

/// What the decoding thread is asked to do with one frame.
struct Job {
    frame: GrayImage,
    /// The remembered region `(x, y, w, h)` and whether the code was big.
    region: Option<((u32, u32, u32, u32), bool)>,
    /// Whether the region's second look (after zxing-cpp on the crop) is
    /// zxing-cpp on the sharpened crop (`true`) or rqrr on the crop.
    region_sharpened: bool,
    /// The region comes from before frames without a code: a code read
    /// there is a new presentation, and the whole frame is read too, so that
    /// a ticket shown beside another is still seen as several codes.
    region_stale: bool,
    /// A second opinion starts only if it should end within the budget,
    /// judged by what the attempt before it took (a stream: the gate's
    /// frame-to-verdict time matters more than one frame's last chance).
    predictive: bool,
    /// Attempts after the region, in order.
    plan: Vec<Attempt>,
    budget: Duration,
}

/// What the decoding thread answers.
#[derive(Debug, Clone, Default)]
struct Reply {
    /// The attempt that read symbols, with their texts and corners in frame
    /// pixels.
    found: Option<(Attempt, Vec<Symbol>)>,
}

/// The function run on the decoding thread (replaceable in tests, to
/// check the guard against a decoder that panics or loops).
type Reader = Arc<dyn Fn(&Job) -> Reply + Send + Sync>;

/// A decoding thread, fed one job at a time.
struct Worker {
    jobs: mpsc::Sender<Job>,
    replies: mpsc::Receiver<std::thread::Result<Reply>>,
    /// Set when the thread overran and was left to finish on its own.
    given_up: Arc<AtomicBool>,
}

/// Remembers where the last code was and which second opinion was tried
/// last, across frames; owns the guarded decoding thread.
pub struct FrameDecoder {
    mode: Mode,
    region: Option<(u32, u32, u32, u32)>,
    /// The last code was large enough to read its region at half scale.
    big: bool,
    /// Frames in a row without a code since the region was last seen.
    region_misses: u32,
    /// The last frame's region second look was the sharpened crop.
    region_sharpened: bool,
    /// Index into [`SECOND_OPINIONS`] of the next frame's second opinion.
    next_opinion: usize,
    reader: Reader,
    worker: Option<Worker>,
    /// Abandoned threads still running.
    abandoned: Arc<AtomicUsize>,
    miss: Option<Miss>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("mode", &self.mode)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl FrameDecoder {
    /// A decoder for a camera stream, with no region yet.
    pub fn new() -> Self {
        Self::with_mode(Mode::Stream)
    }

    /// A decoder for single pictures (every attempt on each).
    pub fn photo() -> Self {
        Self::with_mode(Mode::Photo)
    }

    /// A decoder in the given mode.
    pub fn with_mode(mode: Mode) -> Self {
        Self::with_reader(mode, Arc::new(read))
    }

    fn with_reader(mode: Mode, reader: Reader) -> Self {
        Self {
            mode,
            region: None,
            big: false,
            region_misses: 0,
            region_sharpened: false,
            next_opinion: 0,
            reader,
            worker: None,
            abandoned: Arc::new(AtomicUsize::new(0)),
            miss: None,
        }
    }

    /// Why the last frame decoded gave no code although it was not simply
    /// empty, if so.
    pub fn last_miss(&self) -> Option<Miss> {
        self.miss
    }

    /// Decodes one frame. Returns the code found, if any, and the time taken.
    pub fn decode(&mut self, frame: &GrayImage) -> (Option<Found>, Duration) {
        let start = Instant::now();
        self.miss = None;
        let found = self.attempts(frame);
        (found, start.elapsed())
    }

    fn attempts(&mut self, frame: &GrayImage) -> Option<Found> {
        let region = self
            .region
            .filter(|&(x, y, w, h)| x + w <= frame.width() && y + h <= frame.height())
            .map(|r| (r, self.big));
        let (plan, budget) = match self.mode {
            Mode::Photo => {
                let mut plan = vec![Attempt::Zxing];
                plan.extend(SECOND_OPINIONS);
                (plan, PHOTO_BUDGET)
            }
            Mode::Stream => {
                let opinion = SECOND_OPINIONS[self.next_opinion % SECOND_OPINIONS.len()];
                self.next_opinion = (self.next_opinion + 1) % SECOND_OPINIONS.len();
                (vec![Attempt::Zxing, opinion], STREAM_BUDGET)
            }
        };
        // A stream alternates the region's second look, frame by frame; a
        // single picture has no region.
        self.region_sharpened = !self.region_sharpened;
        let job = Job {
            frame: frame.clone(),
            region,
            region_sharpened: self.region_sharpened,
            region_stale: self.region_misses > 0,
            predictive: self.mode == Mode::Stream,
            plan,
            budget,
        };
        let Some(reply) = self.run_guarded(job) else {
            self.miss = Some(Miss::Stopped);
            self.region = None;
            return None;
        };
        let Some((attempt, symbols)) = reply.found else {
            // A single picture's region says nothing of the next picture;
            // a stream's does, for the length of a presentation.
            self.region_misses += 1;
            if self.mode == Mode::Photo || self.region_misses >= REGION_KEEP {
                self.region = None;
            }
            return None;
        };
        let mut texts: Vec<&str> = symbols.iter().map(|s| s.text.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        if texts.len() > 1 {
            self.miss = Some(Miss::SeveralCodes);
            self.region = None;
            return None;
        }
        let first = symbols.into_iter().next()?;
        self.remember(&first.corners, frame);
        Some(Found {
            text: first.text,
            attempt,
        })
    }

    /// Runs `job` on the decoding thread, waiting at most [`HARD_CAP`].
    /// `None` when the decoder panicked, overran, or too many overrunning
    /// decoders are still running.
    fn run_guarded(&mut self, job: Job) -> Option<Reply> {
        if self.worker.is_none() {
            if self.abandoned.load(Ordering::SeqCst) >= MAX_ABANDONED {
                return None;
            }
            self.worker = self.spawn();
        }
        let worker = self.worker.as_ref()?;
        if worker.jobs.send(job).is_err() {
            self.worker = None;
            return None;
        }
        match worker.replies.recv_timeout(HARD_CAP) {
            Ok(Ok(reply)) => Some(reply),
            // It panicked, was caught, and keeps serving.
            Ok(Err(_)) => None,
            Err(_) => {
                // Overran (or died): abandon it. It lowers the count when it
                // ends (flag and count first: it may end at once).
                worker.given_up.store(true, Ordering::SeqCst);
                self.abandoned.fetch_add(1, Ordering::SeqCst);
                self.worker = None;
                None
            }
        }
    }

    fn spawn(&self) -> Option<Worker> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (reply_tx, replies) = mpsc::channel();
        let reader = Arc::clone(&self.reader);
        let abandoned = Arc::clone(&self.abandoned);
        let given_up = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&given_up);
        std::thread::Builder::new()
            .name("qr-decode".into())
            .spawn(move || {
                while let Ok(job) = job_rx.recv() {
                    let reply =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader(&job)));
                    if reply_tx.send(reply).is_err() {
                        break;
                    }
                }
                // The loop ends when the decoder is dropped or gave up on
                // this thread; only the latter was counted.
                if flag.load(Ordering::SeqCst) {
                    abandoned.fetch_sub(1, Ordering::SeqCst);
                }
            })
            .ok()?;
        Some(Worker {
            jobs,
            replies,
            given_up,
        })
    }

    /// Keeps the code's bounding box (in frame pixels) with a margin of half
    /// its size, for the next frame.
    fn remember(&mut self, corners: &[(i32, i32); 4], frame: &GrayImage) {
        let xs = corners.map(|c| c.0);
        let ys = corners.map(|c| c.1);
        let (min_x, max_x) = (
            xs.iter().min().copied().unwrap_or(0),
            xs.iter().max().copied().unwrap_or(0),
        );
        let (min_y, max_y) = (
            ys.iter().min().copied().unwrap_or(0),
            ys.iter().max().copied().unwrap_or(0),
        );
        let mx = (max_x - min_x) / 2;
        let my = (max_y - min_y) / 2;
        self.big = (max_x - min_x).min(max_y - min_y) >= BIG_CODE_SIDE;
        self.region_misses = 0;
        let x0 = (min_x - mx).max(0) as u32;
        let y0 = (min_y - my).max(0) as u32;
        let x1 = ((max_x + mx).max(0) as u32).min(frame.width());
        let y1 = ((max_y + my).max(0) as u32).min(frame.height());
        self.region = (x1 > x0 + 20 && y1 > y0 + 20).then(|| (x0, y0, x1 - x0, y1 - y0));
    }
}

/// The decoding thread's work on one job: the region, then the plan, the
/// first attempt that reads anything winning; no attempt starts after the
/// budget.
fn read(job: &Job) -> Reply {
    let start = Instant::now();
    let frame = &job.frame;
    if let Some(((x, y, w, h), big)) = job.region {
        let crop = image::imageops::crop_imm(frame, x, y, w, h).to_image();
        let mut found = zxing(&crop);
        if found.is_empty() && job.region_sharpened {
            if let Some(sharp) = sharpen(&crop, start + job.budget) {
                found = zxing(&sharp);
            }
        } else if found.is_empty() {
            // A large code keeps modules of several pixels at half scale,
            // where rqrr works on a quarter of the pixels.
            found = if big {
                scaled(rqrr(&half(&crop)), 2)
            } else {
                rqrr(&crop)
            };
        }
        if !found.is_empty() {
            let mut found = offset(found, x, y);
            if job.region_stale {
                found.extend(zxing(frame));
            }
            return Reply {
                found: Some((Attempt::Region, found)),
            };
        }
    }
    let mut halved: Option<GrayImage> = None;
    let mut last_cost = Duration::ZERO;
    for (i, &attempt) in job.plan.iter().enumerate() {
        // The main reader always has its go (the hard cap still holds);
        // the budget decides the second opinions.
        let expected = if job.predictive {
            last_cost
        } else {
            Duration::ZERO
        };
        if i > 0 && start.elapsed() + expected >= job.budget {
            break;
        }
        let attempt_start = Instant::now();
        let found = match attempt {
            Attempt::Zxing | Attempt::Region => zxing(frame),
            Attempt::Sharpened => sharpen(frame, start + job.budget)
                .map(|sharp| zxing(&sharp))
                .unwrap_or_default(),
            Attempt::Half => scaled(rqrr(halved.get_or_insert_with(|| half(frame))), 2),
            Attempt::Binarised => scaled(
                rqrr(&binarise(halved.get_or_insert_with(|| half(frame)))),
                2,
            ),
            Attempt::Full => rqrr(frame),
        };
        if !found.is_empty() {
            return Reply {
                found: Some((attempt, found)),
            };
        }
        last_cost = attempt_start.elapsed();
    }
    Reply::default()
}

/// The only symbol read: tickets are (model 2) QR codes. Micro QR, rMQR and
/// every other format are not looked for, so never taken for a ticket.
const QR_MODEL_2: zxingcpp::BarcodeFormat = zxingcpp::BarcodeFormat::QRCodeModel2;

/// zxing-cpp's reading of QR codes in `img`, inverted ones included (a
/// phone in dark mode).
fn zxing(img: &GrayImage) -> Vec<Symbol> {
    let Ok(view) = zxingcpp::ImageView::from_slice(
        img.as_raw(),
        img.width(),
        img.height(),
        zxingcpp::ImageFormat::Lum,
    ) else {
        return Vec::new();
    };
    let reader = zxingcpp::read()
        .formats([QR_MODEL_2])
        .try_harder(true)
        .try_invert(true)
        // QR symbols are read at any angle; turning the frame is for
        // linear codes.
        .try_rotate(false)
        .try_downscale(true)
        .max_number_of_symbols(MAX_SYMBOLS as i32);
    let Ok(barcodes) = reader.from(view) else {
        return Vec::new();
    };
    barcodes
        .into_iter()
        // A model 2 symbol reports its family's format, QRCode.
        .filter(|b| {
            b.is_valid()
                && matches!(
                    b.format(),
                    zxingcpp::BarcodeFormat::QRCode | zxingcpp::BarcodeFormat::QRCodeModel2
                )
        })
        .take(MAX_SYMBOLS)
        .map(|b| {
            let p = b.position();
            Symbol {
                text: b.text(),
                corners: [p.top_left, p.top_right, p.bottom_right, p.bottom_left]
                    .map(|c| (c.x, c.y)),
            }
        })
        .collect()
}

/// rqrr's reading of `img`.
fn rqrr(img: &GrayImage) -> Vec<Symbol> {
    qr::decode_symbols(img)
        .map(|found| {
            found
                .into_iter()
                .take(MAX_SYMBOLS)
                .map(|d| Symbol {
                    text: d.text,
                    corners: d.corners,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Corners found in an image `factor` times smaller than the frame, in frame pixels.
fn scaled(found: Vec<Symbol>, factor: i32) -> Vec<Symbol> {
    found
        .into_iter()
        .map(|s| Symbol {
            corners: s.corners.map(|(x, y)| (x * factor, y * factor)),
            ..s
        })
        .collect()
}

/// Corners found in a crop at `(x, y)`, in frame pixels.
fn offset(found: Vec<Symbol>, x: u32, y: u32) -> Vec<Symbol> {
    let (x, y) = (x as i32, y as i32);
    found
        .into_iter()
        .map(|s| Symbol {
            corners: s.corners.map(|(cx, cy)| (cx + x, cy + y)),
            ..s
        })
        .collect()
}

/// Half resolution by averaging 2×2 blocks (cheaper than a general resize,
/// and averaging smooths sensor noise and screen moiré).
pub fn half(img: &GrayImage) -> GrayImage {
    let (w, h) = (img.width() / 2, img.height() / 2);
    let src = img.as_raw();
    let stride = img.width() as usize;
    GrayImage::from_fn(w, h, |x, y| {
        let (x, y) = (2 * x as usize, 2 * y as usize);
        let s = u16::from(src[y * stride + x])
            + u16::from(src[y * stride + x + 1])
            + u16::from(src[(y + 1) * stride + x])
            + u16::from(src[(y + 1) * stride + x + 1]);
        Luma([(s / 4) as u8])
    })
}

/// Radius of the box blur behind [`sharpen`]: two passes of a 5-pixel box
/// each way are close to a Gaussian of σ 2 px, the blur of a webcam slightly
/// out of focus.
const SHARPEN_RADIUS: usize = 2;

/// How much of the difference with the blurred picture is added back, in
/// halves (3: one and a half times).
const SHARPEN_HALVES: i16 = 3;

/// An unsharp mask: the picture plus one and a half times its difference
/// with a blurred copy. It steepens the module edges that blur and motion
/// soften; measured with zxing-cpp on the hard tier, it reads about twice
/// the blurred frames. `None` when `deadline` passes first (the box blurs
/// are linear in the picture's size, a few milliseconds at 720p in a
/// release build, but a frame's budget is the gate's, not the filter's).
pub fn sharpen(img: &GrayImage, deadline: Instant) -> Option<GrayImage> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Some(img.clone());
    }
    let mut a = img.as_raw().clone();
    let mut b = vec![0u8; a.len()];
    for _ in 0..2 {
        box_rows(&a, &mut b, w, deadline)?;
        box_columns(&b, &mut a, w, h, deadline)?;
    }
    for (o, &p) in a.iter_mut().zip(img.as_raw()) {
        let (p, blurred) = (i16::from(p), i16::from(*o));
        *o = (p + SHARPEN_HALVES * (p - blurred) / 2).clamp(0, 255) as u8;
    }
    GrayImage::from_raw(img.width(), img.height(), a)
}

/// Horizontal box blur of radius [`SHARPEN_RADIUS`] (edges clamped), by a
/// running sum along each row.
fn box_rows(src: &[u8], dst: &mut [u8], w: usize, deadline: Instant) -> Option<()> {
    let r = SHARPEN_RADIUS;
    let k = (2 * r + 1) as u32;
    for (row, out) in src.chunks_exact(w).zip(dst.chunks_exact_mut(w)) {
        if Instant::now() > deadline {
            return None;
        }
        let at = |i: usize| u32::from(row[i.min(w - 1)]);
        // The window around x = 0: r copies of the first pixel, then 0..=r.
        let mut sum = r as u32 * at(0) + (0..=r).map(at).sum::<u32>();
        for (x, o) in out.iter_mut().enumerate() {
            *o = ((sum + k / 2) / k) as u8;
            sum = sum + at(x + r + 1) - at(x.saturating_sub(r));
        }
    }
    Some(())
}

/// Vertical box blur of radius [`SHARPEN_RADIUS`] (edges clamped), by
/// running sums of whole rows (memory order).
fn box_columns(src: &[u8], dst: &mut [u8], w: usize, h: usize, deadline: Instant) -> Option<()> {
    let r = SHARPEN_RADIUS;
    let k = (2 * r + 1) as u32;
    let row = |y: usize| &src[y.min(h - 1) * w..][..w];
    let mut sums = vec![0u32; w];
    for dy in 0..=2 * r {
        let y = dy.saturating_sub(r);
        for (s, &p) in sums.iter_mut().zip(row(y)) {
            *s += u32::from(p);
        }
    }
    for (y, out) in dst.chunks_exact_mut(w).enumerate() {
        if Instant::now() > deadline {
            return None;
        }
        for (o, &s) in out.iter_mut().zip(&sums) {
            *o = ((s + k / 2) / k) as u8;
        }
        let (add, sub) = (row(y + r + 1), row(y.saturating_sub(r)));
        for ((s, &a), &d) in sums.iter_mut().zip(add).zip(sub) {
            *s = *s + u32::from(a) - u32::from(d);
        }
    }
    Some(())
}

/// Black and white at Otsu's threshold.
pub fn binarise(img: &GrayImage) -> GrayImage {
    let hist = histogram(img);
    let total: f64 = hist.iter().map(|&n| f64::from(n)).sum();
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &n)| i as f64 * f64::from(n))
        .sum();
    let (mut w_b, mut sum_b, mut best, mut threshold) = (0.0, 0.0, 0.0, 128u8);
    for (i, &n) in hist.iter().enumerate() {
        w_b += f64::from(n);
        if w_b == 0.0 {
            continue;
        }
        let w_f = total - w_b;
        if w_f == 0.0 {
            break;
        }
        sum_b += i as f64 * f64::from(n);
        let m_b = sum_b / w_b;
        let m_f = (sum_all - sum_b) / w_f;
        let between = w_b * w_f * (m_b - m_f) * (m_b - m_f);
        if between > best {
            best = between;
            threshold = i as u8;
        }
    }
    let mut out = img.clone();
    for p in out.pixels_mut() {
        p.0[0] = if p.0[0] > threshold { 255 } else { 0 };
    }
    out
}

fn histogram(img: &GrayImage) -> [u32; 256] {
    let mut h = [0u32; 256];
    for p in img.pixels() {
        h[usize::from(p.0[0])] += 1;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_with_code(
        text: &str,
        module_px: u32,
        at: (i64, i64),
        contrast: Option<(u8, u8)>,
    ) -> GrayImage {
        let mut sym = qr::render_image(text, module_px).expect("renders");
        if let Some((dark, light)) = contrast {
            for p in sym.pixels_mut() {
                p.0[0] = if p.0[0] < 128 { dark } else { light };
            }
        }
        let bg = contrast.map_or(200, |(_, l)| l);
        let mut frame = GrayImage::from_pixel(1280, 720, Luma([bg]));
        image::imageops::overlay(&mut frame, &sym, at.0, at.1);
        frame
    }

    const TEXT: &str = "ATJSzVkQEBAQEBAQEBAQZQFqZPBAAWhLNBSJFADVSJFAr1ynxCFFQY2pwRRJzHaSvTzXsLC2vRSP4lQ46K38c2DOGC60ZsH8WZwxv2H6qvkvq685cMPsN3Ua90SprUXeCw";

    #[test]
    fn reads_the_whole_frame_then_in_the_remembered_region() {
        let frame = frame_with_code(TEXT, 6, (400, 150), None);
        let mut d = FrameDecoder::new();
        let (found, _) = d.decode(&frame);
        let found = found.expect("reads");
        assert_eq!(found.text, TEXT);
        assert_eq!(found.attempt, Attempt::Zxing);
        let (again, _) = d.decode(&frame);
        assert_eq!(again.expect("reads").attempt, Attempt::Region);
    }

    #[test]
    fn low_contrast_codes_are_read() {
        let text = "low-contrast-ticket-0123456789";
        let frame = frame_with_code(text, 4, (300, 200), Some((120, 150)));
        let mut d = FrameDecoder::photo();
        let (found, _) = d.decode(&frame);
        assert_eq!(found.expect("reads").text, text);
    }

    #[test]
    fn empty_frames_find_nothing_and_forget_the_region() {
        let mut d = FrameDecoder::new();
        let (found, _) = d.decode(&GrayImage::from_pixel(640, 480, Luma([90])));
        assert!(found.is_none());
        assert!(d.region.is_none());
        assert_eq!(d.last_miss(), None);
    }

    #[test]
    fn a_stream_tries_a_different_second_opinion_on_each_frame() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let mut d = FrameDecoder::with_reader(
            Mode::Stream,
            Arc::new(move |job: &Job| {
                if let Ok(mut l) = log.lock() {
                    l.push((job.plan.clone(), job.region_sharpened));
                }
                Reply::default()
            }),
        );
        let frame = GrayImage::from_pixel(64, 64, Luma([90]));
        for _ in 0..5 {
            d.decode(&frame);
        }
        let seen = seen.lock().expect("lock").clone();
        let plans: Vec<&Vec<Attempt>> = seen.iter().map(|(p, _)| p).collect();
        let opinions: Vec<Attempt> = plans.iter().map(|p| p[1]).collect();
        assert!(plans.iter().all(|p| p[0] == Attempt::Zxing));
        // The remembered region's second look alternates too.
        let region_looks: Vec<bool> = seen.iter().map(|(_, s)| *s).collect();
        assert_eq!(region_looks, [true, false, true, false, true]);
        assert_eq!(
            opinions,
            [
                Attempt::Sharpened,
                Attempt::Half,
                Attempt::Binarised,
                Attempt::Full,
                Attempt::Sharpened
            ]
        );
        // No frame repeats the second opinion of the frame before.
        assert!(opinions.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn a_stream_looks_where_the_code_was_for_the_rest_of_a_presentation() {
        let regions = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = Arc::clone(&regions);
        let calls = Arc::new(AtomicUsize::new(0));
        let n = Arc::clone(&calls);
        let mut d = FrameDecoder::with_reader(
            Mode::Stream,
            Arc::new(move |job: &Job| {
                if let Ok(mut l) = log.lock() {
                    l.push(job.region.map(|(r, _)| r));
                }
                // The first frame shows a code at (400, 150); the next ones
                // are blurred past reading.
                if n.fetch_add(1, Ordering::SeqCst) == 0 {
                    Reply {
                        found: Some((
                            Attempt::Zxing,
                            vec![Symbol {
                                text: "code".into(),
                                corners: [(400, 150), (600, 150), (600, 350), (400, 350)],
                            }],
                        )),
                    }
                } else {
                    Reply::default()
                }
            }),
        );
        let frame = GrayImage::from_pixel(1280, 720, Luma([90]));
        for _ in 0..(2 + REGION_KEEP) {
            d.decode(&frame);
        }
        let regions = regions.lock().expect("lock").clone();
        // Nothing known on the first frame; then the code's box with half
        // its size around it, for REGION_KEEP frames without a code.
        assert_eq!(regions[0], None);
        let remembered = Some((300, 50, 400, 400));
        assert!(
            regions[1..=REGION_KEEP as usize]
                .iter()
                .all(|r| *r == remembered)
        );
        // Then the presentation is over: the whole frame again.
        assert_eq!(regions[1 + REGION_KEEP as usize], None);
    }

    #[test]
    fn sharpening_steepens_edges_and_leaves_flat_areas_alone() {
        let mut img = GrayImage::from_pixel(40, 40, Luma([100]));
        for y in 0..40 {
            for x in 20..40 {
                img.put_pixel(x, y, Luma([160]));
            }
        }
        let soft = image::imageops::blur(&img, 2.0);
        let later = Instant::now() + Duration::from_secs(10);
        let sharp = sharpen(&soft, later).expect("in time");
        assert_eq!(sharp.dimensions(), soft.dimensions());
        // Far from the edge, flat stays flat.
        assert!(sharp.get_pixel(3, 5).0[0].abs_diff(soft.get_pixel(3, 5).0[0]) <= 1);
        // Across the edge, the step is steeper than in the blurred picture.
        let step =
            |i: &GrayImage| i32::from(i.get_pixel(21, 5).0[0]) - i32::from(i.get_pixel(18, 5).0[0]);
        assert!(
            step(&sharp) > step(&soft),
            "{} <= {}",
            step(&sharp),
            step(&soft)
        );
        // Degenerate pictures come back as they are.
        let tiny = |img: GrayImage| sharpen(&img, later).expect("in time");
        assert_eq!(tiny(GrayImage::new(0, 0)).dimensions(), (0, 0));
        assert_eq!(tiny(GrayImage::from_pixel(1, 1, Luma([7]))).as_raw(), &[7]);
        assert_eq!(
            tiny(GrayImage::from_pixel(3, 2, Luma([7]))).as_raw(),
            &[7; 6]
        );
        // Past its deadline it gives up rather than hold the frame.
        let past = Instant::now() - Duration::from_millis(1);
        assert!(sharpen(&soft, past).is_none());
    }

    #[test]
    fn a_code_back_in_the_region_beside_another_is_still_several_codes() {
        let mut d = FrameDecoder::new();
        let held = frame_with_code(TEXT, 4, (400, 150), None);
        assert_eq!(d.decode(&held).0.expect("reads").text, TEXT);
        // The holder steps away; the same ticket comes back where it was,
        // a fake beside it, outside the remembered region.
        let (nothing, _) = d.decode(&GrayImage::from_pixel(1280, 720, Luma([200])));
        assert!(nothing.is_none());
        let mut pair = held.clone();
        let fake = qr::render_image("fake-ticket-0123456789", 4).expect("renders");
        image::imageops::overlay(&mut pair, &fake, 950, 400);
        let (found, _) = d.decode(&pair);
        assert!(found.is_none(), "{found:?}");
        assert_eq!(d.last_miss(), Some(Miss::SeveralCodes));
    }

    #[test]
    fn two_different_codes_in_one_frame_are_not_taken() {
        let mut frame = frame_with_code("first-code-0123456789", 5, (100, 100), None);
        let other = qr::render_image("second-code-9876543210", 5).expect("renders");
        image::imageops::overlay(&mut frame, &other, 800, 200);
        let mut d = FrameDecoder::photo();
        let (found, _) = d.decode(&frame);
        assert!(found.is_none());
        assert_eq!(d.last_miss(), Some(Miss::SeveralCodes));
    }

    #[test]
    fn a_decoder_that_panics_costs_one_frame_and_the_next_is_read() {
        let calls = Arc::new(AtomicUsize::new(0));
        let n = Arc::clone(&calls);
        let mut d = FrameDecoder::with_reader(
            Mode::Photo,
            Arc::new(move |job: &Job| {
                if n.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("crafted frame");
                }
                read(job)
            }),
        );
        let frame = frame_with_code(TEXT, 6, (400, 150), None);
        let (found, took) = d.decode(&frame);
        assert!(found.is_none());
        assert_eq!(d.last_miss(), Some(Miss::Stopped));
        assert!(took < HARD_CAP + Duration::from_millis(50));
        let (found, _) = d.decode(&frame);
        assert_eq!(found.expect("reads after the panic").text, TEXT);
    }

    #[test]
    fn a_decoder_that_loops_is_abandoned_within_the_cap_and_bounded() {
        let frame = frame_with_code(TEXT, 6, (400, 150), None);
        let release = Arc::new(AtomicUsize::new(0));
        let gate = Arc::clone(&release);
        let mut d = FrameDecoder::with_reader(
            Mode::Photo,
            Arc::new(move |_job: &Job| {
                // Loops until released (a decoder stuck on a crafted frame).
                while gate.load(Ordering::SeqCst) == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Reply::default()
            }),
        );
        for _ in 0..5 {
            let (found, took) = d.decode(&frame);
            assert!(found.is_none());
            assert_eq!(d.last_miss(), Some(Miss::Stopped));
            assert!(took < HARD_CAP + Duration::from_millis(50), "{took:?}");
        }
        // Two stuck threads at most; later frames are refused at once.
        assert_eq!(d.abandoned.load(Ordering::SeqCst), MAX_ABANDONED);
        let (_, took) = d.decode(&frame);
        assert!(took < Duration::from_millis(5), "{took:?}");
        // Released, the stuck threads end and decoding resumes.
        release.store(1, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(2);
        while d.abandoned.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(d.abandoned.load(Ordering::SeqCst), 0);
    }
}
