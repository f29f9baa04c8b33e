//! Scanning one file: read it, run the engine, descend into archives.
//!
//! STUB: contract only.

#![forbid(unsafe_code)]

use std::path::Path;

use crate::archive::Limits;
use crate::engine::{Definitions, Detection};

/// How one file is scanned.
#[derive(Debug, Clone, Default)]
pub struct FileScanOptions {
    /// Descend into archives (`scanArchives`).
    pub scan_archives: bool,
    pub limits: Limits,
}

/// The result for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    Clean,
    /// `inner` is the path inside an archive (`a.zip/b.tar/c`) when the detection is in one.
    Detected { detection: Detection, inner: Option<String> },
    /// Not scanned: special file, vanished, ... (reason for logs).
    Skipped(String),
    /// Could not be read.
    Error(String),
}

/// Scans the regular file at `path` (never follows a symlink, skips special files).
pub fn scan_file(path: &Path, defs: &Definitions, opts: &FileScanOptions) -> FileOutcome {
    let _ = opts;
    match std::fs::read(path) {
        Ok(data) => match defs.scan_bytes(&data) {
            Some(detection) => FileOutcome::Detected { detection, inner: None },
            None => FileOutcome::Clean,
        },
        Err(e) => FileOutcome::Error(e.to_string()),
    }
}
