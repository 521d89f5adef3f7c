//! The device folder: where `host flash` installs and where `edge` reads, defined once.
//!
//! A device root is the board's data partition (or an SD card mounted on the workstation):
//!
//! ```text
//! ROOT/
//!   bundle/current.fovea     the bundle `edge` screens with
//!   bundle/previous.fovea    the one before it, for `edge rollback`
//!   bundle/.incoming-*       a flash in progress (temp file; never read by `edge`)
//!   keys/*.pub               trusted signer keys (shared::bundle::VerifyingKey files)
//!   log/audit.jsonl          the hash-chained audit log (append-only)
//!   board.toml               GPIO line map (absent on a desktop: run with --no-gpio)
//!   device-id                one line naming this device in audit records
//!   inbox/                   where the camera drops captures for `edge run --watch`
//! ```
//!
//! Only paths live here; what each file holds is owned by its module (bundle format in
//! [`crate::bundle`], the audit record and board file in `edge`).
use std::path::{Path, PathBuf};

/// File name prefix of a bundle being flashed; `edge` never loads such a file.
pub const INCOMING_PREFIX: &str = ".incoming-";

/// The paths of one device root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLayout {
    root: PathBuf,
}

impl DeviceLayout {
    /// The layout rooted at `root` (nothing is created or checked).
    pub fn new(root: impl Into<PathBuf>) -> DeviceLayout {
        DeviceLayout { root: root.into() }
    }

    /// The device root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Folder holding the current and previous bundles.
    pub fn bundle_dir(&self) -> PathBuf {
        self.root.join("bundle")
    }

    /// The bundle in service.
    pub fn current_bundle(&self) -> PathBuf {
        self.bundle_dir().join("current.fovea")
    }

    /// The bundle that was in service before the last flash.
    pub fn previous_bundle(&self) -> PathBuf {
        self.bundle_dir().join("previous.fovea")
    }

    /// Folder of trusted signer public keys (`*.pub`).
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// The audit log.
    pub fn audit_log(&self) -> PathBuf {
        self.root.join("log").join("audit.jsonl")
    }

    /// The GPIO board file.
    pub fn board_file(&self) -> PathBuf {
        self.root.join("board.toml")
    }

    /// The file naming this device.
    pub fn device_id_file(&self) -> PathBuf {
        self.root.join("device-id")
    }

    /// The folder `edge run --watch` watches by default.
    pub fn inbox(&self) -> PathBuf {
        self.root.join("inbox")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_under_the_root() {
        let layout = DeviceLayout::new("/media/sd");
        assert_eq!(
            layout.current_bundle(),
            Path::new("/media/sd/bundle/current.fovea")
        );
        assert_eq!(
            layout.previous_bundle(),
            Path::new("/media/sd/bundle/previous.fovea")
        );
        assert_eq!(layout.keys_dir(), Path::new("/media/sd/keys"));
        assert_eq!(layout.audit_log(), Path::new("/media/sd/log/audit.jsonl"));
        assert_eq!(layout.board_file(), Path::new("/media/sd/board.toml"));
        assert_eq!(layout.device_id_file(), Path::new("/media/sd/device-id"));
        assert_eq!(layout.inbox(), Path::new("/media/sd/inbox"));
    }
}
