//! TEMPORARY sequential walker; replaced by the parallel walker being written.
#![forbid(unsafe_code)]
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::exclusions::{ExclusionMatcher, Scope};
use crate::scan::file::FileOutcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsFilter { FullScan, Custom, Any }

#[derive(Debug, Clone)]
pub struct WalkOptions {
    pub threads: usize,
    pub exclusions: Option<ExclusionMatcher>,
    pub filesystem_filter: FsFilter,
    pub skip_paths: Vec<PathBuf>,
}

#[derive(Debug, Default)]
pub struct Progress { pub files_scanned: AtomicU64, pub errors: AtomicU64 }

#[derive(Debug, Default, Clone)]
pub struct WalkSummary { pub files_scanned: u64, pub errors: u64, pub cancelled: bool }

pub fn quick_scan_roots() -> Vec<PathBuf> { vec![PathBuf::from("/tmp")] }
pub fn full_scan_roots() -> Vec<PathBuf> { vec![PathBuf::from("/")] }

pub fn walk(roots: &[PathBuf], opts: &WalkOptions, cancel: &AtomicBool, progress: &Progress,
    scan: &(dyn Fn(&Path) -> FileOutcome + Sync), on_result: &(dyn Fn(&Path, &FileOutcome) + Sync)) -> WalkSummary {
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(p) = stack.pop() {
        if cancel.load(Ordering::Relaxed) { return WalkSummary { files_scanned: progress.files_scanned.load(Ordering::Relaxed), errors: 0, cancelled: true }; }
        if opts.skip_paths.iter().any(|s| p.starts_with(s)) { continue; }
        let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
        if let Some(ex) = &opts.exclusions { if ex.is_path_excluded(&p, md.is_dir(), Scope::Epp) { continue; } }
        if md.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) { for e in rd.flatten() { stack.push(e.path()); } }
        } else if md.is_file() {
            let o = scan(&p);
            progress.files_scanned.fetch_add(1, Ordering::Relaxed);
            on_result(&p, &o);
        }
    }
    WalkSummary { files_scanned: progress.files_scanned.load(Ordering::Relaxed), errors: 0, cancelled: false }
}
