//! Recursive archive walker with bomb limits.
//!
//! STUB: contract only; zip, tar, gzip, bzip2, xz, 7z and cpio are being implemented here.

#![forbid(unsafe_code)]

/// Limits that bound the work one archive can cause. Passing one is an `archive_bomb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Nesting depth (an archive inside an archive is depth 2).
    pub max_depth: u32,
    /// Total bytes unpacked from one top-level file, all nesting levels together.
    pub max_total_bytes: u64,
    /// Unpacked size divided by packed size, per archive.
    pub max_ratio: u64,
    /// Entries in one top-level file, all nesting levels together.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 10, max_total_bytes: 1 << 30, max_ratio: 250, max_entries: 100_000 }
    }
}
