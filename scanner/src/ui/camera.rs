//! Webcams as a [`FrameSource`], through nokhwa (V4L2 on Linux).
//!
//! Frames are asked for in MJPEG (what USB webcams deliver fast at 720p),
//! YUYV or grey, and turned to grey here: the Y plane is the grey picture,
//! and MJPEG goes through the `image` crate's decoder, so no C JPEG library
//! is built. No camera, a camera taken by another program, or one unplugged
//! mid-shift is a [`FrameError::Unavailable`]: the screen says so and manual
//! entry keeps working.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use image::GrayImage;
use nokhwa::Camera;
use nokhwa::utils::{
    ApiBackend, CameraControl, CameraFormat, CameraIndex, ControlValueDescription,
    ControlValueSetter, FrameFormat, KnownCameraControl, KnownCameraControlFlag, RequestedFormat,
    RequestedFormatType,
};

use super::settings::Resolution;
use crate::frames::{Frame, FrameError, FrameSource, Mailbox, Take};

/// Formats we can turn into grey, best first.
const FORMATS: &[FrameFormat] = &[FrameFormat::MJPEG, FrameFormat::YUYV, FrameFormat::GRAY];

/// The frame rate asked for: at 30 fps a code presented to the camera is
/// seen again every 33 ms, and the decoder always has a fresh frame.
pub const WANTED_FPS: u32 = 30;

/// Below this rate a format counts as too slow (many webcams give YUYV at
/// 720p at 10 fps only, over USB 2): a faster format wins over the
/// resolution asked for.
const SMOOTH_FPS: u32 = 25;

/// Consecutive failed reads after which the camera counts as gone (one
/// failed read is often a USB hiccup).
const MAX_FAILED_READS: u32 = 5;

/// A camera found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraInfo {
    /// Index to open it with.
    pub index: u32,
    /// Its name, as the system reports it.
    pub name: String,
}

/// Cameras on this machine (empty when there are none or listing fails:
/// the picker then offers manual entry only).
pub fn list_cameras() -> Vec<CameraInfo> {
    let Ok(found) = nokhwa::query(ApiBackend::Auto) else {
        return Vec::new();
    };
    found
        .iter()
        .filter_map(|c| {
            Some(CameraInfo {
                index: c.index().as_index().ok()?,
                name: c.human_name(),
            })
        })
        .collect()
}

/// Opens camera `index` at about `resolution`; returns the source and the
/// camera's name.
pub fn open(
    index: u32,
    resolution: Resolution,
) -> Result<(Box<dyn FrameSource>, String), FrameError> {
    let source = NokhwaSource::open(index, resolution)?;
    let name = source.name.clone();
    Ok((Box::new(source), name))
}

/// How long without a frame before the camera counts as gone.
const FRAME_TIMEOUT: Duration = Duration::from_secs(3);

/// What the capture thread hands the decoder.
type Slot = Mailbox<Result<Frame, FrameError>>;

/// A webcam. nokhwa's `Camera` may not move between threads, so it lives on
/// a capture thread of its own, which converts frames to grey and puts them
/// in a single-slot [`Mailbox`]: the decoder takes the newest frame when it
/// is free, and the frames it had no time for are dropped (and counted),
/// never queued.
pub struct NokhwaSource {
    frames: Arc<Slot>,
    thread: Option<JoinHandle<()>>,
    name: String,
}

impl NokhwaSource {
    /// Opens camera `index`, asking for the format nearest `resolution` at 30 fps.
    pub fn open(index: u32, resolution: Resolution) -> Result<Self, FrameError> {
        let (opened_tx, opened_rx) = mpsc::channel();
        let frames = Arc::new(Slot::new());
        let thread = {
            let frames = Arc::clone(&frames);
            std::thread::Builder::new()
                .name(format!("camera-{index}"))
                .spawn(move || capture(index, resolution, &opened_tx, &frames))
                .map_err(|e| FrameError::Unavailable(format!("camera thread: {e}")))?
        };
        let mut source = Self {
            frames,
            thread: Some(thread),
            name: String::new(),
        };
        source.name = match opened_rx.recv() {
            Ok(Ok(name)) => name,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(FrameError::Unavailable(format!("camera {index}: stopped"))),
        };
        Ok(source)
    }
}

impl Drop for NokhwaSource {
    fn drop(&mut self) {
        self.frames.close();
        if let Some(t) = self.thread.take() {
            // The capture loop checks the mailbox after each read (one frame time).
            let _ = t.join();
        }
    }
}

impl FrameSource for NokhwaSource {
    fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        Some(match self.frames.take(FRAME_TIMEOUT) {
            Take::Item(frame) => frame,
            Take::Timeout => Err(FrameError::Unavailable(format!(
                "no picture for {} s",
                FRAME_TIMEOUT.as_secs()
            ))),
            Take::Closed => Err(FrameError::Unavailable("camera stopped".into())),
        })
    }

    fn dropped(&self) -> u64 {
        self.frames.dropped()
    }
}

/// The capture thread: opens the camera, reports how that went, then reads
/// frames until the mailbox is closed (the source dropped) or the camera
/// fails for good.
fn capture(
    index: u32,
    resolution: Resolution,
    opened: &Sender<Result<String, FrameError>>,
    frames: &Slot,
) {
    let mut camera = match open_camera(index, resolution) {
        Ok((camera, name)) => {
            if opened.send(Ok(name)).is_err() {
                return;
            }
            camera
        }
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    let mut failed_reads = 0u32;
    let mut n = 0u64;
    let mut meter = RateMeter::new();
    while !frames.is_closed() {
        n += 1;
        let label = format!("camera-{n}");
        let frame = match camera.frame() {
            Ok(buffer) => {
                failed_reads = 0;
                if let Some(fps) = meter.frame(Instant::now()) {
                    MEASURED_FPS.store((fps * 100.0).round().max(1.0) as u32, Ordering::Relaxed);
                }
                let res = buffer.resolution();
                to_gray(
                    buffer.source_frame_format(),
                    res.width(),
                    res.height(),
                    buffer.buffer(),
                )
                .map(|image| Frame {
                    image,
                    label: label.clone(),
                })
                .map_err(|reason| FrameError::BadFrame { label, reason })
            }
            Err(e) => {
                failed_reads += 1;
                if failed_reads >= MAX_FAILED_READS {
                    // Unplugged: tell the worker and end.
                    MEASURED_FPS.store(0, Ordering::Relaxed);
                    frames.put(Err(FrameError::Unavailable(e.to_string())));
                    frames.close();
                    return;
                }
                Err(FrameError::BadFrame {
                    label,
                    reason: e.to_string(),
                })
            }
        };
        // The decoder takes the newest; one it had no time for is dropped.
        if !frames.put(frame) {
            break;
        }
    }
    MEASURED_FPS.store(0, Ordering::Relaxed);
}

fn open_camera(index: u32, resolution: Resolution) -> Result<(Camera, String), FrameError> {
    let wanted = CameraFormat::new_from(
        resolution.width,
        resolution.height,
        FrameFormat::MJPEG,
        WANTED_FPS,
    );
    let request = RequestedFormat::with_formats(RequestedFormatType::Closest(wanted), FORMATS);
    let unavailable =
        |e: nokhwa::NokhwaError| FrameError::Unavailable(format!("camera {index}: {e}"));
    let mut camera = Camera::new(CameraIndex::Index(index), request).map_err(unavailable)?;
    // nokhwa's "closest" weighs resolution and rate its own way; choose
    // among what the camera lists, and keep nokhwa's pick when the camera
    // lists nothing or refuses ours.
    if let Ok(offered) = camera.compatible_camera_formats()
        && let Some(best) = choose_format(&offered, resolution)
        && best != camera.camera_format()
    {
        let exact = RequestedFormat::with_formats(RequestedFormatType::Exact(best), FORMATS);
        let _ = camera.set_camera_requset(exact);
    }
    // Autofocus and auto exposure, where the camera has them: a ticket
    // comes at any distance, under any light. A camera without them, or
    // one that refuses, is used as it is.
    let offered_controls = camera.camera_controls().unwrap_or_default();
    let mut automatic = Vec::new();
    for (control, values) in auto_controls(&offered_controls) {
        if values
            .into_iter()
            .any(|v| camera.set_camera_control(control, v).is_ok())
        {
            automatic.push(control);
        }
    }
    camera.open_stream().map_err(unavailable)?;
    let fmt = camera.camera_format();
    let name = format!(
        "{} ({}×{} {} {} fps{})",
        camera.info().human_name(),
        fmt.resolution().width(),
        fmt.resolution().height(),
        fmt.format(),
        fmt.frame_rate(),
        if automatic.is_empty() { "" } else { ", auto" }
    );
    Ok((camera, name))
}

/// Rank of a pixel format: MJPEG first (USB webcams send 720p at 30 fps
/// only compressed), then YUYV, then grey; `None` for those not converted.
fn format_rank(format: FrameFormat) -> Option<usize> {
    FORMATS.iter().position(|f| *f == format)
}

/// The format to ask for among those a camera offers, for decoding: a
/// smooth rate (at least [`SMOOTH_FPS`]) first, then the resolution nearest
/// `wanted` (by pixel count, larger or smaller alike), then MJPEG before
/// YUYV before grey, then the rate nearest [`WANTED_FPS`]. `None` when no
/// offered format can be turned into grey.
pub fn choose_format(offered: &[CameraFormat], wanted: Resolution) -> Option<CameraFormat> {
    let wanted_px = f64::from(wanted.width.max(1)) * f64::from(wanted.height.max(1));
    offered
        .iter()
        .filter(|f| f.resolution().width() > 0 && f.resolution().height() > 0)
        .filter_map(|f| Some((format_rank(f.format())?, *f)))
        .min_by_key(|(rank, f)| {
            let px = f64::from(f.resolution().width()) * f64::from(f.resolution().height());
            // Distance in octaves of pixel count, in thousandths.
            let distance = ((px / wanted_px).log2().abs() * 1000.0) as u64;
            (
                f.frame_rate() < SMOOTH_FPS,
                distance,
                *rank,
                f.frame_rate().abs_diff(WANTED_FPS),
            )
        })
        .map(|(_, f)| f)
}

/// V4L2's continuous autofocus switch (`V4L2_CID_FOCUS_AUTO`), which nokhwa
/// does not name.
pub const V4L2_FOCUS_AUTO: u32 = 0x009a_090c;
/// V4L2's exposure mode menu (`V4L2_CID_EXPOSURE_AUTO`).
pub const V4L2_EXPOSURE_AUTO: u32 = 0x009a_0901;
/// `V4L2_EXPOSURE_AUTO`: fully automatic exposure.
const EXPOSURE_MODE_AUTO: i64 = 0;
/// `V4L2_EXPOSURE_APERTURE_PRIORITY`: automatic exposure time, what most
/// USB webcams (UVC) offer instead of fully automatic.
const EXPOSURE_MODE_APERTURE_PRIORITY: i64 = 3;

/// The automatic controls to set among those a camera offers, each with the
/// values to try in order (the first the camera accepts wins): continuous
/// autofocus, then auto exposure. Read-only, disabled and absent controls
/// are left alone, and so are controls whose value is not of the kind
/// expected.
pub fn auto_controls(
    offered: &[CameraControl],
) -> Vec<(KnownCameraControl, Vec<ControlValueSetter>)> {
    let settable = |c: &&CameraControl| {
        !c.flag().iter().any(|f| {
            matches!(
                f,
                KnownCameraControlFlag::ReadOnly | KnownCameraControlFlag::Disabled
            )
        })
    };
    let find = |id: u32| {
        offered
            .iter()
            .filter(settable)
            .find(|c| c.control() == KnownCameraControl::Other(u128::from(id)))
    };
    let mut plan = Vec::new();
    if let Some(focus) = find(V4L2_FOCUS_AUTO)
        && matches!(focus.description(), ControlValueDescription::Boolean { .. })
    {
        plan.push((focus.control(), vec![ControlValueSetter::Boolean(true)]));
    }
    if let Some(exposure) = find(V4L2_EXPOSURE_AUTO) {
        // A V4L2 menu comes as an integer range; which of its entries exist
        // is only known by trying.
        let modes: Vec<i64> = match exposure.description() {
            ControlValueDescription::IntegerRange { min, max, .. } => {
                [EXPOSURE_MODE_APERTURE_PRIORITY, EXPOSURE_MODE_AUTO]
                    .into_iter()
                    .filter(|m| (*min..=*max).contains(m))
                    .collect()
            }
            ControlValueDescription::Enum { possible, .. } => {
                [EXPOSURE_MODE_APERTURE_PRIORITY, EXPOSURE_MODE_AUTO]
                    .into_iter()
                    .filter(|m| possible.contains(m))
                    .collect()
            }
            _ => Vec::new(),
        };
        if !modes.is_empty() {
            plan.push((
                exposure.control(),
                modes.into_iter().map(ControlValueSetter::Integer).collect(),
            ));
        }
    }
    plan
}

/// Frame rate measured on the camera delivering frames now, in hundredths
/// of a frame a second (0: no camera streaming). One gate runs one camera.
static MEASURED_FPS: AtomicU32 = AtomicU32::new(0);

/// The frame rate the open camera actually delivers (frames a second,
/// averaged over the last seconds), `None` when no camera streams.
pub fn measured_fps() -> Option<f32> {
    match MEASURED_FPS.load(Ordering::Relaxed) {
        0 => None,
        n => Some(n as f32 / 100.0),
    }
}

/// The sync panel's camera line: the rate measured, or a dash when no
/// camera streams ("Caméra : 29.8 images/s").
pub fn rate_line(t: &super::i18n::Texts) -> String {
    match measured_fps() {
        Some(fps) => format!("{}{}{fps:.1} {}", t.camera_rate, t.colon, t.fps),
        None => format!("{}{}—", t.camera_rate, t.colon),
    }
}

/// Measures a camera's frame rate from the times frames arrive: an average
/// over windows of about a second, so that one late frame does not show.
#[derive(Debug)]
pub struct RateMeter {
    window_start: Option<Instant>,
    frames: u32,
    fps: Option<f32>,
}

/// Length of a measuring window.
const RATE_WINDOW: Duration = Duration::from_secs(1);

impl Default for RateMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateMeter {
    /// A meter that has seen no frame.
    pub fn new() -> Self {
        Self {
            window_start: None,
            frames: 0,
            fps: None,
        }
    }

    /// Counts a frame that arrived at `at`; returns the rate when a window
    /// just closed.
    pub fn frame(&mut self, at: Instant) -> Option<f32> {
        let Some(start) = self.window_start else {
            self.window_start = Some(at);
            return None;
        };
        self.frames += 1;
        let elapsed = at.saturating_duration_since(start);
        if elapsed < RATE_WINDOW {
            return None;
        }
        let fps = self.frames as f32 / elapsed.as_secs_f32();
        self.window_start = Some(at);
        self.frames = 0;
        self.fps = Some(fps);
        self.fps
    }

    /// The last complete window's rate.
    pub fn fps(&self) -> Option<f32> {
        self.fps
    }
}

/// A camera buffer as a grey picture.
pub fn to_gray(
    format: FrameFormat,
    width: u32,
    height: u32,
    data: &[u8],
) -> Result<GrayImage, String> {
    let pixels = (width as usize) * (height as usize);
    let short = || {
        format!(
            "{format} frame of {} bytes for {width}×{height}",
            data.len()
        )
    };
    match format {
        FrameFormat::GRAY => GrayImage::from_raw(
            width,
            height,
            data.get(..pixels).ok_or_else(short)?.to_vec(),
        )
        .ok_or_else(short),
        // Y U Y V: every other byte is luma.
        FrameFormat::YUYV => {
            let luma: Vec<u8> = data
                .get(..pixels * 2)
                .ok_or_else(short)?
                .iter()
                .step_by(2)
                .copied()
                .collect();
            GrayImage::from_raw(width, height, luma).ok_or_else(short)
        }
        // The Y plane comes first.
        FrameFormat::NV12 => GrayImage::from_raw(
            width,
            height,
            data.get(..pixels).ok_or_else(short)?.to_vec(),
        )
        .ok_or_else(short),
        FrameFormat::MJPEG => {
            let mut reader = image::ImageReader::with_format(
                std::io::Cursor::new(data),
                image::ImageFormat::Jpeg,
            );
            // A corrupt frame must not claim a huge picture.
            let mut limits = image::Limits::default();
            limits.max_image_width = Some(jo_shared::qr::MAX_DECODE_SIDE);
            limits.max_image_height = Some(jo_shared::qr::MAX_DECODE_SIDE);
            reader.limits(limits);
            reader
                .decode()
                .map(|img| img.to_luma8())
                .map_err(|e| format!("MJPEG frame: {e}"))
        }
        FrameFormat::RAWRGB | FrameFormat::RAWBGR => {
            let rgb = data.get(..pixels * 3).ok_or_else(short)?;
            let luma: Vec<u8> = rgb
                .chunks_exact(3)
                .map(|p| {
                    let (r, g, b) = if format == FrameFormat::RAWRGB {
                        (p[0], p[1], p[2])
                    } else {
                        (p[2], p[1], p[0])
                    };
                    // Rec. 601 luma, in integers.
                    ((u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000) as u8
                })
                .collect();
            GrayImage::from_raw(width, height, luma).ok_or_else(short)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(w: u32, h: u32, format: FrameFormat, fps: u32) -> CameraFormat {
        CameraFormat::new_from(w, h, format, fps)
    }

    const HD: Resolution = Resolution {
        width: 1280,
        height: 720,
    };

    #[test]
    fn a_typical_usb_webcam_gives_720p_mjpeg_at_30_fps() {
        // What a UVC webcam lists: YUYV is slow at 720p over USB 2.
        let offered = [
            fmt(640, 480, FrameFormat::YUYV, 30),
            fmt(1280, 720, FrameFormat::YUYV, 10),
            fmt(1920, 1080, FrameFormat::YUYV, 5),
            fmt(640, 480, FrameFormat::MJPEG, 30),
            fmt(1280, 720, FrameFormat::MJPEG, 15),
            fmt(1280, 720, FrameFormat::MJPEG, 30),
            fmt(1920, 1080, FrameFormat::MJPEG, 30),
        ];
        assert_eq!(
            choose_format(&offered, HD),
            Some(fmt(1280, 720, FrameFormat::MJPEG, 30))
        );
    }

    #[test]
    fn yuyv_at_30_fps_when_there_is_no_mjpeg_and_a_smooth_rate_before_the_resolution() {
        let offered = [
            fmt(1280, 720, FrameFormat::YUYV, 30),
            fmt(1280, 720, FrameFormat::GRAY, 30),
            fmt(1280, 720, FrameFormat::NV12, 30),
        ];
        assert_eq!(
            choose_format(&offered, HD),
            Some(fmt(1280, 720, FrameFormat::YUYV, 30))
        );
        // 720p only at 10 fps: 640×480 at 30 fps reads codes sooner.
        let slow = [
            fmt(1280, 720, FrameFormat::YUYV, 10),
            fmt(640, 480, FrameFormat::YUYV, 30),
        ];
        assert_eq!(
            choose_format(&slow, HD),
            Some(fmt(640, 480, FrameFormat::YUYV, 30))
        );
        // Only slow rates: the resolution then decides.
        let all_slow = [
            fmt(1280, 720, FrameFormat::YUYV, 10),
            fmt(640, 480, FrameFormat::YUYV, 15),
        ];
        assert_eq!(
            choose_format(&all_slow, HD),
            Some(fmt(1280, 720, FrameFormat::YUYV, 10))
        );
        // 60 fps offered beside 30: 30 is asked for.
        let fast = [
            fmt(1280, 720, FrameFormat::MJPEG, 60),
            fmt(1280, 720, FrameFormat::MJPEG, 30),
        ];
        assert_eq!(
            choose_format(&fast, HD),
            Some(fmt(1280, 720, FrameFormat::MJPEG, 30))
        );
    }

    #[test]
    fn formats_not_turned_into_grey_or_empty_lists_fall_back_to_nokhwa() {
        assert_eq!(choose_format(&[], HD), None);
        assert_eq!(
            choose_format(&[fmt(1280, 720, FrameFormat::NV12, 30)], HD),
            None
        );
        assert_eq!(
            choose_format(&[fmt(0, 0, FrameFormat::MJPEG, 30)], HD),
            None
        );
        // The nearest resolution, larger or smaller, when 720p is missing.
        let offered = [
            fmt(640, 360, FrameFormat::MJPEG, 30),
            fmt(1920, 1080, FrameFormat::MJPEG, 30),
            fmt(3840, 2160, FrameFormat::MJPEG, 30),
        ];
        assert_eq!(
            choose_format(&offered, HD),
            Some(fmt(1920, 1080, FrameFormat::MJPEG, 30))
        );
    }

    fn control(
        id: u32,
        description: ControlValueDescription,
        flags: Vec<KnownCameraControlFlag>,
    ) -> CameraControl {
        CameraControl::new(
            KnownCameraControl::Other(u128::from(id)),
            format!("{id:#x}"),
            description,
            flags,
            true,
        )
    }

    #[test]
    fn autofocus_and_auto_exposure_are_asked_for_where_the_camera_has_them() {
        let offered = [
            control(
                0x0098_0900,
                ControlValueDescription::IntegerRange {
                    min: 0,
                    max: 255,
                    value: 128,
                    step: 1,
                    default: 128,
                },
                vec![],
            ),
            control(
                V4L2_FOCUS_AUTO,
                ControlValueDescription::Boolean {
                    value: false,
                    default: true,
                },
                vec![],
            ),
            control(
                V4L2_EXPOSURE_AUTO,
                ControlValueDescription::IntegerRange {
                    min: 0,
                    max: 3,
                    value: 1,
                    step: 1,
                    default: 3,
                },
                vec![],
            ),
        ];
        let plan = auto_controls(&offered);
        assert_eq!(
            plan,
            vec![
                (
                    KnownCameraControl::Other(u128::from(V4L2_FOCUS_AUTO)),
                    vec![ControlValueSetter::Boolean(true)]
                ),
                (
                    KnownCameraControl::Other(u128::from(V4L2_EXPOSURE_AUTO)),
                    vec![
                        ControlValueSetter::Integer(3),
                        ControlValueSetter::Integer(0)
                    ]
                ),
            ]
        );
    }

    #[test]
    fn cameras_without_them_or_that_lock_them_are_left_alone() {
        // A fixed-focus camera with only manual exposure: nothing to set.
        assert!(auto_controls(&[]).is_empty());
        let locked = [
            control(
                V4L2_FOCUS_AUTO,
                ControlValueDescription::Boolean {
                    value: false,
                    default: false,
                },
                vec![KnownCameraControlFlag::ReadOnly],
            ),
            control(
                V4L2_EXPOSURE_AUTO,
                ControlValueDescription::IntegerRange {
                    min: 1,
                    max: 1,
                    value: 1,
                    step: 1,
                    default: 1,
                },
                vec![],
            ),
        ];
        assert!(auto_controls(&locked).is_empty());
        // A value of an unexpected kind is not guessed at.
        let odd = [control(
            V4L2_FOCUS_AUTO,
            ControlValueDescription::String {
                value: "on".into(),
                default: None,
            },
            vec![],
        )];
        assert!(auto_controls(&odd).is_empty());
    }

    #[test]
    fn the_rate_is_measured_over_a_window_of_a_second() {
        let mut meter = RateMeter::new();
        let t0 = Instant::now();
        // 30 fps for three seconds, one frame late by 100 ms in the first.
        let mut rates = Vec::new();
        for i in 0..=90u64 {
            let late = if i == 20 { 100_000 } else { 0 };
            if let Some(r) = meter.frame(t0 + Duration::from_micros(i * 33_333 + late)) {
                rates.push(r);
            }
        }
        assert_eq!(rates.len(), 2, "{rates:?}");
        assert!(rates.iter().all(|r| (r - 30.0).abs() < 1.0), "{rates:?}");
        assert_eq!(meter.fps(), rates.last().copied());
    }

    #[test]
    fn the_sync_panel_line_says_the_rate_in_both_languages() {
        // No camera streams in unit tests: a dash, never a made-up rate.
        assert_eq!(
            rate_line(super::super::i18n::Lang::Fr.texts()),
            "Caméra : —"
        );
        MEASURED_FPS.store(2_987, Ordering::Relaxed);
        let en = rate_line(super::super::i18n::Lang::En.texts());
        MEASURED_FPS.store(0, Ordering::Relaxed);
        assert_eq!(en, "Camera: 29.9 fps");
    }

    #[test]
    fn yuyv_luma_is_every_other_byte() {
        // 2×1 pixels: Y0 U Y1 V.
        let img = to_gray(FrameFormat::YUYV, 2, 1, &[10, 128, 200, 128]).expect("converts");
        assert_eq!(img.as_raw(), &[10, 200]);
    }

    #[test]
    fn short_or_corrupt_buffers_are_bad_frames_not_panics() {
        assert!(to_gray(FrameFormat::YUYV, 640, 480, &[0; 10]).is_err());
        assert!(to_gray(FrameFormat::GRAY, 640, 480, &[]).is_err());
        assert!(to_gray(FrameFormat::MJPEG, 640, 480, b"not a jpeg").is_err());
        assert!(to_gray(FrameFormat::RAWBGR, 2, 2, &[1, 2, 3]).is_err());
    }

    #[test]
    fn mjpeg_frames_decode_to_grey() {
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageLuma8(GrayImage::from_pixel(32, 16, image::Luma([77])))
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .expect("encodes");
        let img = to_gray(FrameFormat::MJPEG, 32, 16, &jpeg).expect("decodes");
        assert_eq!(img.dimensions(), (32, 16));
        assert!(img.pixels().all(|p| p.0[0].abs_diff(77) <= 2));
    }
}
