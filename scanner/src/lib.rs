//! The JO E-Tickets gate scanner.
//!
//! Frames come from a [`frames::FrameSource`] (a webcam, or a folder of images),
//! are decoded by [`decode::FrameDecoder`] (rqrr, helped), and decided by
//! [`gate::Gate`] with the shared crate's `verify`, the session's entry rule
//! and the scan log in [`store::Store`], written durably before a verdict is
//! shown. [`headless`] runs the same pipeline for the command line.

pub mod decode;
pub mod frames;
pub mod gate;
pub mod headless;
pub mod peers;
pub mod store;
pub mod sync;
pub mod synth;
pub mod ui;
