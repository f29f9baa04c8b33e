//! The parallel on-demand tree walker behind `mdatp scan quick | full | custom`.
//!
//! [`walk`] visits every root with up to [`WalkOptions::threads`] scoped threads sharing one work
//! stack of directories and batches of files, and calls the caller's `scan` for every regular
//! file that is not excluded, then `on_result` with its outcome.
//!
//! # Invariants
//!
//! * **Symlinks are never followed** below a root (entries are classified with `lstat`/`d_type`;
//!   a symlink is neither scanned nor descended into). Loops through symlinks are therefore
//!   impossible; bind mounts of a parent into a child could still loop, and are not detected.
//!   A root that is itself a symlink (or lies below one) is resolved **once** with
//!   `canonicalize`, so every path the walker hands out is a real path, which is what the
//!   exclusion matcher needs (see [`crate::exclusions`]).
//! * **Special files** (FIFOs, sockets, block and character devices) are never passed to `scan`
//!   (opening a FIFO would block); they are counted as skipped and reported to `on_result` as
//!   [`FileOutcome::Skipped`].
//! * **Filesystems**: the type of a root's filesystem, and of every directory that is a mount
//!   point (found in the mount table, or because `st_dev` changes; the table is re-read when a
//!   mount appears after the walk started), is checked against
//!   [`WalkOptions::filesystem_filter`] (table [`FILESYSTEMS`]). Full and quick scans never
//!   enter proc, sysfs, devtmpfs, cgroup, ... because those types are not in the table.
//! * **Exclusions** are asked once per directory and once per file, in the [`Scope::Epp`] scope
//!   (global exclusions are not for on-demand scans). An excluded directory is not descended
//!   into. `exclusions: None` is `--ignore-exclusions`.
//! * **Errors never stop a walk**: a directory that vanishes or cannot be read counts one error
//!   (reported to `on_result` as [`FileOutcome::Error`]) and the walk goes on. Names are handled
//!   as `OsStr`/`Path` throughout: non-UTF-8 names and names with newlines are fine.
//! * **Cancellation**: `cancel` is checked before every directory entry and every file, and idle
//!   threads poll it every 20 ms, so a cancelled walk returns within a fraction of a second
//!   (plus at most the time `scan` takes for the files being scanned at that moment).

#![forbid(unsafe_code)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, RwLock};
use std::time::Duration;

use crate::exclusions::{ExclusionMatcher, Scope};
use crate::scan::file::FileOutcome;

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

/// Which filesystems a walk enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsFilter {
    /// Quick and full scans: the [`FsClass::Full`] types.
    #[default]
    FullScan,
    /// Custom scans: also the [`FsClass::Custom`] types, and sysfs when a root lies on it.
    Custom,
    /// Every filesystem, pseudo-filesystems included (tests, tools).
    Any,
}

impl FsFilter {
    /// True when a filesystem of type `fs_type` is walked; `at_root` is true for the filesystem
    /// a root given by the caller lies on, false when the walk crosses into a mount point.
    pub fn allows(self, fs_type: &str, at_root: bool) -> bool {
        match self {
            FsFilter::Any => true,
            FsFilter::FullScan => fs_class(fs_type) == Some(FsClass::Full),
            FsFilter::Custom => match fs_class(fs_type) {
                Some(FsClass::Full | FsClass::Custom) => true,
                Some(FsClass::CustomRootOnly) => at_root,
                None => false,
            },
        }
    }
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

/// How a tree walk runs.
#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// Parallel threads, 1..=64 (`maximumOnDemandScanThreads`); clamped into that range.
    pub threads: usize,
    /// The exclusions to honour; `None` for `--ignore-exclusions`.
    pub exclusions: Option<ExclusionMatcher>,
    /// Which filesystems are walked.
    pub filesystem_filter: FsFilter,
    /// Paths never entered nor scanned, with everything below them (the agent's own quarantine,
    /// for example). Compared lexically with the real paths the walker finds; each is also
    /// resolved once when the walk starts, so a path through a symlink works too.
    pub skip_paths: Vec<PathBuf>,
    /// The mount table to use; `None` reads `/proc/self/mountinfo` when the walk starts. When
    /// no table can be had, every filesystem is walked except below `/proc`, `/sys` and `/dev`
    /// (unless the filter is [`FsFilter::Any`]).
    pub mount_table: Option<MountTable>,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions { threads: 2, exclusions: None, filesystem_filter: FsFilter::FullScan, skip_paths: Vec::new(), mount_table: None }
    }
}

/// Live counters of a walk, readable from any thread while it runs.
#[derive(Debug, Default)]
pub struct Progress {
    /// Files passed to `scan` whose outcome was `Clean` or `Detected`.
    pub files_scanned: AtomicU64,
    /// Files with a `Detected` outcome.
    pub threats: AtomicU64,
    /// Directories read.
    pub dirs: AtomicU64,
    /// Not scanned: special files, filtered filesystems, skip paths, `Skipped` outcomes.
    pub skipped: AtomicU64,
    /// Files and directories left out by an exclusion (a directory counts once).
    pub excluded: AtomicU64,
    /// Unreadable or vanished directories, unresolvable roots, `Error` outcomes.
    pub errors: AtomicU64,
    /// Sizes (from `lstat`) of the files counted in `files_scanned`.
    pub bytes: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProgressSnapshot {
    pub files_scanned: u64,
    pub threats: u64,
    pub dirs: u64,
    pub skipped: u64,
    pub excluded: u64,
    pub errors: u64,
    pub bytes: u64,
}

impl Progress {
    pub fn new() -> Progress {
        Progress::default()
    }

    /// The current values (each read atomically; together they are approximate while a walk runs).
    pub fn snapshot(&self) -> ProgressSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProgressSnapshot {
            files_scanned: l(&self.files_scanned),
            threats: l(&self.threats),
            dirs: l(&self.dirs),
            skipped: l(&self.skipped),
            excluded: l(&self.excluded),
            errors: l(&self.errors),
            bytes: l(&self.bytes),
        }
    }

    fn add(a: &AtomicU64, n: u64) {
        a.fetch_add(n, Ordering::Relaxed);
    }
}

/// The totals of one walk (what this walk added to the `Progress` it was given).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WalkSummary {
    pub files_scanned: u64,
    pub threats: u64,
    pub errors: u64,
    pub skipped: u64,
    pub excluded: u64,
    pub dirs: u64,
    pub bytes: u64,
    /// The walk stopped because `cancel` was set.
    pub cancelled: bool,
}

/// Files per work item: large enough to keep the lock cold, small enough to share a big
/// directory between threads.
const FILE_BATCH: usize = 32;

enum Job {
    Dir { path: PathBuf, dev: u64 },
    Files(Vec<(PathBuf, u64)>),
}

struct QueueState {
    stack: Vec<Job>,
    /// Workers holding a job (that may push more).
    active: usize,
    done: bool,
}

struct Walker<'a> {
    opts: &'a WalkOptions,
    cancel: &'a AtomicBool,
    progress: &'a Progress,
    scan: &'a (dyn Fn(&Path) -> FileOutcome + Sync),
    on_result: &'a (dyn Fn(&Path, &FileOutcome) + Sync),
    /// Empty when no table could be had.
    mounts: RwLock<MountTable>,
    /// The table came from `/proc/self/mountinfo` and may be re-read when a mount appears that
    /// it does not know (mounted after the walk started).
    refreshable: bool,
    /// Decisions for `st_dev` changes the table did not explain (one re-read per device).
    unexplained: Mutex<HashMap<u64, Result<(), String>>>,
    skip: HashSet<PathBuf>,
    queue: Mutex<QueueState>,
    cv: Condvar,
}

/// Directories never walked when no mount table is available.
const PSEUDO_DIRS: &[&str] = &["/proc", "/sys", "/dev"];

impl<'a> Walker<'a> {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn push(&self, job: Job) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.stack.push(job);
        drop(q);
        self.cv.notify_one();
    }

    fn error(&self, path: &Path, msg: String) {
        Progress::add(&self.progress.errors, 1);
        (self.on_result)(path, &FileOutcome::Error(msg));
    }

    fn skipped(&self, path: &Path, why: String) {
        Progress::add(&self.progress.skipped, 1);
        (self.on_result)(path, &FileOutcome::Skipped(why));
    }

    /// Whether the filesystem at `path` may be walked. A root (`at_root`) is looked up by
    /// longest prefix. Below a root, a directory that is a mount point in the table is checked
    /// by its type; one whose `st_dev` differs from its parent's (`dev`, `dev_changed`) but is
    /// not in the table was mounted after the table was read (the table is then re-read, once
    /// per device) or is a btrfs subvolume (its type is its parent mount's).
    fn fs_allowed(&self, path: &Path, at_root: bool, dev_changed: bool, dev: u64) -> Result<(), String> {
        let filter = self.opts.filesystem_filter;
        if filter == FsFilter::Any {
            return Ok(());
        }
        let decide = |e: Option<&MountEntry>| match e {
            Some(e) if !filter.allows(&e.fs_type, at_root) => Err(format!("filesystem type {} is not scanned", e.fs_type)),
            _ => Ok(()),
        };
        {
            let t = self.mounts.read().unwrap_or_else(|p| p.into_inner());
            if t.is_empty() {
                return if PSEUDO_DIRS.iter().any(|d| path.starts_with(d)) {
                    Err("pseudo-filesystem is not scanned".to_string())
                } else {
                    Ok(())
                };
            }
            if let Some(e) = t.mount_at(path) {
                return decide(Some(e));
            }
            if at_root {
                return decide(t.mount_of(path));
            }
            if !dev_changed {
                return Ok(()); // same filesystem as the parent, which was allowed
            }
            if !self.refreshable {
                return decide(t.mount_of(path));
            }
        }
        let mut cache = self.unexplained.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = cache.get(&dev) {
            return r.clone();
        }
        if let Ok(fresh) = MountTable::from_proc() {
            if !fresh.is_empty() {
                *self.mounts.write().unwrap_or_else(|p| p.into_inner()) = fresh;
            }
        }
        let t = self.mounts.read().unwrap_or_else(|p| p.into_inner());
        let r = decide(t.mount_of(path));
        cache.insert(dev, r.clone());
        r
    }

    fn excluded(&self, path: &Path, is_dir: bool) -> bool {
        match &self.opts.exclusions {
            Some(m) if m.is_path_excluded(path, is_dir, Scope::Epp) => {
                Progress::add(&self.progress.excluded, 1);
                true
            }
            _ => false,
        }
    }

    fn worker(&self) {
        loop {
            let job = {
                let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if q.done {
                        return;
                    }
                    if self.cancelled() {
                        q.done = true;
                        self.cv.notify_all();
                        return;
                    }
                    if let Some(j) = q.stack.pop() {
                        q.active += 1;
                        break j;
                    }
                    if q.active == 0 {
                        q.done = true;
                        self.cv.notify_all();
                        return;
                    }
                    q = self.cv.wait_timeout(q, Duration::from_millis(20)).unwrap_or_else(|p| p.into_inner()).0;
                }
            };
            let _active = ActiveJob(self);
            match job {
                Job::Dir { path, dev } => self.walk_dir(&path, dev),
                Job::Files(files) => self.scan_files(files),
            }
        }
    }

    fn scan_files(&self, files: Vec<(PathBuf, u64)>) {
        for (path, size) in files {
            if self.cancelled() {
                return;
            }
            let outcome = (self.scan)(&path);
            let p = self.progress;
            match &outcome {
                FileOutcome::Clean => {
                    Progress::add(&p.files_scanned, 1);
                    Progress::add(&p.bytes, size);
                }
                FileOutcome::Detected { .. } => {
                    Progress::add(&p.files_scanned, 1);
                    Progress::add(&p.threats, 1);
                    Progress::add(&p.bytes, size);
                }
                FileOutcome::Skipped(_) => Progress::add(&p.skipped, 1),
                FileOutcome::Error(_) => Progress::add(&p.errors, 1),
            }
            (self.on_result)(&path, &outcome);
        }
    }

    fn walk_dir(&self, dir: &Path, dev: u64) {
        if self.cancelled() {
            return;
        }
        Progress::add(&self.progress.dirs, 1);
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => return self.error(dir, format!("cannot read directory: {e}")),
        };
        let mut batch: Vec<(PathBuf, u64)> = Vec::new();
        for entry in rd {
            if self.cancelled() {
                return;
            }
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    // The directory vanished or broke while being read; what was read stands.
                    self.error(dir, format!("error while reading directory: {e}"));
                    break;
                }
            };
            let path = entry.path();
            let ft = match entry.file_type() {
                Ok(ft) => ft,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // vanished
                Err(e) => {
                    self.error(&path, format!("cannot stat: {e}"));
                    continue;
                }
            };
            if ft.is_symlink() {
                continue; // never followed, never scanned
            }
            if !self.skip.is_empty() && self.skip.contains(&path) {
                Progress::add(&self.progress.skipped, 1);
                continue;
            }
            let is_dir = ft.is_dir();
            if self.excluded(&path, is_dir) {
                continue;
            }
            if is_dir {
                let md = match entry.metadata() {
                    Ok(md) => md,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        self.error(&path, format!("cannot stat: {e}"));
                        continue;
                    }
                };
                if !md.is_dir() {
                    continue; // replaced since readdir (by a symlink, say)
                }
                if let Err(why) = self.fs_allowed(&path, false, md.dev() != dev, md.dev()) {
                    self.skipped(&path, why);
                    continue;
                }
                self.push(Job::Dir { path, dev: md.dev() });
            } else if ft.is_file() {
                let md = match entry.metadata() {
                    Ok(md) => md,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        self.error(&path, format!("cannot stat: {e}"));
                        continue;
                    }
                };
                if !md.is_file() {
                    continue;
                }
                batch.push((path, md.len()));
                if batch.len() >= FILE_BATCH {
                    self.push(Job::Files(std::mem::take(&mut batch)));
                }
            } else {
                self.skipped(&path, format!("special file ({})", special_kind(&ft)));
            }
        }
        if !batch.is_empty() {
            // The last batch is scanned here: no lock round trip for small directories.
            self.scan_files(batch);
        }
    }

    /// Queues one root (already resolved).
    fn start_root(&self, root: &Path) {
        if self.skip.iter().any(|s| root.starts_with(s)) {
            Progress::add(&self.progress.skipped, 1);
            return;
        }
        let md = match fs::symlink_metadata(root) {
            Ok(md) => md,
            Err(e) => return self.error(root, format!("cannot stat: {e}")),
        };
        if self.excluded(root, md.is_dir()) {
            return;
        }
        if let Err(why) = self.fs_allowed(root, true, true, md.dev()) {
            return self.skipped(root, why);
        }
        if md.is_dir() {
            self.push(Job::Dir { path: root.to_path_buf(), dev: md.dev() });
        } else if md.is_file() {
            self.push(Job::Files(vec![(root.to_path_buf(), md.len())]));
        } else {
            self.skipped(root, format!("special file ({})", special_kind(&md.file_type())));
        }
    }

    /// True when a walk from `a` reaches `b` (a proper descendant): every mount point between
    /// them is walked, and `a`'s own filesystem is.
    fn covers(&self, a: &Path, b: &Path) -> bool {
        if a == b || !b.starts_with(a) {
            return false;
        }
        if self.fs_allowed(a, true, true, 0).is_err() {
            return false;
        }
        b.ancestors().take_while(|p| *p != a).all(|p| self.fs_allowed(p, false, false, 0).is_ok())
    }
}

/// Marks the end of one job, also when `scan` or `on_result` panics: the walk then stops (the
/// other threads return and the panic propagates out of [`walk`]) instead of waiting forever.
struct ActiveJob<'w, 'a>(&'w Walker<'a>);

impl Drop for ActiveJob<'_, '_> {
    fn drop(&mut self) {
        let mut q = self.0.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.active -= 1;
        if std::thread::panicking() || (q.active == 0 && q.stack.is_empty()) {
            q.done = true;
            self.0.cv.notify_all();
        }
    }
}

fn special_kind(ft: &fs::FileType) -> &'static str {
    crate::scan::file::file_kind(ft).unwrap_or("regular file")
}

/// Walks `roots` and scans every regular file below them.
///
/// * Roots are resolved once (`canonicalize`: a symlinked root is followed, once); a root that
///   cannot be resolved counts one error. Duplicates and roots that another root's walk reaches
///   are dropped, so no file is scanned twice. A root may be a regular file.
/// * `scan` is called for every regular file that is not excluded, from up to `opts.threads`
///   threads at once; `on_result` receives each outcome, and also the walker's own errors
///   ([`FileOutcome::Error`]: unreadable directories, ...) and skipped special files and
///   filesystems ([`FileOutcome::Skipped`]). Excluded paths and symlinks are not reported.
/// * `progress` is updated live; the returned summary holds what this walk added to it.
/// * Returns early, with `cancelled = true`, once `cancel` is set.
pub fn walk(
    roots: &[PathBuf],
    opts: &WalkOptions,
    cancel: &AtomicBool,
    progress: &Progress,
    scan: &(dyn Fn(&Path) -> FileOutcome + Sync),
    on_result: &(dyn Fn(&Path, &FileOutcome) + Sync),
) -> WalkSummary {
    let before = progress.snapshot();
    let (mounts, refreshable) = match &opts.mount_table {
        Some(t) => (t.clone(), false),
        None => (MountTable::from_proc().unwrap_or_default(), true),
    };
    let w = Walker {
        opts,
        cancel,
        progress,
        scan,
        on_result,
        mounts: RwLock::new(mounts),
        refreshable,
        unexplained: Mutex::new(HashMap::new()),
        // As given and resolved (the walker compares real paths).
        skip: opts.skip_paths.iter().flat_map(|p| [Some(p.clone()), fs::canonicalize(p).ok()]).flatten().collect(),
        queue: Mutex::new(QueueState { stack: Vec::new(), active: 0, done: false }),
        cv: Condvar::new(),
    };

    // Resolve and deduplicate the roots.
    let mut resolved: BTreeSet<PathBuf> = BTreeSet::new();
    for r in roots {
        match fs::canonicalize(r) {
            Ok(p) => {
                resolved.insert(p);
            }
            Err(e) => w.error(r, format!("cannot resolve: {e}")),
        }
    }
    let resolved: Vec<PathBuf> = resolved.into_iter().collect();
    let kept: Vec<&PathBuf> =
        resolved.iter().filter(|b| !resolved.iter().any(|a| a != *b && w.covers(a, b))).collect();
    // Push in reverse so that the work stack pops roots in sorted order.
    for r in kept.iter().rev() {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        w.start_root(r);
    }

    let threads = opts.threads.clamp(1, 64);
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(|| w.worker());
        }
        w.worker();
    });

    let after = progress.snapshot();
    WalkSummary {
        files_scanned: after.files_scanned - before.files_scanned,
        threats: after.threats - before.threats,
        errors: after.errors - before.errors,
        skipped: after.skipped - before.skipped,
        excluded: after.excluded - before.excluded,
        dirs: after.dirs - before.dirs,
        bytes: after.bytes - before.bytes,
        cancelled: cancel.load(Ordering::Relaxed),
    }
}

/// The roots of a full scan: every mount point whose filesystem type passes
/// [`FsFilter::FullScan`], except
/// * those a walk from another root reaches anyway (a mount whose parent mount also passes), so
///   that nested mounts are not walked twice: `/home` on ext4 below an ext4 `/` is no root;
/// * those below a kernel interface filesystem ([`NEVER_BELOW`]: proc, sysfs), so that a tmpfs
///   on `/sys/fs/cgroup` never makes a full scan enter `/sys`.
///
/// `/dev/shm` (tmpfs below devtmpfs) is therefore a root of its own. When the mount table
/// cannot be read, `[/]` (the walker then leaves out `/proc`, `/sys` and `/dev` by path).
pub fn full_scan_roots() -> Vec<PathBuf> {
    match MountTable::from_proc() {
        Ok(t) if !t.is_empty() => full_scan_roots_from(&t),
        _ => vec![PathBuf::from("/")],
    }
}

/// Filesystem types whose subtrees never hold a full scan root (kernel interfaces).
pub const NEVER_BELOW: &[&str] = &["proc", "sysfs"];

/// [`full_scan_roots`] for a given mount table.
pub fn full_scan_roots_from(table: &MountTable) -> Vec<PathBuf> {
    let mut roots = BTreeSet::new();
    for (point, &i) in &table.by_point {
        let e = &table.entries[i];
        if !FsFilter::FullScan.allows(&e.fs_type, true) {
            continue;
        }
        let ancestors_ok = point.ancestors().skip(1).all(|a| match table.mount_at(a) {
            Some(m) => !NEVER_BELOW.contains(&m.fs_type.as_str()),
            None => true,
        });
        if !ancestors_ok {
            continue;
        }
        let parent = point.parent().and_then(|p| table.mount_of(p));
        match parent {
            Some(pe) if FsFilter::FullScan.allows(&pe.fs_type, false) => {}
            _ => {
                roots.insert(point.clone());
            }
        }
    }
    roots.into_iter().collect()
}

/// The roots of a quick scan: the places malware lands, those that exist on this machine.
///
/// | Path | Why |
/// |---|---|
/// | `/tmp`, `/var/tmp` | world-writable; droppers download and run payloads from here |
/// | `/dev/shm` | world-writable tmpfs, favoured for fileless-style payloads |
/// | `/home/*`, `/root` | users' downloads, shell rc files, `~/.config/autostart`, `~/.ssh` |
/// | `/etc/cron*`, `/var/spool/cron` | cron persistence (`/etc/crontab`, `/etc/cron.d`, `cron.daily`, ..., user crontabs) |
/// | `/etc/systemd/system`, `/usr/lib/systemd/system`, `/lib/systemd/system` | systemd unit persistence (services, timers); `/lib` is usually a symlink to `/usr/lib` and is then deduplicated |
/// | `/etc/init.d`, `/etc/rc.local` | SysV init persistence |
/// | `/etc/ld.so.preload` | user-space rootkits preload themselves through it |
/// | executables of running processes | what runs now; from `/proc/<pid>/exe`, resolved, deduplicated; deleted executables and processes in another root (containers, chroots) are left out, and others' processes are only visible to root |
///
/// [`walk`] resolves each root once and drops roots covered by another (a process's executable
/// under `/tmp`, say). Quick scans use [`FsFilter::FullScan`].
pub fn quick_scan_roots() -> Vec<PathBuf> {
    let mut roots: BTreeSet<PathBuf> = BTreeSet::new();
    for p in [
        "/tmp",
        "/var/tmp",
        "/dev/shm",
        "/root",
        "/var/spool/cron",
        "/etc/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
        "/etc/init.d",
        "/etc/rc.local",
        "/etc/ld.so.preload",
    ] {
        roots.insert(PathBuf::from(p));
    }
    roots.extend(dir_entries_matching(Path::new("/home"), |_| true));
    roots.extend(dir_entries_matching(Path::new("/etc"), |n| n.as_bytes().starts_with(b"cron")));
    roots.extend(process_executables());
    roots.into_iter().filter(|p| fs::symlink_metadata(p).is_ok()).collect()
}

fn dir_entries_matching(dir: &Path, keep: impl Fn(&std::ffi::OsStr) -> bool) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else { return Vec::new() };
    rd.filter_map(Result::ok).filter(|e| keep(&e.file_name())).map(|e| e.path()).collect()
}

/// The executables of running processes in this process's root, resolved and deduplicated;
/// deleted ones are left out.
fn process_executables() -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let Ok(rd) = fs::read_dir("/proc") else { return out };
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name();
        if name.is_empty() || !name.as_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        let dir = e.path();
        // Another root (container, chroot): its exe path means something else here.
        match fs::read_link(dir.join("root")) {
            Ok(r) if r == Path::new("/") => {}
            _ => continue,
        }
        let Ok(exe) = fs::read_link(dir.join("exe")) else { continue };
        if exe.as_os_str().as_bytes().ends_with(b" (deleted)") || !exe.is_absolute() {
            continue;
        }
        if fs::symlink_metadata(&exe).is_ok() {
            out.insert(exe);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exclusions::{Exclusion, ExclusionKind};
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::time::Instant;

    /// A temporary directory for trees of many files: on tmpfs (`/dev/shm`) when there is one,
    /// since creating thousands of files on a busy disk takes seconds.
    fn fast_tempdir() -> tempfile::TempDir {
        tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap()
    }

    fn touch(p: &Path, content: &[u8]) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    fn folder_excl(p: &Path) -> Exclusion {
        Exclusion {
            kind: ExclusionKind::Path { path: p.to_str().unwrap().to_string(), is_directory: true },
            scopes: vec![Scope::Epp],
            managed: false,
        }
    }

    /// A sample tree; returns (tempdir, the files that a walk without exclusions must scan).
    fn sample_tree() -> (tempfile::TempDir, BTreeSet<PathBuf>) {
        let td = fast_tempdir();
        let root = fs::canonicalize(td.path()).unwrap();
        let mut files = BTreeSet::new();
        for p in ["a/b/c/deep.txt", "a/b/one", "a/two", "top", "excluded/inner/x", "excluded/y", "empty_dir/.keep"] {
            let f = root.join(p);
            touch(&f, p.as_bytes());
            files.insert(f);
        }
        // Newline and non-UTF-8 names.
        let nl = root.join("new\nline");
        touch(&nl, b"nl");
        files.insert(nl);
        let bad = root.join(OsString::from_vec(b"bad\xff\xfe name".to_vec()));
        touch(&bad, b"bad");
        files.insert(bad.clone());
        let bad_dir = root.join(OsString::from_vec(b"dir\x80".to_vec()));
        touch(&bad_dir.join("f"), b"f");
        files.insert(bad_dir.join("f"));
        // Symlink loop (a/loop -> ..) and a symlink to a file: neither followed nor scanned.
        std::os::unix::fs::symlink("..", root.join("a/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("a/two"), root.join("link_to_file")).unwrap();
        std::os::unix::fs::symlink("/", root.join("a/b/to_slash")).unwrap();
        // A FIFO: never passed to scan (opening it would block).
        nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        (td, files)
    }

    struct Collect {
        scanned: Mutex<Vec<PathBuf>>,
        results: Mutex<Vec<(PathBuf, FileOutcome)>>,
    }

    impl Collect {
        fn new() -> Collect {
            Collect { scanned: Mutex::new(Vec::new()), results: Mutex::new(Vec::new()) }
        }
        fn scanned_set(&self) -> BTreeSet<PathBuf> {
            self.scanned.lock().unwrap().iter().cloned().collect()
        }
    }

    fn run(roots: &[PathBuf], opts: &WalkOptions, c: &Collect) -> WalkSummary {
        let cancel = AtomicBool::new(false);
        let progress = Progress::new();
        walk(
            roots,
            opts,
            &cancel,
            &progress,
            &|p: &Path| {
                assert!(fs::symlink_metadata(p).unwrap().is_file(), "scan called for a non-file {p:?}");
                c.scanned.lock().unwrap().push(p.to_path_buf());
                if fs::read(p).unwrap() == b"top" {
                    FileOutcome::Error("pretend unreadable".into())
                } else {
                    FileOutcome::Clean
                }
            },
            &|p: &Path, o: &FileOutcome| c.results.lock().unwrap().push((p.to_path_buf(), o.clone())),
        )
    }

    fn opts(threads: usize) -> WalkOptions {
        WalkOptions { threads, filesystem_filter: FsFilter::Any, ..WalkOptions::default() }
    }

    #[test]
    fn walks_tree_without_following_symlinks_or_opening_fifos() {
        let (td, files) = sample_tree();
        let root = fs::canonicalize(td.path()).unwrap();
        let c = Collect::new();
        let s = run(std::slice::from_ref(&root), &opts(1), &c);
        assert_eq!(c.scanned_set(), files);
        // Every file exactly once (the symlink loop did not repeat anything).
        assert_eq!(c.scanned.lock().unwrap().len(), files.len());
        assert_eq!(s.files_scanned, files.len() as u64 - 1); // `top` reported an error
        assert_eq!(s.errors, 1);
        assert_eq!(s.threats, 0);
        assert!(!s.cancelled);
        assert_eq!(s.skipped, 1, "the fifo");
        let results = c.results.lock().unwrap();
        assert!(results.iter().any(|(p, o)| p == &root.join("fifo") && matches!(o, FileOutcome::Skipped(_))));
        assert!(s.dirs >= 8, "{s:?}");
        assert!(s.bytes > 0);
    }

    #[test]
    fn thread_counts_give_identical_sets() {
        let (td, files) = sample_tree();
        // Add breadth so several threads actually share work.
        for d in 0..20 {
            for f in 0..40 {
                touch(&td.path().join(format!("wide/d{d}/f{f}")), b"x");
            }
        }
        let root = td.path().to_path_buf();
        let c1 = Collect::new();
        let s1 = run(std::slice::from_ref(&root), &opts(1), &c1);
        let c4 = Collect::new();
        let s4 = run(std::slice::from_ref(&root), &opts(4), &c4);
        assert_eq!(c1.scanned_set(), c4.scanned_set());
        let n4 = c4.scanned.lock().unwrap().len();
        assert_eq!(n4, c4.scanned_set().len(), "no file twice");
        assert_eq!(c1.scanned_set().len(), files.len() + 800);
        assert_eq!(s1, s4);
        // Out-of-range thread counts are clamped, not refused.
        let c0 = Collect::new();
        run(std::slice::from_ref(&root), &opts(0), &c0);
        let c99 = Collect::new();
        run(&[root], &opts(999), &c99);
        assert_eq!(c0.scanned_set(), c1.scanned_set());
        assert_eq!(c99.scanned_set(), c1.scanned_set());
    }

    #[test]
    fn exclusions_are_applied_and_excluded_dirs_not_descended() {
        let (td, files) = sample_tree();
        let root = fs::canonicalize(td.path()).unwrap();
        let excluded = root.join("excluded");
        let m = ExclusionMatcher::new(&[
            folder_excl(&excluded),
            Exclusion { kind: ExclusionKind::Extension { extension: "txt".into() }, scopes: vec![Scope::Epp], managed: false },
            // Global exclusions do not apply to on-demand scans.
            Exclusion {
                kind: ExclusionKind::Path { path: root.join("a").to_str().unwrap().into(), is_directory: true },
                scopes: vec![Scope::Global],
                managed: false,
            },
        ]);
        let c = Collect::new();
        let o = WalkOptions { exclusions: Some(m.clone()), ..opts(2) };
        let s = run(std::slice::from_ref(&root), &o, &c);
        let scanned = c.scanned_set();
        assert!(scanned.iter().all(|p| !p.starts_with(&excluded)), "scan called below an excluded dir");
        assert!(!scanned.contains(&root.join("a/b/c/deep.txt")));
        assert!(scanned.contains(&root.join("a/b/one")), "global exclusion must not apply");
        let want: BTreeSet<PathBuf> =
            files.iter().filter(|p| !p.starts_with(&excluded) && !p.ends_with("deep.txt")).cloned().collect();
        assert_eq!(scanned, want);
        assert_eq!(s.excluded, 2, "the excluded dir counts once, plus deep.txt");
        // Nothing below the excluded directory was even reported.
        assert!(c.results.lock().unwrap().iter().all(|(p, _)| !p.starts_with(&excluded)));

        // --ignore-exclusions.
        let c = Collect::new();
        run(std::slice::from_ref(&root), &opts(2), &c);
        assert_eq!(c.scanned_set(), files);

        // An excluded root is not walked at all.
        let c = Collect::new();
        let s = run(std::slice::from_ref(&excluded), &WalkOptions { exclusions: Some(m), ..opts(2) }, &c);
        assert!(c.scanned_set().is_empty());
        assert_eq!(s.excluded, 1);
    }

    #[test]
    fn skip_paths() {
        let (td, files) = sample_tree();
        let root = fs::canonicalize(td.path()).unwrap();
        let c = Collect::new();
        let o = WalkOptions { skip_paths: vec![root.join("a")], ..opts(2) };
        run(std::slice::from_ref(&root), &o, &c);
        let want: BTreeSet<PathBuf> = files.iter().filter(|p| !p.starts_with(root.join("a"))).cloned().collect();
        assert_eq!(c.scanned_set(), want);
        // A skip path given through a symlink is resolved once.
        let other = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&root, other.path().join("via")).unwrap();
        let c = Collect::new();
        let o = WalkOptions { skip_paths: vec![other.path().join("via/a")], ..opts(2) };
        run(std::slice::from_ref(&root), &o, &c);
        assert_eq!(c.scanned_set(), want);
    }

    #[test]
    fn unreadable_and_vanished_directories() {
        let (td, _files) = sample_tree();
        let root = fs::canonicalize(td.path()).unwrap();
        let locked = root.join("locked");
        touch(&locked.join("secret"), b"s");
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        let c = Collect::new();
        let s = run(&[root.clone(), root.join("does-not-exist")], &opts(2), &c);
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
        // The missing root: one error, reported, and the walk went on.
        assert!(c.results.lock().unwrap().iter().any(|(p, o)| p.ends_with("does-not-exist") && matches!(o, FileOutcome::Error(_))));
        assert!(c.scanned_set().contains(&root.join("a/b/one")));
        // As root, mode 000 does not stop reading (CAP_DAC_READ_SEARCH), so the "unreadable"
        // assertion only means something for other users.
        if !nix::unistd::geteuid().is_root() {
            assert!(!c.scanned_set().contains(&locked.join("secret")));
            assert!(c.results.lock().unwrap().iter().any(|(p, o)| p == &locked && matches!(o, FileOutcome::Error(_))));
            assert_eq!(s.errors, 3); // top (pretend), locked, does-not-exist
        } else {
            assert_eq!(s.errors, 2); // top (pretend), does-not-exist
        }

        // Directories vanishing while the walk runs: the walk finishes and counts what it saw.
        let td2 = fast_tempdir();
        let r2 = fs::canonicalize(td2.path()).unwrap();
        for d in 0..30 {
            touch(&r2.join(format!("d{d}/sub/f")), b"x");
        }
        let cancel = AtomicBool::new(false);
        let progress = Progress::new();
        let r2c = r2.clone();
        let n = AtomicUsize::new(0);
        let s = walk(
            std::slice::from_ref(&r2),
            &opts(2),
            &cancel,
            &progress,
            &|_p: &Path| {
                // Remove directories (some not read yet) while the walk runs.
                let k = n.fetch_add(1, Ordering::Relaxed);
                let _ = fs::remove_dir_all(r2c.join(format!("d{}", (k * 7 + 3) % 30)));
                FileOutcome::Clean
            },
            &|_, _| {},
        );
        assert!(!s.cancelled);
        assert!(s.files_scanned <= 30);
    }

    /// A directory the walker cannot read counts one error and nothing below it is scanned.
    /// As root, mode 000 is still readable (CAP_DAC_READ_SEARCH), so when run as root this test
    /// re-runs itself as `nobody` (uid 65534); if that is impossible it says so and passes.
    #[test]
    fn unreadable_directory_as_non_root() {
        const NAME: &str = "scan::walk::tests::unreadable_directory_as_non_root";
        if nix::unistd::geteuid().is_root() {
            use std::os::unix::process::CommandExt;
            let exe = std::env::current_exe().unwrap();
            let out = std::process::Command::new(exe)
                .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
                .uid(65534)
                .gid(65534)
                .output();
            match out {
                Ok(o) => {
                    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
                    assert!(o.status.success(), "as nobody: {text}");
                    assert!(text.contains("1 passed"), "as nobody: {text}");
                }
                Err(e) => {
                    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: cannot re-run as nobody: {e}");
                    eprintln!("NOT RUN: cannot re-run as nobody ({e}): unreadable-directory check");
                }
            }
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let td = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(td.path()).unwrap();
        touch(&root.join("ok/file"), b"x");
        touch(&root.join("locked/secret"), b"s");
        touch(&root.join("locked/sub/deeper"), b"s");
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        let c = Collect::new();
        let s = run(std::slice::from_ref(&root), &opts(2), &c);
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(c.scanned_set(), BTreeSet::from([root.join("ok/file")]));
        assert_eq!(s.errors, 1, "{s:?}");
        let results = c.results.lock().unwrap();
        assert!(results.iter().any(|(p, o)| p == &root.join("locked") && matches!(o, FileOutcome::Error(_))));
    }

    #[test]
    fn cancellation_stops_promptly() {
        let td = fast_tempdir();
        for d in 0..40 {
            for f in 0..50 {
                touch(&td.path().join(format!("d{d}/f{f}")), b"x");
            }
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::new());
        let calls = AtomicUsize::new(0);
        let (c2, p2) = (cancel.clone(), progress.clone());
        let canceller = std::thread::spawn(move || {
            // Progress is readable while the walk runs.
            let t0 = Instant::now();
            while p2.snapshot().files_scanned < 20 && t0.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(2));
            }
            let seen = p2.snapshot().files_scanned;
            c2.store(true, Ordering::SeqCst);
            (Instant::now(), seen)
        });
        let s = walk(
            &[td.path().to_path_buf()],
            &opts(4),
            &cancel,
            &progress,
            &|_p: &Path| {
                calls.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
                FileOutcome::Clean
            },
            &|_, _| {},
        );
        let end = Instant::now();
        let (cancelled_at, seen) = canceller.join().unwrap();
        assert!(seen >= 20);
        assert!(s.cancelled);
        assert!(s.files_scanned < 2000, "{s:?}");
        assert!(calls.load(Ordering::Relaxed) < 2000);
        assert!(end.duration_since(cancelled_at) < Duration::from_millis(500), "took {:?}", end - cancelled_at);
    }

    #[test]
    fn a_panicking_scan_propagates_instead_of_hanging() {
        let (td, _) = sample_tree();
        let r = std::panic::catch_unwind(|| {
            walk(&[td.path().to_path_buf()], &opts(3), &AtomicBool::new(false), &Progress::new(), &|_| panic!("boom"), &|_, _| {})
        });
        assert!(r.is_err());
    }

    #[test]
    fn cancelled_before_start_scans_nothing() {
        let (td, _) = sample_tree();
        let cancel = AtomicBool::new(true);
        let s = walk(&[td.path().to_path_buf()], &opts(2), &cancel, &Progress::new(), &|_| FileOutcome::Clean, &|_, _| {});
        assert!(s.cancelled);
        assert_eq!(s.files_scanned, 0);
    }

    #[test]
    fn symlinked_root_resolved_once_and_overlapping_roots_deduplicated() {
        let (td, files) = sample_tree();
        let real = fs::canonicalize(td.path()).unwrap();
        let other = tempfile::tempdir().unwrap();
        let link = other.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let c = Collect::new();
        let roots = vec![link.clone(), real.join("a"), real.join("a/b/one"), real.clone(), real.join("a/loop")];
        run(&roots, &opts(3), &c);
        // Real paths only, each file once.
        assert_eq!(c.scanned_set(), files);
        assert_eq!(c.scanned.lock().unwrap().len(), files.len());
        // A single file as a root.
        let c = Collect::new();
        let s = run(&[real.join("a/b/one")], &opts(1), &c);
        assert_eq!(c.scanned_set(), BTreeSet::from([real.join("a/b/one")]));
        assert_eq!(s.files_scanned, 1);
        // A FIFO as a root is skipped, not opened.
        let c = Collect::new();
        let s = run(&[real.join("fifo")], &opts(1), &c);
        assert!(c.scanned_set().is_empty());
        assert_eq!(s.skipped, 1);
    }

    const SAMPLE_MOUNTINFO: &[u8] = b"\
22 27 0:21 / /proc rw,relatime shared:5 - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=1k
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw
26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw
27 1 254:0 / / rw,relatime shared:1 master:2 - ext4 /dev/vda rw
28 27 254:1 / /home rw,relatime - ext4 /dev/vdb rw
29 23 0:25 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
30 27 0:26 / /mnt/my\\040share\\011x rw - cifs //srv/share rw
31 27 0:27 / /mnt/nfs4 rw - nfs4 srv:/x rw
32 27 0:28 / /mnt/nfs3 rw - nfs srv:/y rw
33 27 0:29 / /mnt/back\\134slash\\012nl rw - fuse.sshfs u@h:/ rw
34 27 0:30 / /boot/efi rw - vfat /dev/vda1 rw
35 27 0:31 / /snap/core/1 ro - squashfs /dev/loop0 ro
36 27 0:32 / /run rw - tmpfs tmpfs rw
37 36 0:33 / /run/user/1000/doc rw - fuse.portal portal rw
38 27 0:34 / /mnt/blob rw - fuse.blobfuse2 blobfuse2 rw
39 27 0:35 / /home rw - xfs /dev/vdc rw
41 22 0:37 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw
42 23 0:38 / /sys/fs/cgroup/tmp rw - tmpfs tmpfs rw
garbage line
40 27 0:36 / relative rw - ext4 x rw
";

    #[test]
    fn mountinfo_parsing() {
        let t = MountTable::parse(SAMPLE_MOUNTINFO);
        assert_eq!(t.entries().len(), 20);
        let share = t.mount_at(Path::new("/mnt/my share\tx")).unwrap();
        assert_eq!(share.fs_type, "cifs");
        assert_eq!(share.source, "//srv/share");
        assert_eq!(t.mount_at(Path::new("/mnt/back\\slash\nnl")).unwrap().fs_type, "fuse.sshfs");
        assert_eq!(t.mount_of(Path::new("/proc/1/exe")).unwrap().fs_type, "proc");
        assert_eq!(t.mount_of(Path::new("/etc/passwd")).unwrap().fs_type, "ext4");
        assert_eq!(t.mount_of(Path::new("/sys/fs/cgroup/x")).unwrap().fs_type, "cgroup2");
        assert_eq!(t.mount_of(Path::new("/")).unwrap().fs_type, "ext4");
        // A later mount on the same point hides the earlier one.
        assert_eq!(t.mount_of(Path::new("/home/u")).unwrap().fs_type, "xfs");
        // Prefixes are by component: /mnt/nfs3x is on /.
        assert_eq!(t.mount_of(Path::new("/mnt/nfs3x")).unwrap().fs_type, "ext4");
        assert_eq!(unescape_mountinfo(b"a\\040b\\xyz\\0"), b"a b\\xyz\\0");
        assert!(MountTable::parse(b"").is_empty());
    }

    #[test]
    fn filesystem_filter_table() {
        let cases: &[(&str, bool, bool, bool, bool)] = &[
            // type, full, custom (crossing), custom (at root), any
            ("ext4", true, true, true, true),
            ("xfs", true, true, true, true),
            ("tmpfs", true, true, true, true),
            ("nfs", true, true, true, true),
            ("nfs4", false, false, false, true),
            ("fuse", true, true, true, true),
            ("fuse.sshfs", false, true, true, true),
            ("fuse.blobfuse2", false, true, true, true),
            ("cifs", false, true, true, true),
            ("smb3", false, true, true, true),
            ("sysfs", false, false, true, true),
            ("proc", false, false, false, true),
            ("devtmpfs", false, false, false, true),
            ("cgroup", false, false, false, true),
            ("cgroup2", false, false, false, true),
            ("squashfs", false, false, false, true),
            ("fuse.portal", false, false, false, true),
        ];
        for (t, full, custom_cross, custom_root, any) in cases {
            assert_eq!(FsFilter::FullScan.allows(t, false), *full, "{t} full");
            assert_eq!(FsFilter::FullScan.allows(t, true), *full, "{t} full root");
            assert_eq!(FsFilter::Custom.allows(t, false), *custom_cross, "{t} custom");
            assert_eq!(FsFilter::Custom.allows(t, true), *custom_root, "{t} custom root");
            assert_eq!(FsFilter::Any.allows(t, false), *any, "{t} any");
        }
    }

    #[test]
    fn full_scan_roots_skip_pseudo_and_nested() {
        let t = MountTable::parse(SAMPLE_MOUNTINFO);
        let roots = full_scan_roots_from(&t);
        assert_eq!(roots, vec![PathBuf::from("/"), PathBuf::from("/dev/shm")]);
        // The real machine: never /proc or /sys, always absolute.
        for r in full_scan_roots() {
            assert!(r.is_absolute());
            assert!(!r.starts_with("/proc") && !r.starts_with("/sys"), "{r:?}");
        }
    }

    #[test]
    fn walker_skips_filtered_mount_points() {
        let (td, files) = sample_tree();
        let root = fs::canonicalize(td.path()).unwrap();
        touch(&root.join("fakeproc/1/status"), b"p");
        touch(&root.join("share/doc"), b"s");
        touch(&root.join("sysfs/kernel/x"), b"k");
        let entry = |p: PathBuf, t: &str| MountEntry { mount_point: p, fs_type: t.into(), source: "x".into() };
        let table = MountTable::from_entries(vec![
            entry("/".into(), "ext4"),
            entry(root.join("fakeproc"), "proc"),
            entry(root.join("share"), "cifs"),
            entry(root.join("sysfs"), "sysfs"),
        ]);
        let mk = |f| WalkOptions { filesystem_filter: f, mount_table: Some(table.clone()), ..opts(2) };

        let c = Collect::new();
        let s = run(std::slice::from_ref(&root), &mk(FsFilter::FullScan), &c);
        assert_eq!(c.scanned_set(), files, "full scan: no proc, no cifs, no sysfs");
        assert_eq!(s.skipped, 4, "fifo + 3 filtered mounts: {s:?}");

        let c = Collect::new();
        run(std::slice::from_ref(&root), &mk(FsFilter::Custom), &c);
        let mut want = files.clone();
        want.insert(root.join("share/doc"));
        assert_eq!(c.scanned_set(), want, "custom: cifs too, sysfs only when asked");

        // A custom scan of a path on sysfs is allowed; a full scan of it is not.
        let c = Collect::new();
        run(&[root.join("sysfs/kernel")], &mk(FsFilter::Custom), &c);
        assert_eq!(c.scanned_set(), BTreeSet::from([root.join("sysfs/kernel/x")]));
        let c = Collect::new();
        let s = run(&[root.join("sysfs/kernel")], &mk(FsFilter::FullScan), &c);
        assert!(c.scanned_set().is_empty());
        assert_eq!(s.skipped, 1);

        // Any: everything.
        let c = Collect::new();
        run(std::slice::from_ref(&root), &mk(FsFilter::Any), &c);
        assert_eq!(c.scanned_set().len(), files.len() + 3);
    }

    /// Real mounts (needs root and permission to mount; skipped with a message otherwise):
    /// proc and tmpfs mounted inside the tree before the walk, and proc mounted while the walk
    /// runs (the table read at the start does not know it: the walker re-reads it).
    #[test]
    fn real_mounts_are_filtered_by_type() {
        struct Unmount(Vec<PathBuf>);
        impl Drop for Unmount {
            fn drop(&mut self) {
                for p in self.0.iter().rev() {
                    let _ = std::process::Command::new("umount").arg("-l").arg(p).status();
                }
            }
        }
        fn mount(fstype: &str, at: &Path) -> bool {
            std::process::Command::new("mount")
                .args(["-t", fstype, "none"])
                .arg(at)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        }
        let td = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(td.path()).unwrap();
        for d in ["proc_here", "tmpfs_here", "sub/late"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        touch(&root.join("trigger"), b"t");
        touch(&root.join("plain"), b"p");
        let mut guard = Unmount(Vec::new());
        if !nix::unistd::geteuid().is_root() || !mount("proc", &root.join("proc_here")) {
            // Under CI a missing real component fails; elsewhere say clearly what did not run.
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: this test needs root to mount proc and tmpfs");
            eprintln!("NOT RUN: cannot mount here (not root, or no CAP_SYS_ADMIN): real-mount check");
            return;
        }
        guard.0.push(root.join("proc_here"));
        assert!(mount("tmpfs", &root.join("tmpfs_here")));
        guard.0.push(root.join("tmpfs_here"));
        touch(&root.join("tmpfs_here/inside"), b"i");

        let late = root.join("sub/late");
        let mounted_late = AtomicBool::new(false);
        let c = Collect::new();
        let s = walk(
            std::slice::from_ref(&root),
            // One thread: the root's own files are scanned before `sub` is read.
            &WalkOptions { threads: 1, ..WalkOptions::default() },
            &AtomicBool::new(false),
            &Progress::new(),
            &|p: &Path| {
                if p.ends_with("trigger") && mount("proc", &late) {
                    mounted_late.store(true, Ordering::SeqCst);
                }
                c.scanned.lock().unwrap().push(p.to_path_buf());
                FileOutcome::Clean
            },
            &|p: &Path, o: &FileOutcome| c.results.lock().unwrap().push((p.to_path_buf(), o.clone())),
        );
        if mounted_late.load(Ordering::SeqCst) {
            guard.0.push(late.clone());
        }
        assert!(mounted_late.load(Ordering::SeqCst));
        assert_eq!(
            c.scanned_set(),
            BTreeSet::from([root.join("trigger"), root.join("plain"), root.join("tmpfs_here/inside")])
        );
        let results = c.results.lock().unwrap();
        for p in [root.join("proc_here"), late] {
            assert!(
                results.iter().any(|(q, o)| q == &p && matches!(o, FileOutcome::Skipped(w) if w.contains("proc"))),
                "{p:?} not reported as skipped: {results:?}"
            );
        }
        assert_eq!(s.skipped, 2);
        drop(guard);
    }

    #[test]
    fn real_proc_is_never_walked_by_full_scan_filter() {
        // Walking / with FullScan would take long; walking /proc itself must do nothing.
        let c = Collect::new();
        let s = run(&[PathBuf::from("/proc/self")], &WalkOptions { threads: 2, ..WalkOptions::default() }, &c);
        assert!(c.scanned_set().is_empty());
        assert_eq!(s.dirs, 0);
    }

    #[test]
    fn quick_scan_roots_are_real_places() {
        let roots = quick_scan_roots();
        for r in &roots {
            assert!(r.is_absolute(), "{r:?}");
            assert!(fs::symlink_metadata(r).is_ok(), "{r:?}");
        }
        if Path::new("/tmp").exists() {
            assert!(roots.contains(&PathBuf::from("/tmp")));
        }
        // This test binary is a running process.
        let me = fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
        assert!(roots.contains(&me), "own executable {me:?} missing");
        assert!(roots.iter().all(|r| !r.as_os_str().as_bytes().ends_with(b" (deleted)")));
    }
}
