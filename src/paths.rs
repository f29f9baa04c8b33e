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

/// Turns a path into a string that round-trips through [`string_to_path`]: UTF-8 names as
/// they are (with `\` written `\\`), other bytes as `\xNN`. Paths are stored and sent this way.
pub fn path_to_string(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = p.as_os_str().as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The inverse of [`path_to_string`].
pub fn string_to_path(s: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() && b[i + 1] == b'\\' {
            out.push(b'\\');
            i += 2;
        } else if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            match std::str::from_utf8(&b[i + 2..i + 4]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => {
                    out.push(v);
                    i += 4;
                }
                None => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod escape_tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn paths_round_trip() {
        for raw in [&b"/tmp/plain"[..], b"/tmp/new\nline", b"/tmp/back\\slash\\x41", b"/tmp/\xff\xfe-bad", b"/tmp/\xc3\xa9t\xc3\xa9"] {
            let p = Path::new(std::ffi::OsStr::from_bytes(raw));
            let s = path_to_string(p);
            assert_eq!(string_to_path(&s), p, "{s}");
        }
        assert_eq!(path_to_string(Path::new(std::ffi::OsStr::from_bytes(b"/a\xff"))), "/a\\xff");
    }
}
