//! Installing a bundle on a device root, and rolling back to the previous one, so that a power
//! cut at any instant leaves a verified `current.fovea` (the old one or the new one).
//!
//! Install: verify against the device's trusted keys → write `bundle/.incoming-*`, fsync →
//! hard-link the old `current` to a temp name and rename it over `previous` → rename the
//! incoming file over `current` → fsync the folder. Each rename is atomic on POSIX file
//! systems, and `current` exists throughout. Rollback verifies `previous`, then swaps the two
//! the same way. Leftover `.incoming-*` files from an interrupted install are ignored by `edge`
//! and removed by the next install.
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::layout::{DeviceLayout, INCOMING_PREFIX};
use crate::bundle::{Bundle, BundleError, VerifyingKey, read_bundle, read_bundle_file};

/// What can go wrong installing, rolling back or reading the trusted keys.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// A file system operation failed.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The path operated on.
        path: PathBuf,
        /// The operating system's error (in the message, not chained as `source()`).
        cause: std::io::Error,
    },
    /// The bundle (or a key file) was refused.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The device trusts no key, and none was given to trust.
    #[error(
        "{}: no trusted keys (*.pub); give the signer's public key with --trust on first install",
        keys.display()
    )]
    NoTrustedKeys {
        /// The keys folder.
        keys: PathBuf,
    },
    /// Rollback was asked for but there is no previous bundle.
    #[error("{}: no previous bundle to roll back to", path.display())]
    NoPrevious {
        /// Where the previous bundle would be.
        path: PathBuf,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DeviceError + '_ {
    move |cause| DeviceError::Io {
        path: path.to_owned(),
        cause,
    }
}

/// The result of an install or a rollback.
#[derive(Debug)]
pub struct Installed {
    /// The verified bundle now in `current.fovea`.
    pub bundle: Bundle,
    /// Whether a bundle was kept as `previous.fovea`.
    pub kept_previous: bool,
}

/// The public keys in the device's keys folder (`*.pub`), sorted by file name. A missing
/// folder is no keys; an unreadable or malformed key file is an error naming it.
pub fn trusted_keys(layout: &DeviceLayout) -> Result<Vec<VerifyingKey>, DeviceError> {
    keys_in(&layout.keys_dir())
}

/// The public keys (`*.pub`) in `dir`, sorted by file name; a missing folder is no keys.
pub fn keys_in(dir: &Path) -> Result<Vec<VerifyingKey>, DeviceError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().is_some_and(|e| e == "pub") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .iter()
        .map(|p| VerifyingKey::read_file(p).map_err(DeviceError::from))
        .collect()
}

/// Installs the bundle file `source` as the device's current bundle, keeping the old one as
/// previous. `trust` keys are added to the device's keys folder first (first install, or a
/// new signer); the bundle must verify against the device's keys. Returns the verified bundle.
pub fn install(
    layout: &DeviceLayout,
    source: &Path,
    trust: &[VerifyingKey],
) -> Result<Installed, DeviceError> {
    let bytes = fs::read(source).map_err(io(source))?;
    let mut keys = trusted_keys(layout)?;
    keys.extend(trust.iter().cloned());
    if keys.is_empty() {
        return Err(DeviceError::NoTrustedKeys {
            keys: layout.keys_dir(),
        });
    }
    // Verified before anything on the device changes.
    let bundle = read_bundle(&bytes, &keys).map_err(|e| e.in_file(source))?;
    for key in trust {
        write_key(layout, key)?;
    }
    let dir = layout.bundle_dir();
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    remove_stale_incoming(&dir)?;
    let incoming = dir.join(format!("{INCOMING_PREFIX}{}", unique_suffix()));
    write_synced(&incoming, &bytes)?;
    let current = layout.current_bundle();
    let kept_previous = current.exists();
    if kept_previous {
        replace_by_link(&current, &layout.previous_bundle(), &dir)?;
    }
    fs::rename(&incoming, &current).map_err(io(&current))?;
    sync_dir(&dir)?;
    Ok(Installed {
        bundle,
        kept_previous,
    })
}

/// Makes the previous bundle current again (after verifying it against the device's keys),
/// and the current one previous.
pub fn rollback(layout: &DeviceLayout) -> Result<Installed, DeviceError> {
    let previous = layout.previous_bundle();
    if !previous.exists() {
        return Err(DeviceError::NoPrevious { path: previous });
    }
    let keys = trusted_keys(layout)?;
    if keys.is_empty() {
        return Err(DeviceError::NoTrustedKeys {
            keys: layout.keys_dir(),
        });
    }
    let bundle = read_bundle_file(&previous, &keys)?;
    let dir = layout.bundle_dir();
    let current = layout.current_bundle();
    let kept_previous = current.exists();
    // current → temp link; previous → current (atomic); temp → previous.
    let swap = dir.join(format!("{INCOMING_PREFIX}swap-{}", unique_suffix()));
    if kept_previous {
        fs::hard_link(&current, &swap).map_err(io(&swap))?;
    }
    fs::rename(&previous, &current).map_err(io(&current))?;
    if kept_previous {
        fs::rename(&swap, &previous).map_err(io(&previous))?;
    }
    sync_dir(&dir)?;
    Ok(Installed {
        bundle,
        kept_previous,
    })
}

/// Writes `key` as `keys/<key id>.pub` unless an identical file is there.
fn write_key(layout: &DeviceLayout, key: &VerifyingKey) -> Result<(), DeviceError> {
    let dir = layout.keys_dir();
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    let path = dir.join(format!("{}.pub", key.key_id()));
    if VerifyingKey::read_file(&path).is_ok_and(|k| k == *key) {
        return Ok(());
    }
    let tmp = dir.join(format!("{INCOMING_PREFIX}{}", unique_suffix()));
    write_synced(&tmp, format!("{key}\n").as_bytes())?;
    fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(&dir)
}

/// `dst` becomes a second name of `src`'s file, atomically replacing what `dst` named.
fn replace_by_link(src: &Path, dst: &Path, dir: &Path) -> Result<(), DeviceError> {
    let tmp = dir.join(format!("{INCOMING_PREFIX}link-{}", unique_suffix()));
    fs::hard_link(src, &tmp).map_err(io(&tmp))?;
    fs::rename(&tmp, dst).map_err(io(dst))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), DeviceError> {
    let mut file = File::create(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

fn sync_dir(dir: &Path) -> Result<(), DeviceError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Removes `.incoming-*` files an interrupted install or rollback left behind.
fn remove_stale_incoming(dir: &Path) -> Result<(), DeviceError> {
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let stale = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(INCOMING_PREFIX));
        if stale {
            fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// A name suffix unique to this process and instant.
fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}
