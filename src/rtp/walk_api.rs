//! TEMPORARY: a copy of the mount-table and filesystem-type parts of the parallel walker (branch
//! `walk`, not merged yet) so this branch builds; deleted in favour of `crate::scan::walk` as soon
//! as that lands. Do not edit.
#![forbid(unsafe_code)]
#![allow(dead_code)]
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Which scans walk a filesystem type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsClass {
    /// Real-time protection, quick, full and custom scans.
    Full,
    /// Custom scans only (network and cloud filesystems).
    Custom,
    /// Custom scans only, and only when a root given by the user lies on it (never entered by
    /// crossing a mount point): `sysfs`.
    CustomRootOnly,
}

/// The filesystem types the walker enters, from the seed (REFERENCE.md "Filesystems"); the single
/// place that lists them. A name ending in `*` is a prefix. Types are spelled as in the `fstype`
/// field of `/proc/self/mountinfo` (FUSE filesystems appear as `fuse.<subtype>`). Every other type (proc, sysfs when crossed, devtmpfs, devpts,
/// cgroup, cgroup2, securityfs, debugfs, tracefs, bpf, mqueue, hugetlbfs, pstore, configfs,
/// binfmt_misc, autofs, squashfs, nfs4, other `fuse.*`, ...) is never walked.
pub const FILESYSTEMS: &[(&str, FsClass)] = &[
    // Real-time, quick and full scan.
    ("btrfs", FsClass::Full),
    ("ecryptfs", FsClass::Full),
    ("ext2", FsClass::Full),
    ("ext3", FsClass::Full),
    ("ext4", FsClass::Full),
    ("fuse", FsClass::Full),
    ("fuseblk", FsClass::Full),
    ("jfs", FsClass::Full),
    ("nfs", FsClass::Full), // NFS v3 only: v4 mounts have type nfs4.
    ("overlay", FsClass::Full),
    ("ramfs", FsClass::Full),
    ("reiserfs", FsClass::Full),
    ("tmpfs", FsClass::Full),
    ("udf", FsClass::Full),
    ("vfat", FsClass::Full),
    ("xfs", FsClass::Full),
    // Custom scans additionally.
    ("efs", FsClass::Custom),
    ("s3fs", FsClass::Custom),
    ("fuse.s3fs", FsClass::Custom),
    ("blobfuse", FsClass::Custom),
    ("fuse.blobfuse*", FsClass::Custom), // blobfuse and blobfuse2
    ("lustre", FsClass::Custom),
    ("glusterfs", FsClass::Custom),
    ("fuse.glusterfs", FsClass::Custom),
    ("afs", FsClass::Custom),
    ("sshfs", FsClass::Custom),
    ("fuse.sshfs", FsClass::Custom),
    ("cifs", FsClass::Custom),
    ("smb", FsClass::Custom),
    ("smb3", FsClass::Custom),
    ("smbfs", FsClass::Custom),
    ("gcsfuse", FsClass::Custom),
    ("fuse.gcsfuse", FsClass::Custom),
    ("sysfs", FsClass::CustomRootOnly),
];

/// The class of a filesystem type in [`FILESYSTEMS`], if any.
pub fn fs_class(fs_type: &str) -> Option<FsClass> {
    FILESYSTEMS.iter().find_map(|(name, class)| {
        let hit = match name.strip_suffix('*') {
            Some(prefix) => fs_type.starts_with(prefix),
            None => fs_type == *name,
        };
        hit.then_some(*class)
    })
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted (unescaped: `\040` is a space).
    pub mount_point: PathBuf,
    /// The filesystem type (`ext4`, `fuse.sshfs`, ...).
    pub fs_type: String,
    /// The mount source (`/dev/sda1`, `server:/export`, `proc`, ...).
    pub source: String,
}

/// The mount table: which filesystem type every mount point has.
#[derive(Debug, Clone, Default)]
pub struct MountTable {
    entries: Vec<MountEntry>,
    /// Mount point -> index of its topmost (last) entry.
    by_point: HashMap<PathBuf, usize>,
}

/// Undoes the octal escapes of mountinfo (`\040` space, `\011` tab, `\012` newline, `\134` `\`).
fn unescape_mountinfo(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 3 < s.len() && s[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (s[i + 1] - b'0') as u32 * 64 + (s[i + 2] - b'0') as u32 * 8 + (s[i + 3] - b'0') as u32;
            if v <= 0xff {
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

impl MountTable {
    /// Parses the text of `/proc/<pid>/mountinfo` (bytes: mount points need not be UTF-8).
    /// Malformed lines are ignored.
    pub fn parse(text: &[u8]) -> MountTable {
        let mut entries = Vec::new();
        for line in text.split(|&b| b == b'\n') {
            let fields: Vec<&[u8]> = line.split(|&b| b == b' ').filter(|f| !f.is_empty()).collect();
            // id parent major:minor root mount_point options [optional...] - fstype source superopts
            if fields.len() < 7 {
                continue;
            }
            let Some(sep) = fields.iter().skip(6).position(|f| *f == b"-").map(|p| p + 6) else {
                continue;
            };
            let Some(fs_type) = fields.get(sep + 1) else { continue };
            let mount_point = unescape_mountinfo(fields[4]);
            if !mount_point.starts_with(b"/") {
                continue;
            }
            entries.push(MountEntry {
                mount_point: PathBuf::from(OsString::from_vec(mount_point)),
                fs_type: String::from_utf8_lossy(&unescape_mountinfo(fs_type)).into_owned(),
                source: fields.get(sep + 2).map(|s| String::from_utf8_lossy(&unescape_mountinfo(s)).into_owned()).unwrap_or_default(),
            });
        }
        MountTable::from_entries(entries)
    }

    /// A table from entries in mount order (a later entry on the same mount point hides an
    /// earlier one).
    pub fn from_entries(entries: Vec<MountEntry>) -> MountTable {
        let by_point = entries.iter().enumerate().map(|(i, e)| (e.mount_point.clone(), i)).collect();
        MountTable { entries, by_point }
    }

    /// The mount table of this process, from `/proc/self/mountinfo`.
    pub fn from_proc() -> io::Result<MountTable> {
        Ok(MountTable::parse(&fs::read("/proc/self/mountinfo")?))
    }

    /// The entries in mount order.
    pub fn entries(&self) -> &[MountEntry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The topmost mount whose mount point is exactly `path`.
    pub fn mount_at(&self, path: &Path) -> Option<&MountEntry> {
        self.by_point.get(path).map(|&i| &self.entries[i])
    }

    /// The mount `path` lies on: the topmost entry with the longest mount point that is `path`
    /// or an ancestor of it (lexically; pass a real path).
    pub fn mount_of(&self, path: &Path) -> Option<&MountEntry> {
        path.ancestors().find_map(|a| self.mount_at(a))
    }
}

