//! Other processes holding a fanotify group in a permission (blocking) class.
//!
//! Read from `/proc/PID/fd/*` (the link of a group is `anon_inode:[fanotify]`) and the
//! matching `/proc/PID/fdinfo/FD`, whose first line is
//! `fanotify flags:F event-flags:E` with `F` the `fanotify_init` flags in hex: the class bits
//! `FAN_CLASS_CONTENT` (0x4) and `FAN_CLASS_PRE_CONTENT` (0x8) make it a permission group,
//! able to hold every open on the machine. Our own process is left out.

#![forbid(unsafe_code)]

use std::fs;
use std::path::Path;

/// A process holding a fanotify permission group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConflictingProcess {
    pub pid: i32,
    /// `/proc/PID/comm`.
    pub name: String,
    /// `/proc/PID/exe`, empty when unreadable.
    pub exe: String,
    /// `content` or `pre_content`.
    pub class: &'static str,
}

impl std::fmt::Display for ConflictingProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {}", self.name, self.pid)?;
        if !self.exe.is_empty() {
            write!(f, ", {}", self.exe)?;
        }
        write!(f, ", fanotify {} class)", self.class)
    }
}

/// The permission class named by the flags of an fdinfo `fanotify flags:` line, if any.
pub(crate) fn permission_class(fdinfo: &str) -> Option<&'static str> {
    let line = fdinfo.lines().find(|l| l.starts_with("fanotify flags:"))?;
    let flags = line.split_whitespace().find_map(|w| w.strip_prefix("flags:"))?;
    let flags = u32::from_str_radix(flags, 16).ok()?;
    if flags & libc::FAN_CLASS_PRE_CONTENT != 0 {
        Some("pre_content")
    } else if flags & libc::FAN_CLASS_CONTENT != 0 {
        Some("content")
    } else {
        None
    }
}

/// The permission class of the fanotify groups `pid` holds, if it holds one.
fn process_permission_class(pid: &str) -> Option<&'static str> {
    let fd_dir = Path::new("/proc").join(pid).join("fd");
    for e in fs::read_dir(&fd_dir).ok()?.flatten() {
        let Ok(target) = fs::read_link(e.path()) else { continue };
        if target.as_os_str() != "anon_inode:[fanotify]" {
            continue;
        }
        let info = Path::new("/proc").join(pid).join("fdinfo").join(e.file_name());
        if let Some(class) = fs::read_to_string(info).ok().as_deref().and_then(permission_class) {
            return Some(class);
        }
    }
    None
}

/// Every other process holding a fanotify permission group (any thread of ours is left out:
/// `/proc` lists thread groups, and threads share the descriptor table).
pub fn conflicting_processes() -> Vec<ConflictingProcess> {
    let own = std::process::id().to_string();
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str() else { continue };
        if pid == own || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Some(class) = process_permission_class(pid) else { continue };
        let proc = Path::new("/proc").join(pid);
        out.push(ConflictingProcess {
            pid: pid.parse().unwrap_or(0),
            name: fs::read_to_string(proc.join("comm")).map(|s| s.trim_end().to_string()).unwrap_or_default(),
            exe: fs::read_link(proc.join("exe")).map(|p| p.display().to_string()).unwrap_or_default(),
            class,
        });
    }
    out.sort_by_key(|p| p.pid);
    out
}

/// [`conflicting_processes`] as the strings `mdatp health` lists in `conflicting_applications`,
/// e.g. `fapolicyd (pid 812, /usr/sbin/fapolicyd, fanotify content class)`.
pub fn conflicting_applications() -> Vec<String> {
    conflicting_processes().iter().map(|p| p.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_from_fdinfo() {
        let notif = "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\nfanotify flags:10 event-flags:0\n";
        assert_eq!(permission_class(notif), None);
        let content = "pos:\t0\nflags:\t02004002\nfanotify flags:7 event-flags:8000\nfanotify sdev:2d mflags:0 mask:10000 ignored_mask:0\n";
        assert_eq!(permission_class(content), Some("content"));
        assert_eq!(permission_class("fanotify flags:8 event-flags:0\n"), Some("pre_content"));
        assert_eq!(permission_class("fanotify flags:zz event-flags:0\n"), None);
        assert_eq!(permission_class("inotify wd:1 ino:2\n"), None);
    }
}
