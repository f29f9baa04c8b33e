//! Every absolute path the agent uses, in one place.
//!
//! The product's paths are the reference product's (see `docs/ARCHITECTURE.md`). When the
//! environment variable `MDATP_ROOT=DIR` is set, every one of them is taken below `DIR`, so a
//! test, a benchmark or a curious admin can run a real daemon without touching the host's
//! `/etc` and `/var`. Nothing else in the code base spells an absolute product path.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// The product's paths, resolved once against an optional root prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    /// Paths for the running process: below `$MDATP_ROOT` when it is set and not empty.
    pub fn from_env() -> Paths {
        match std::env::var_os("MDATP_ROOT") {
            Some(r) if !r.is_empty() => Paths::with_root(PathBuf::from(r)),
            _ => Paths::with_root(PathBuf::from("/")),
        }
    }

    /// Paths below `root` (`/` for the real system).
    pub fn with_root(root: impl Into<PathBuf>) -> Paths {
        Paths { root: root.into() }
    }

    /// The root prefix (`/` on a real system).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when running below a prefix rather than on the real system.
    pub fn is_rooted(&self) -> bool {
        self.root != Path::new("/")
    }

    /// Joins an absolute product path below the root.
    pub fn abs(&self, p: &str) -> PathBuf {
        debug_assert!(p.starts_with('/'));
        self.root.join(p.trim_start_matches('/'))
    }

    pub fn install_dir(&self) -> PathBuf {
        self.abs("/opt/microsoft/mdatp")
    }
    /// Definitions shipped in the package.
    pub fn packaged_definitions(&self) -> PathBuf {
        self.abs("/opt/microsoft/mdatp/definitions")
    }
    pub fn config_dir(&self) -> PathBuf {
        self.abs("/etc/opt/microsoft/mdatp")
    }
    /// The admin's policy: `managed/mdatp_managed.json`.
    pub fn managed_config(&self) -> PathBuf {
        self.abs("/etc/opt/microsoft/mdatp/managed/mdatp_managed.json")
    }
    /// Settings made with the command line.
    pub fn local_config(&self) -> PathBuf {
        self.abs("/etc/opt/microsoft/mdatp/wdavcfg")
    }
    pub fn onboarding(&self) -> PathBuf {
        self.abs("/etc/opt/microsoft/mdatp/mdatp_onboard.json")
    }
    pub fn state_dir(&self) -> PathBuf {
        self.abs("/var/opt/microsoft/mdatp")
    }
    /// Updated and admin-supplied definitions.
    pub fn updated_definitions(&self) -> PathBuf {
        self.abs("/var/opt/microsoft/mdatp/definitions")
    }
    /// The previous definitions set, kept for `mdatp definitions restore`.
    pub fn definitions_backup(&self) -> PathBuf {
        self.abs("/var/opt/microsoft/mdatp/definitions.previous")
    }
    pub fn quarantine_dir(&self) -> PathBuf {
        self.abs("/var/opt/microsoft/mdatp/quarantine")
    }
    /// The embedded database: threat history, scan history, quarantine index.
    pub fn database(&self) -> PathBuf {
        self.abs("/var/opt/microsoft/mdatp/mdatp.db")
    }
    pub fn diagnostic_dir(&self) -> PathBuf {
        self.abs("/var/opt/microsoft/mdatp/wdavdiag")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.abs("/var/log/microsoft/mdatp")
    }
    pub fn run_dir(&self) -> PathBuf {
        self.abs("/run/mdatp")
    }
    /// The daemon's command socket.
    pub fn socket(&self) -> PathBuf {
        self.abs("/run/mdatp/wdavdaemon.sock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooted_paths_stay_below_root() {
        let p = Paths::with_root("/tmp/x");
        assert_eq!(p.managed_config(), Path::new("/tmp/x/etc/opt/microsoft/mdatp/managed/mdatp_managed.json"));
        assert_eq!(p.socket(), Path::new("/tmp/x/run/mdatp/wdavdaemon.sock"));
        assert!(p.is_rooted());
        let real = Paths::with_root("/");
        assert_eq!(real.quarantine_dir(), Path::new("/var/opt/microsoft/mdatp/quarantine"));
        assert!(!real.is_rooted());
    }
}
