//! The data directory: created private (0700), with secret files written 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The data directory and the well-known places inside it.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Creates the directory (and parents) if needed and makes it private to this user.
    pub fn create(root: &Path) -> anyhow::Result<Self> {
        create_private_dir(root)?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A private sub-folder, created on first use.
    pub fn subdir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.root.join(name);
        create_private_dir(&path)?;
        Ok(path)
    }
}

fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private", path.display()))
}

/// Writes a file readable by this user only (0600), replacing it atomically.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads a secret file, refusing one that others can read.
pub fn read_secret_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mode = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    anyhow::ensure!(
        mode & 0o077 == 0,
        "{} is readable by other users (mode {:o}); run chmod 600 on it",
        path.display(),
        mode & 0o777
    );
    fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads the secret at `path`, or generates it with `generate` and writes it 0600.
pub fn load_or_create_secret(
    path: &Path,
    generate: impl FnOnce() -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<(Vec<u8>, bool)> {
    if path.exists() {
        return Ok((read_secret_file(path)?, false));
    }
    let secret = generate()?;
    write_secret_file(path, &secret)?;
    Ok((secret, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dir_and_secrets_are_private() {
        let temp = tempfile::tempdir().unwrap();
        let data = DataDir::create(&temp.path().join("a/b")).unwrap();
        let mode = fs::metadata(data.root()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let secret = data.root().join("token");
        let (first, created) = load_or_create_secret(&secret, || Ok(b"s3cret".to_vec())).unwrap();
        assert!(created);
        let (again, created) = load_or_create_secret(&secret, || Ok(b"other".to_vec())).unwrap();
        assert!(!created);
        assert_eq!(first, again);
        assert_eq!(
            fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
        let error = read_secret_file(&secret).unwrap_err().to_string();
        assert!(error.contains("readable by other users"), "{error}");
    }
}
