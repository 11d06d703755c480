//! `jo-scanner`: the JO E-Tickets gate scanner.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use jo_scanner::decode::FrameDecoder;
use jo_scanner::frames::{FolderSource, load_image};
use jo_scanner::gate::Gate;
use jo_scanner::headless;
use jo_scanner::store::Store;

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
    /// Decide as if the device clock read this Unix time (replaying a
    /// recording from another day, tests).
    #[arg(long, global = true, hide = true)]
    now: Option<i64>,
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
    /// Decode and verify images through the gate pipeline (each is a logged
    /// scan); one JSON object per line.
    Verify {
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Use a folder of frames as the camera; one JSON line per frame, then a summary.
    Replay {
        /// Folder of image frames, read in name order.
        #[arg(long)]
        frames: PathBuf,
    },
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn open_gate(cli: &Cli) -> anyhow::Result<Gate> {
    let store = Store::open(&cli.state)
        .with_context(|| format!("opening scanner state in {}", cli.state.display()))?;
    Ok(Gate::load(store)?)
}

fn print_json(out: &mut impl Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let now = |fixed: Option<i64>| fixed.unwrap_or_else(unix_now);
    match &cli.command {
        Some(Command::Verify { images }) => {
            let mut gate = open_gate(&cli)?;
            let mut out = std::io::stdout().lock();
            for path in images {
                let label = path.display().to_string();
                // Each image is its own picture: no region carried over.
                let mut decoder = FrameDecoder::new();
                let mut line = headless::process(
                    &mut gate,
                    &mut decoder,
                    load_image(path),
                    &label,
                    now(cli.now),
                    true,
                )?;
                line.file = label;
                print_json(&mut out, &line)?;
            }
        }
        Some(Command::Replay { frames }) => {
            let mut gate = open_gate(&cli)?;
            let mut source = FolderSource::open(frames)?;
            let mut out = std::io::stdout().lock();
            let mut failed = None;
            let summary = headless::replay(
                &mut gate,
                &mut source,
                || now(cli.now),
                |line| {
                    if let Err(e) = print_json(&mut out, line) {
                        failed.get_or_insert(e);
                    }
                },
            )?;
            if let Some(e) = failed {
                return Err(e);
            }
            print_json(&mut out, &serde_json::json!({ "summary": summary }))?;
        }
        None | Some(Command::Enroll { .. }) | Some(Command::Sync) => {
            anyhow::bail!(
                "the gate GUI, enroll and sync are not available in this build yet; \
                 verify and replay work on the state in {}",
                cli.state.display()
            )
        }
    }
    Ok(())
}
