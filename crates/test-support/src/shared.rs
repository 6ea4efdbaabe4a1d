//! Where the shared test data (`../shared`: CRS, specs, tools) lives.

use std::path::PathBuf;

/// The shared data folder: `$RAMPART_SHARED_DIR`, else `../shared` beside the workspace.
///
/// # Panics
/// When the folder is missing and `CI` is set: tests must fail, not skip, without their data.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("RAMPART_SHARED_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    );
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "shared test data not found at {} (set RAMPART_SHARED_DIR)",
        dir.display()
    );
    None
}
