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
use jo_scanner::ui::{self, AppOptions, Settings, worker::SourceChoice};

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
    /// GUI: open this camera (index in the system's list) instead of the saved choice.
    #[arg(long, value_name = "N")]
    camera: Option<u32>,
    /// GUI demo: replay a folder of frames as the camera.
    #[arg(long, env = "JO_SCANNER_FRAMES", hide = true, value_name = "DIR")]
    demo_frames: Option<PathBuf>,
    /// GUI: save a PNG of the window once it has settled, then quit (tests).
    #[arg(long, hide = true, value_name = "PNG")]
    screenshot: Option<PathBuf>,
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
        None => {
            let gate = open_gate(&cli)?;
            let source = match (&cli.demo_frames, cli.camera) {
                (Some(dir), _) => Some(SourceChoice::Folder(dir.clone())),
                (None, Some(index)) => Some(SourceChoice::Camera {
                    index,
                    resolution: Settings::load(&Settings::path_in(&cli.state)).resolution,
                }),
                (None, None) => None,
            };
            ui::run(
                gate,
                AppOptions {
                    settings_path: Some(Settings::path_in(&cli.state)),
                    source,
                    fixed_now: cli.now,
                    screenshot: cli.screenshot.clone(),
                },
            )?;
        }
        Some(Command::Enroll { .. }) | Some(Command::Sync) => {
            anyhow::bail!(
                "enroll and sync are not available in this build yet; \
                 the GUI, verify and replay work on the state in {}",
                cli.state.display()
            )
        }
    }
    Ok(())
}
