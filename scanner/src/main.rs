//! `jo-scanner`: the JO E-Tickets gate scanner.
//!
//! This build carries the command-line interface; the GUI, the camera pipeline
//! and sync are built on `jo-shared` and land with the scanner itself.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// JO E-Tickets gate scanner: verifies tickets offline and uploads its scan log when online.
#[derive(Parser)]
#[command(name = "jo-scanner", version, about)]
struct Cli {
    /// Directory of the scanner's local state (keyring, revocations, scan log).
    #[arg(
        long,
        global = true,
        env = "JO_SCANNER_STATE",
        default_value = "jo-scanner-state"
    )]
    state: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Enrol this device with a server, using a one-time code from an admin.
    Enroll {
        /// Server base URL, e.g. https://billets.example.org
        #[arg(long)]
        server: String,
        /// The one-time enrolment code.
        #[arg(long)]
        code: String,
    },
    /// Synchronise now: keyring, sessions, revocations, entries down; scan log up.
    Sync,
    /// Decode and verify images; one JSON object per line.
    Verify {
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Use a folder of frames as the camera; per-frame lines, then a summary.
    Replay {
        /// Folder of image frames, read in name order.
        #[arg(long)]
        frames: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let what = match cli.command {
        None => "the gate GUI",
        Some(Command::Enroll { .. }) => "enroll",
        Some(Command::Sync) => "sync",
        Some(Command::Verify { .. }) => "verify",
        Some(Command::Replay { .. }) => "replay",
    };
    anyhow::bail!(
        "{what} is not available in this build yet (state directory: {})",
        cli.state.display()
    )
}
