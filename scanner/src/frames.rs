//! Where frames come from: a camera, or a folder of images (replay, tests, demos).

use std::path::{Path, PathBuf};

use image::GrayImage;

/// A frame and where it came from.
pub struct Frame {
    /// The picture, in grayscale (QR decoding needs no colour).
    pub image: GrayImage,
    /// A label: the file name for a folder, a counter for a camera.
    pub label: String,
}

/// Why a frame could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The source cannot be opened (no camera, no folder).
    #[error("frame source unavailable: {0}")]
    Unavailable(String),
    /// One frame could not be read; the next may be fine.
    #[error("bad frame {label}: {reason}")]
    BadFrame {
        /// The frame's label.
        label: String,
        /// Why.
        reason: String,
    },
}

/// A camera-like source of frames.
pub trait FrameSource: Send {
    /// The next frame; `None` when the source has ended (a folder read to the end).
    fn next_frame(&mut self) -> Option<Result<Frame, FrameError>>;
}

/// Frames from the images of a folder, in file-name order.
pub struct FolderSource {
    files: std::vec::IntoIter<PathBuf>,
}

/// Extensions read as frames.
const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "bmp", "pgm", "ppm", "webp", "gif", "tif", "tiff",
];

/// Largest frame file read (bytes): a hostile file cannot exhaust memory.
pub const MAX_FRAME_FILE_BYTES: u64 = 64 * 1024 * 1024;

impl FolderSource {
    /// Lists the images of `dir`.
    pub fn open(dir: &Path) -> Result<Self, FrameError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| FrameError::Unavailable(format!("{}: {e}", dir.display())))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        files.sort();
        Ok(Self {
            files: files.into_iter(),
        })
    }
}

impl FrameSource for FolderSource {
    fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        let path = self.files.next()?;
        Some(load_image(&path))
    }
}

/// Loads an image file as a grayscale frame, refusing oversized files and
/// images larger than the decoder accepts.
pub fn load_image(path: &Path) -> Result<Frame, FrameError> {
    let label = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let bad = |reason: String| FrameError::BadFrame {
        label: label.clone(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if meta.len() > MAX_FRAME_FILE_BYTES {
        return Err(bad("file too large".into()));
    }
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| bad(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| bad(e.to_string()))?;
    // Bound the decoder's allocations: a small file can claim huge dimensions.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(jo_shared::qr::MAX_DECODE_SIDE);
    limits.max_image_height = Some(jo_shared::qr::MAX_DECODE_SIDE);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| bad(e.to_string()))?;
    Ok(Frame {
        image: img.to_luma8(),
        label,
    })
}
