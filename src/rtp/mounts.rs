//! Which filesystems real-time protection marks, and keeping the marks in step with the
//! mount table.
//!
//! One `FAN_MARK_FILESYSTEM` mark per filesystem (superblock, told apart by `st_dev` of a mount
//! point): it sees every access whatever the mount (bind mounts, container overlays, other
//! namespaces). A filesystem is marked when
//! - its type is a real-time type of the seed (`scan::walk` [`FsClass::Full`]: btrfs, ext2/3/4,
//!   xfs, tmpfs, overlay, vfat, ...), and
//! - it is not in `unmonitoredFilesystems` (an entry `fuse` also covers `fuse.*` subtypes), and
//! - with `nonExecMountPolicy: mute`, at least one of its mounts is not `noexec`.
//!
//! With `mount_points: Some(roots)`, only the filesystems of the roots themselves (whatever their
//! type) and the mounts below the roots (filtered as above) are marked.
//!
//! Mount changes are noticed by `poll(POLLPRI)` on `/proc/self/mountinfo` (and a full resync every
//! few seconds): new filesystems are marked, and the marks of filesystems no longer wanted are
//! removed. The kernel drops the mark of a filesystem that is unmounted everywhere.
//!
//! Known gaps: a filesystem visible only through an overmounted mount point (or only in another
//! mount namespace) cannot be reached by path and stays unmarked until it shows somewhere.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

pub(crate) use crate::scan::walk::MountTable;
use crate::scan::walk::{fs_class, FsClass};
use crate::sys::fanotify::{is_noexec_mount, Group};

/// Which filesystems to mark.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct MountPolicy {
    pub roots: Option<Vec<PathBuf>>,
    pub unmonitored: Vec<String>,
    pub noexec_mute: bool,
}

/// A mount that is a candidate for a mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// Asked for by name in `roots`: marked whatever its type.
    pub explicit: bool,
}

fn unmonitored(fs_type: &str, list: &[String]) -> bool {
    list.iter().any(|u| fs_type == u || fs_type.strip_prefix(u.as_str()).is_some_and(|rest| rest.starts_with('.')))
}

/// The mounts whose filesystems should be marked, from the mount table (pure: no syscalls).
pub(crate) fn candidates(table: &MountTable, policy: &MountPolicy) -> Vec<Candidate> {
    let wanted = |t: &str| fs_class(t) == Some(FsClass::Full) && !unmonitored(t, &policy.unmonitored);
    let mut out = Vec::new();
    match &policy.roots {
        None => {
            for e in table.entries() {
                if wanted(&e.fs_type) {
                    out.push(Candidate { mount_point: e.mount_point.clone(), fs_type: e.fs_type.clone(), explicit: false });
                }
            }
        }
        Some(roots) => {
            for r in roots {
                let fs_type = table.mount_of(r).map(|e| e.fs_type.clone()).unwrap_or_default();
                out.push(Candidate { mount_point: r.clone(), fs_type, explicit: true });
            }
            for e in table.entries() {
                if roots.iter().any(|r| e.mount_point.starts_with(r) && e.mount_point != *r) && wanted(&e.fs_type) {
                    out.push(Candidate { mount_point: e.mount_point.clone(), fs_type: e.fs_type.clone(), explicit: false });
                }
            }
        }
    }
    out
}

/// The marks a group holds: device -> the mount point it was marked through.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    by_dev: HashMap<u64, PathBuf>,
}

impl Marks {
    pub(crate) fn mount_points(&self) -> Vec<String> {
        let mut v: Vec<String> = self.by_dev.values().map(|p| p.display().to_string()).collect();
        v.sort();
        v
    }

    pub(crate) fn clear(&mut self) {
        self.by_dev.clear();
    }

    /// Brings the group's filesystem marks in line with `policy` and the current mount table.
    /// Returns the number of failed marks (each also logged).
    pub(crate) fn sync(&mut self, group: &Group, table: &MountTable, policy: &MountPolicy) -> usize {
        // Device -> (a mount point that reaches it, every mount of it is noexec).
        let mut want: HashMap<u64, (PathBuf, bool)> = HashMap::new();
        for c in candidates(table, policy) {
            // stat() follows the path to the topmost mount there; an overmounted mount point
            // therefore names the filesystem on top, which is checked on its own.
            let Ok(md) = std::fs::metadata(&c.mount_point) else { continue };
            let noexec = policy.noexec_mute && !c.explicit && is_noexec_mount(&c.mount_point);
            let e = want.entry(md.dev()).or_insert_with(|| (c.mount_point.clone(), true));
            e.1 &= noexec;
        }
        want.retain(|_, (_, all_noexec)| !*all_noexec);
        let mut failures = 0;
        // Marks no longer wanted.
        let stale: Vec<u64> = self.by_dev.keys().filter(|d| !want.contains_key(d)).copied().collect();
        for dev in stale {
            let mp = self.by_dev.remove(&dev).unwrap_or_default();
            // Still mounted (reachable through its old mount point)? Then remove the mark; if it
            // is gone, the kernel dropped the mark with the filesystem.
            if std::fs::metadata(&mp).is_ok_and(|m| m.dev() == dev) {
                if let Err(e) = group.mark_filesystem(&mp, false) {
                    tracing::debug!("real-time protection: unmarking {}: {e}", mp.display());
                }
            }
        }
        for (dev, (mp, _)) in want {
            if self.by_dev.contains_key(&dev) {
                continue;
            }
            match group.mark_filesystem(&mp, true) {
                Ok(()) => {
                    tracing::debug!("real-time protection: watching the filesystem of {}", mp.display());
                    self.by_dev.insert(dev, mp);
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!("real-time protection: cannot watch the filesystem of {}: {e}", mp.display());
                }
            }
        }
        failures
    }
}

/// `/proc/self/mountinfo`, kept open to be polled for changes.
pub(crate) struct MountWatch {
    file: std::fs::File,
}

impl MountWatch {
    pub(crate) fn open() -> std::io::Result<MountWatch> {
        Ok(MountWatch { file: std::fs::File::open("/proc/self/mountinfo")? })
    }

    /// The current table (re-reading also re-arms the change notification).
    pub(crate) fn read(&mut self) -> MountTable {
        let mut text = Vec::new();
        if self.file.rewind().and_then(|_| self.file.read_to_end(&mut text)).is_err() {
            text = std::fs::read("/proc/self/mountinfo").unwrap_or_default();
        }
        MountTable::parse(&text)
    }

    /// Waits for a change of the mount table, at most `timeout`; true on a change.
    pub(crate) fn wait(&self, timeout: std::time::Duration) -> bool {
        crate::sys::fanotify::wait_mount_change(&self.file, timeout)
    }
}

/// The mount table of this process (for the first sync).
pub(crate) fn current_table() -> MountTable {
    MountTable::from_proc().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid - proc proc rw
24 22 0:22 / /tmp rw - tmpfs tmpfs rw
25 22 0:23 / /mnt/nfs rw - nfs srv:/x rw
26 22 0:24 / /mnt/sshfs rw - fuse.sshfs u@h:/ rw
27 22 0:25 / /media/usb rw - vfat /dev/sdb1 rw
28 24 0:26 / /tmp/sub rw - tmpfs tmpfs rw
29 24 0:27 / /tmp/sub/deeper rw - proc proc rw
";

    fn points(c: &[Candidate]) -> Vec<&str> {
        c.iter().map(|c| c.mount_point.to_str().unwrap()).collect()
    }

    #[test]
    fn candidates_follow_types_and_unmonitored_list() {
        let t = MountTable::parse(INFO.as_bytes());
        let default_unmon: Vec<String> = ["nfs", "nfs4", "cifs", "smb", "fuse"].iter().map(|s| s.to_string()).collect();
        let p = MountPolicy { roots: None, unmonitored: default_unmon.clone(), noexec_mute: false };
        assert_eq!(points(&candidates(&t, &p)), ["/", "/tmp", "/media/usb", "/tmp/sub"]);
        // An empty list monitors every real-time type (nfs v3 is one; fuse.sshfs is not).
        let p = MountPolicy { roots: None, unmonitored: vec![], noexec_mute: false };
        assert_eq!(points(&candidates(&t, &p)), ["/", "/tmp", "/mnt/nfs", "/media/usb", "/tmp/sub"]);
        let p = MountPolicy { roots: None, unmonitored: vec!["tmpfs".into()], noexec_mute: false };
        assert_eq!(points(&candidates(&t, &p)), ["/", "/mnt/nfs", "/media/usb"]);
        assert!(unmonitored("fuse.sshfs", &default_unmon));
        assert!(!unmonitored("fuseblk", &default_unmon));
    }

    #[test]
    fn candidates_below_roots() {
        let t = MountTable::parse(INFO.as_bytes());
        let p = MountPolicy { roots: Some(vec![PathBuf::from("/tmp")]), unmonitored: vec![], noexec_mute: false };
        let c = candidates(&t, &p);
        assert_eq!(points(&c), ["/tmp", "/tmp/sub"]);
        assert!(c[0].explicit && !c[1].explicit);
        assert_eq!(c[0].fs_type, "tmpfs");
    }
}
