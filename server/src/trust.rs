//! What the server vouches for to the gates ([`jo_shared::trust`]): the
//! signed keyring chain, kept in the keys directory, and the signed list of
//! enrolled devices.
//!
//! The keyring files are read again at each use, so a key withdrawn in
//! `withdrawn.txt` reaches the gates at their next sync; the change is signed
//! into the chain by the active key the first time it is seen. The server
//! refuses to start (and to serve a keyring) when its signing key is missing
//! from the keyring or withdrawn: it would sell tickets every gate refuses.

use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jo_shared::api::{DeviceKey, SignedDeviceList, SignedKeyring};
use jo_shared::keys;
use jo_shared::signing::{Keyring, TicketSigner};

use crate::state::AppState;

/// The keyring of `keys_dir` and its signed chain, brought up to date.
/// Blocking (file reads, at most one write): call off the async threads.
pub fn current(
    keys_dir: &Path,
    signer: &TicketSigner,
) -> anyhow::Result<(Keyring, Vec<SignedKeyring>)> {
    // One writer at a time in this process: two syncs arriving just after a
    // change of withdrawn.txt would otherwise race on the chain's temporary
    // file. (Servers sharing a keys directory write identical statements.)
    static CHAIN_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = CHAIN_WRITER
        .lock()
        .map_err(|_| anyhow::anyhow!("keyring chain lock poisoned"))?;
    let ring = keys::load_keyring(keys_dir)
        .with_context(|| format!("reading the keyring in {}", keys_dir.display()))?;
    keys::check_signer(&ring, signer)?;
    let chain = keys::update_chain(keys_dir, &[Some(signer)])
        .with_context(|| format!("signing the keyring chain in {}", keys_dir.display()))?;
    Ok((ring, chain))
}

/// [`current`] for the running server, on a blocking thread.
pub async fn current_for(state: &AppState) -> anyhow::Result<(Keyring, Vec<SignedKeyring>)> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || current(&state.config.keys_dir, &state.signer)).await?
}

/// The enrolled devices, signed at `now` with the server's ticket key.
pub async fn device_list(state: &AppState, now: i64) -> anyhow::Result<SignedDeviceList> {
    let devices: Vec<DeviceKey> = state
        .store
        .device_keys()
        .await?
        .into_iter()
        .map(|(device_id, key, revoked)| DeviceKey {
            device_id,
            public_key: URL_SAFE_NO_PAD.encode(key),
            revoked,
        })
        .collect();
    Ok(SignedDeviceList::sign(&state.signer, now, devices))
}
