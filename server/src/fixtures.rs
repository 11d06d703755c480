//! Fixture loading at start-up: the hook where the shop's programme
//! (sessions, offers) is loaded by a later issue. It must stay idempotent:
//! it runs at every start and inserts only what is missing.

use crate::db::Store;

/// Loads the fixtures that are missing. Accounts ship no fixtures (admins are
/// created with `jo-server create-admin`), so there is nothing to load yet.
pub async fn load(_store: &Store) -> anyhow::Result<()> {
    tracing::debug!("fixtures: nothing to load for accounts");
    Ok(())
}
