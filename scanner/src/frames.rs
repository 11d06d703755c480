//! Where frames come from: a camera, or a folder of images (replay, tests, demos).

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

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

    /// Frames the source dropped because a newer one came before the
    /// decoder was free (always 0 for a folder, which waits for the reader).
    fn dropped(&self) -> u64 {
        0
    }
}

/// A single-slot mailbox between a producer that runs on its own clock (a
/// camera thread) and a consumer that takes the newest item when it is free
/// (the decoder). Putting replaces what was not taken yet, and counts it as
/// dropped: a gate decodes the picture in front of it now, never a queue of
/// pictures of a moment ago.
#[derive(Debug)]
pub struct Mailbox<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
}

#[derive(Debug)]
struct Slot<T> {
    item: Option<T>,
    dropped: u64,
    closed: bool,
}

/// What [`Mailbox::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Take<T> {
    /// The newest item.
    Item(T),
    /// Nothing came within the wait.
    Timeout,
    /// The producer closed the mailbox and it is empty.
    Closed,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Mailbox<T> {
    /// An empty, open mailbox.
    pub fn new() -> Self {
        Self {
            slot: Mutex::new(Slot {
                item: None,
                dropped: 0,
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }

    // A poisoned lock only means a thread panicked while holding it; the
    // slot is still a valid Option, so carry on with it.
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `item` in the slot, dropping the one not yet taken. Returns
    /// `false` (and keeps nothing) once the mailbox is closed.
    pub fn put(&self, item: T) -> bool {
        let mut slot = self.lock();
        if slot.closed {
            return false;
        }
        if slot.item.replace(item).is_some() {
            slot.dropped += 1;
        }
        drop(slot);
        self.ready.notify_one();
        true
    }

    /// Takes the newest item, waiting at most `wait` for one.
    pub fn take(&self, wait: Duration) -> Take<T> {
        let slot = self.lock();
        let (mut slot, _) = self
            .ready
            .wait_timeout_while(slot, wait, |s| s.item.is_none() && !s.closed)
            .unwrap_or_else(PoisonError::into_inner);
        match slot.item.take() {
            Some(item) => Take::Item(item),
            None if slot.closed => Take::Closed,
            None => Take::Timeout,
        }
    }

    /// Items replaced before they were taken, since the start.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Closes the mailbox: what is in the slot can still be taken, nothing
    /// new is accepted, and a waiting [`Mailbox::take`] returns at once.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Whether [`Mailbox::close`] was called (the consumer uses it to tell
    /// the producer to stop).
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_newest_frame_is_taken_and_stale_ones_are_dropped_and_counted() {
        let mailbox = Mailbox::new();
        for n in 1..=3 {
            assert!(mailbox.put(n));
        }
        assert_eq!(mailbox.take(Duration::ZERO), Take::Item(3));
        assert_eq!(mailbox.dropped(), 2);
        // Nothing is queued behind the newest.
        assert_eq!(mailbox.take(Duration::ZERO), Take::Timeout);
        assert!(mailbox.put(4));
        assert_eq!(mailbox.take(Duration::ZERO), Take::Item(4));
        assert_eq!(mailbox.dropped(), 2);
    }

    #[test]
    fn a_waiting_consumer_wakes_on_a_frame_and_on_close() {
        let mailbox = Arc::new(Mailbox::new());
        let producer = {
            let m = Arc::clone(&mailbox);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                m.put(7);
            })
        };
        assert_eq!(mailbox.take(Duration::from_secs(5)), Take::Item(7));
        producer.join().expect("producer");
        mailbox.put(8);
        mailbox.close();
        assert!(!mailbox.put(9), "closed: nothing new is accepted");
        // What was put before the close is still delivered, then Closed.
        assert_eq!(mailbox.take(Duration::from_secs(5)), Take::Item(8));
        assert_eq!(mailbox.take(Duration::from_secs(5)), Take::Closed);
        assert!(mailbox.is_closed());
    }

    #[test]
    fn a_fast_camera_and_a_slow_decoder_never_queue() {
        // The camera puts 30 frames while the decoder takes one in three:
        // whatever it takes is the newest at that moment.
        let mailbox = Mailbox::new();
        let mut taken = Vec::new();
        for n in 0..30u32 {
            mailbox.put(n);
            if n % 3 == 2
                && let Take::Item(f) = mailbox.take(Duration::ZERO)
            {
                taken.push(f);
            }
        }
        assert_eq!(taken, (0..10).map(|k| 3 * k + 2).collect::<Vec<_>>());
        assert_eq!(mailbox.dropped(), 20);
    }
}
