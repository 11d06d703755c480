//! Webcams as a [`FrameSource`], through nokhwa (V4L2 on Linux).
//!
//! Frames are asked for in MJPEG (what USB webcams deliver fast at 720p),
//! YUYV or grey, and turned to grey here: the Y plane is the grey picture,
//! and MJPEG goes through the `image` crate's decoder, so no C JPEG library
//! is built. No camera, a camera taken by another program, or one unplugged
//! mid-shift is a [`FrameError::Unavailable`]: the screen says so and manual
//! entry keeps working.

use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use image::GrayImage;
use nokhwa::Camera;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};

use super::settings::Resolution;
use crate::frames::{Frame, FrameError, FrameSource, Mailbox, Take};

/// Formats we can turn into grey, best first.
const FORMATS: &[FrameFormat] = &[FrameFormat::MJPEG, FrameFormat::YUYV, FrameFormat::GRAY];

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
    while !frames.is_closed() {
        n += 1;
        let label = format!("camera-{n}");
        let frame = match camera.frame() {
            Ok(buffer) => {
                failed_reads = 0;
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
            return;
        }
    }
}

fn open_camera(index: u32, resolution: Resolution) -> Result<(Camera, String), FrameError> {
    let wanted =
        CameraFormat::new_from(resolution.width, resolution.height, FrameFormat::MJPEG, 30);
    let request = RequestedFormat::with_formats(RequestedFormatType::Closest(wanted), FORMATS);
    let unavailable =
        |e: nokhwa::NokhwaError| FrameError::Unavailable(format!("camera {index}: {e}"));
    let mut camera = Camera::new(CameraIndex::Index(index), request).map_err(unavailable)?;
    camera.open_stream().map_err(unavailable)?;
    let fmt = camera.camera_format();
    let name = format!(
        "{} ({}×{} {})",
        camera.info().human_name(),
        fmt.resolution().width(),
        fmt.resolution().height(),
        fmt.format()
    );
    Ok((camera, name))
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
