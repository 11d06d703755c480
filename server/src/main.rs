//! `jo-server`: the JO E-Tickets issuance server.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// JO E-Tickets issuance server: web shop, admin console and scanner sync API.
#[derive(Parser)]
#[command(name = "jo-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the ticket-signing key (PKCS#8 PEM, mode 0600) and the public keyring (SPKI PEM).
    Keygen {
        /// Directory of the key files.
        #[arg(long, env = "JO_KEYS_DIR")]
        keys: PathBuf,
        /// Rotate: replace an existing signing key (its public key stays in the keyring).
        #[arg(long)]
        force: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Keygen { keys, force } => {
            let g = jo_shared::keys::generate(&keys, force)
                .with_context(|| format!("keygen in {}", keys.display()))?;
            println!("signing key {} written to {}", g.key_id, g.signing_key.display());
            println!("public keyring written to {}", g.keyring.display());
            if let Some(old) = g.rotated_from {
                println!("rotated from key {old}: it stays in the keyring until withdrawn");
            }
        }
    }
    Ok(())
}
