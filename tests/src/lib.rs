//! Helpers for the end-to-end tests in `tests/tests/`, which check what spans
//! the server and the scanner (the shared fixtures today; server-to-scanner
//! sync once the sync API exists).

use std::path::PathBuf;

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("fixtures")
}
