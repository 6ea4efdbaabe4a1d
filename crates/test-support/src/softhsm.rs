//! SoftHSM2 for the tests of the vault's PKCS#11 seal: whether it is installed (required when
//! `CI` is set), its module, and private token directories with an initialized token.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The label of the token [`init_token`] makes.
pub const TOKEN_LABEL: &str = "rampart";
/// The user PIN of that token.
pub const USER_PIN: &str = "4321";

/// The PKCS#11 module: `RAMPART_TEST_PKCS11_MODULE`, else Debian's SoftHSM2 module.
pub fn module() -> PathBuf {
    std::env::var_os("RAMPART_TEST_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
}

/// Whether SoftHSM2 is installed; panics when it is not and `CI` is set.
pub fn present() -> bool {
    let util = Command::new("softhsm2-util").arg("--version").output();
    let present = util.is_ok_and(|o| o.status.success()) && module().exists();
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "SoftHSM2 is required in CI (apt-get install softhsm2; scripts/test.sh does it)"
        );
        eprintln!("skipping: SoftHSM2 is not installed (apt-get install softhsm2)");
    }
    present
}

/// A private token directory under `dir` with an initialized token ([`TOKEN_LABEL`],
/// [`USER_PIN`]); returns its `softhsm2.conf`, for `SOFTHSM2_CONF`.
pub fn init_token(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).expect("create the token directory");
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .expect("write softhsm2.conf");
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            TOKEN_LABEL,
            "--so-pin",
            "1234",
            "--pin",
            USER_PIN,
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("run softhsm2-util");
    assert!(
        out.status.success(),
        "softhsm2-util --init-token failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    conf
}
