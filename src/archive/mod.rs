//! Recursive archive walker with bomb limits.
//!
//! [`walk`] takes the content of one file, recognises its archive format from magic bytes (never
//! from the file name), and hands the content of every entry to a visitor, descending into
//! nested archives. Formats: zip (jar, apk, docx, ... : anything zip-shaped; members stored,
//! deflate, deflate64, bzip2, lzma, xz), tar (ustar, GNU, pax, and old v7 headers recognised
//! by their checksum), gzip, bzip2, xz, 7z (copy, LZMA, LZMA2, bzip2, BCJ filters, delta) and
//! cpio (newc, crc, odc and old binary, either byte order).
//!
//! PPMd members (zip method 98, 7z PPMd) are deliberately not decoded: the PPMd decoder zeroes
//! a model of the size the header asks for (up to 256 MiB) at start and at every model
//! restart, so a few hundred bytes of input cost seconds (found by fuzzing). Such members, like
//! implode (zip method 6), encrypted or zstd ones, count as errors; the container is still
//! scanned as a whole.
//!
//! A compressed stream (gzip, bzip2, xz; concatenated members or streams are read as one, as
//! the command-line tools do) is an archive with one entry: its decompressed content,
//! named after the gzip header's original name or after the stream's own name without its
//! suffix (`x.tar.gz` -> `x.tar`, `x.tgz` -> `x.tar`, `y.gz` -> `y`, otherwise `data`). So a
//! `.tar.gz` is a gzip archive containing a tar archive, and the path of a member is
//! `x.tar.gz/x.tar/member`.
//!
//! A member that is itself an archive is walked before it is visited, so the first detection
//! names the innermost member (`a.zip/b.tar/eicar.com`, not `a.zip/b.tar`).
//!
//! # Paths
//! Every visited path starts with the `name` given to [`walk`] (omitted when that is empty) and
//! adds one `/`-separated component per level: `outer.zip/dir/inner.tar.gz/inner.tar/file`.
//! Entry names come from hostile input: they are decoded lossily as UTF-8, leading `/` and `./`
//! are dropped, and control characters (newline, escape, ...) are shown escaped (`\n`,
//! `\u{1b}`), so a path is always safe to print on one line.
//!
//! # Limits ([`Limits`]), all checked while decompressing
//! - depth: the top-level archive is depth 1; an archive inside it is depth 2, and so on;
//!   trying to open an archive deeper than `max_depth` trips the limit.
//! - total bytes: every byte produced by a decompressor or copied out of a member counts,
//!   over all levels. Reads go through `Read::take`, so no more than `max_total_bytes + 1`
//!   bytes are ever produced; a member whose declared size alone passes the limit trips it
//!   before anything is decompressed. Members of tar and cpio archives are scanned in place
//!   (slices of their container), cost no copy and do not count.
//! - ratio: unpacked / packed, per zip member, per compressed stream, and over a whole zip or
//!   7z archive (7z packs members together in solid blocks; zip members may overlap, the
//!   trick of non-recursive zip bombs). It only trips once the unpacked
//!   size passes [`RATIO_MIN_UNPACKED`] (1 MiB), so small, very compressible files do not.
//!   The reported ratio is a lower bound: decompression stops as soon as the limit is passed.
//! - entries: every header seen (files, directories, links, ...) over all levels, and every
//!   member of a concatenated gzip/bzip2/xz file (each costs a decoder set-up); a zip or 7z
//!   whose directory alone announces too many entries trips it at once.
//!
//! # Hostile input
//! Corrupt, truncated, encrypted or unsupported archives (or members) end the walk of that
//! archive (or skip that member) and are counted in [`WalkStats::errors`]; the content read
//! before the error is still visited, so a truncated archive is scanned as far as it goes.
//! Nothing here panics, loops without consuming input or allocates from a header's length
//! without bounds: decoder memory is capped ([`DECODER_MEMORY_LIMIT`]), buffers only grow with
//! data really produced, and the cpio parser checks every length against the input.
//!
//! Known cost not bounded by a limit: CPU time per byte of input can be high for inputs made of
//! many tiny compressed blocks (an xz stream of one-byte blocks sets a decoder up per block:
//! about 20 µs each, so roughly a second per 1.5 MB of such input). The file-size cap of the
//! caller bounds it.

#![forbid(unsafe_code)]

use std::fmt;
use std::io::Read;
use std::ops::ControlFlow;

mod cpio;
mod formats;
#[cfg(test)]
mod tests;

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

/// The compression ratio limit only applies to members (or streams) that unpack to more than
/// this many bytes.
pub const RATIO_MIN_UNPACKED: u64 = 1 << 20;

/// Memory a decoder may use for its dictionary or model (xz, 7z), per decoder: twice what
/// `xz -9` and `7z -mx9` need (64 MiB dictionaries). Archives made with larger dictionaries
/// are not unpacked (counted as errors). A 7z decoder stays alive while its members are
/// walked, so nested 7z archives may hold one each.
pub const DECODER_MEMORY_LIMIT: u64 = 128 << 20;

/// An archive format, recognised from content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Zip,
    Tar,
    Gzip,
    Bzip2,
    Xz,
    SevenZ,
    Cpio,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::Tar => "tar",
            Format::Gzip => "gzip",
            Format::Bzip2 => "bzip2",
            Format::Xz => "xz",
            Format::SevenZ => "7z",
            Format::Cpio => "cpio",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Recognises an archive from its first bytes (at most 512 are looked at). `None` for
/// anything else; this is the only work done on content that is not an archive.
pub fn detect(d: &[u8]) -> Option<Format> {
    if d.len() >= 4 && d[0] == b'P' && d[1] == b'K' && matches!((d[2], d[3]), (3, 4) | (5, 6) | (7, 8)) {
        return Some(Format::Zip);
    }
    if d.len() >= 3 && d[0] == 0x1f && d[1] == 0x8b && d[2] == 8 {
        return Some(Format::Gzip);
    }
    if d.len() >= 10
        && d.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&d[3])
        && (d[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59] || d[4..10] == [0x17, 0x72, 0x45, 0x38, 0x50, 0x90])
    {
        return Some(Format::Bzip2);
    }
    if d.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Some(Format::Xz);
    }
    if d.starts_with(&[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c]) {
        return Some(Format::SevenZ);
    }
    if cpio::detect(d) {
        return Some(Format::Cpio);
    }
    if formats::tar_detect(d) {
        return Some(Format::Tar);
    }
    None
}

/// Which limit was passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    Depth,
    TotalBytes,
    Ratio,
    Entries,
}

impl LimitKind {
    /// The threat name reported for this limit: `ArchiveBomb.Depth`, `ArchiveBomb.TotalSize`,
    /// `ArchiveBomb.CompressionRatio`, `ArchiveBomb.EntryCount`.
    pub fn threat_name(self) -> &'static str {
        match self {
            LimitKind::Depth => "ArchiveBomb.Depth",
            LimitKind::TotalBytes => "ArchiveBomb.TotalSize",
            LimitKind::Ratio => "ArchiveBomb.CompressionRatio",
            LimitKind::Entries => "ArchiveBomb.EntryCount",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            LimitKind::Depth => "nesting depth",
            LimitKind::TotalBytes => "total unpacked bytes",
            LimitKind::Ratio => "compression ratio",
            LimitKind::Entries => "entry count",
        }
    }
}

/// A limit was passed: the walk stopped there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    pub kind: LimitKind,
    /// The limit in force.
    pub limit: u64,
    /// The value that passed it (for the ratio and the total: at least this much).
    pub actual: u64,
    /// Where it tripped: the path of the archive or member being unpacked (same form as the
    /// visitor's paths).
    pub path: String,
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} limit {} passed ({}) at {}", self.kind.describe(), self.limit, self.actual, self.path)
    }
}

impl std::error::Error for LimitExceeded {}

/// What a walk did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Archives opened (the top level included).
    pub archives: u64,
    /// Entries seen, all levels.
    pub entries: u64,
    /// Entries handed to the visitor.
    pub visited: u64,
    /// Bytes produced by decompression or copied out of members.
    pub unpacked_bytes: u64,
    /// Deepest archive opened (1 = the top level).
    pub max_depth: u32,
    /// Archives or members that were corrupt, truncated, encrypted or unsupported.
    pub errors: u64,
    /// The first of those errors, for logs.
    pub first_error: Option<String>,
    /// The visitor asked to stop.
    pub stopped: bool,
}

/// Walks `data` if it is an archive (does nothing otherwise), handing every member's content
/// and path to `visit`, recursively. A member that is itself an archive is walked first and
/// visited after its own members (so the first detection names the innermost member); `data`
/// itself is not visited. `visit` returning `Break` ends the walk (`stopped`).
/// `name` is the first component of the paths (the file's name), may be empty.
pub fn walk(
    data: &[u8],
    name: &str,
    limits: &Limits,
    visit: &mut dyn FnMut(&str, &[u8]) -> ControlFlow<()>,
) -> Result<WalkStats, LimitExceeded> {
    let mut ctx = Ctx { limits, visit, stats: WalkStats::default(), bufs: Vec::new() };
    let Some(format) = detect(data) else { return Ok(ctx.stats) };
    let result = if limits.max_depth == 0 {
        Err(Stop::Limit(LimitExceeded { kind: LimitKind::Depth, limit: 0, actual: 1, path: name.to_string() }))
    } else {
        walk_archive(&mut ctx, format, data, name, 1)
    };
    match result {
        Ok(()) => Ok(ctx.stats),
        Err(Stop::Break) => {
            ctx.stats.stopped = true;
            Ok(ctx.stats)
        }
        Err(Stop::Limit(l)) => Err(l),
    }
}

/// Why a walk ends early.
pub(crate) enum Stop {
    Limit(LimitExceeded),
    Break,
}

pub(crate) type Flow = Result<(), Stop>;

pub(crate) struct Ctx<'a> {
    pub(crate) limits: &'a Limits,
    visit: &'a mut dyn FnMut(&str, &[u8]) -> ControlFlow<()>,
    pub(crate) stats: WalkStats,
    /// One reusable buffer per depth.
    bufs: Vec<Vec<u8>>,
}

/// The packed side of a ratio: `packed` input bytes have already produced `already` bytes.
#[derive(Clone, Copy)]
pub(crate) struct Ratio {
    pub(crate) packed: u64,
    pub(crate) already: u64,
}

impl<'a> Ctx<'a> {
    pub(crate) fn take_buf(&mut self, depth: u32) -> Vec<u8> {
        let i = depth as usize;
        if self.bufs.len() <= i {
            self.bufs.resize_with(i + 1, Vec::new);
        }
        std::mem::take(&mut self.bufs[i])
    }

    pub(crate) fn put_buf(&mut self, depth: u32, mut buf: Vec<u8>) {
        buf.clear();
        if let Some(slot) = self.bufs.get_mut(depth as usize) {
            *slot = buf;
        }
    }

    pub(crate) fn error(&mut self, path: &str, what: impl fmt::Display) {
        self.stats.errors += 1;
        if self.stats.first_error.is_none() {
            self.stats.first_error = Some(format!("{path}: {what}"));
        }
    }

    /// Counts `n` entries (headers) at once.
    pub(crate) fn count_entries(&mut self, n: u64, path: &str) -> Flow {
        self.stats.entries = self.stats.entries.saturating_add(n);
        if self.stats.entries > self.limits.max_entries {
            return Err(Stop::Limit(LimitExceeded {
                kind: LimitKind::Entries,
                limit: self.limits.max_entries,
                actual: self.stats.entries,
                path: path.to_string(),
            }));
        }
        Ok(())
    }

    /// Checks a member's declared size before unpacking it: one that alone passes the total or
    /// a ratio limit trips it without any decompression.
    pub(crate) fn check_declared(&self, declared: u64, ratios: &[Ratio], path: &str) -> Flow {
        let total = self.stats.unpacked_bytes.saturating_add(declared);
        if total > self.limits.max_total_bytes {
            return Err(Stop::Limit(LimitExceeded {
                kind: LimitKind::TotalBytes,
                limit: self.limits.max_total_bytes,
                actual: total,
                path: path.to_string(),
            }));
        }
        for r in ratios {
            let unpacked = r.already.saturating_add(declared);
            if unpacked > ratio_cap(self.limits, r.packed) {
                return Err(self.ratio_exceeded(r.packed, unpacked, path));
            }
        }
        Ok(())
    }

    fn ratio_exceeded(&self, packed: u64, unpacked: u64, path: &str) -> Stop {
        Stop::Limit(LimitExceeded {
            kind: LimitKind::Ratio,
            limit: self.limits.max_ratio,
            // Rounded up: a ratio just past the limit shows as past it.
            actual: unpacked.div_ceil(packed.max(1)),
            path: path.to_string(),
        })
    }

    /// Reads a member or stream into `out` (cleared first), never producing more than the
    /// limits allow: the total, and each of `ratios` (the member's own, its archive's).
    /// `Ok(Err(e))`: a read error after `out.len()` good bytes (corrupt or truncated input);
    /// the caller may still scan what was read.
    pub(crate) fn read_member(
        &mut self,
        reader: &mut dyn Read,
        size_hint: Option<u64>,
        ratios: &[Ratio],
        path: &str,
        out: &mut Vec<u8>,
    ) -> Result<Result<(), std::io::Error>, Stop> {
        out.clear();
        let remaining = self.limits.max_total_bytes.saturating_sub(self.stats.unpacked_bytes);
        // The tightest ratio, as the number of bytes it still allows.
        let tightest = ratios
            .iter()
            .map(|r| (ratio_cap(self.limits, r.packed).saturating_sub(r.already), *r))
            .min_by_key(|(allowed, _)| *allowed);
        let cap = tightest.map_or(remaining, |(a, _)| a.min(remaining));
        if let Some(hint) = size_hint {
            // Capacity from a header is only a hint, and a bounded one.
            let want = hint.min(cap).min(16 << 20) as usize;
            let _ = out.try_reserve(want);
        }
        let res = reader.take(cap.saturating_add(1)).read_to_end(out);
        let n = out.len() as u64;
        self.stats.unpacked_bytes = self.stats.unpacked_bytes.saturating_add(n);
        if n > cap {
            if let Some((allowed, r)) = tightest {
                if allowed <= remaining {
                    return Err(self.ratio_exceeded(r.packed, r.already.saturating_add(n), path));
                }
            }
            return Err(Stop::Limit(LimitExceeded {
                kind: LimitKind::TotalBytes,
                limit: self.limits.max_total_bytes,
                actual: self.stats.unpacked_bytes,
                path: path.to_string(),
            }));
        }
        Ok(res.map(|_| ()))
    }

    /// Handles one member: if it is an archive, descends into it first; then hands the member's
    /// own content to the visitor (children before their container, so that the first
    /// detection names the innermost member). `depth` is the depth of the archive that holds
    /// the member.
    pub(crate) fn entry(&mut self, path: &str, content: &[u8], depth: u32) -> Flow {
        if let Some(format) = detect(content) {
            let inner = depth.saturating_add(1);
            if inner > self.limits.max_depth {
                return Err(Stop::Limit(LimitExceeded {
                    kind: LimitKind::Depth,
                    limit: u64::from(self.limits.max_depth),
                    actual: u64::from(inner),
                    path: path.to_string(),
                }));
            }
            walk_archive(self, format, content, path, inner)?;
        }
        self.stats.visited += 1;
        if (self.visit)(path, content).is_break() {
            return Err(Stop::Break);
        }
        Ok(())
    }
}

fn ratio_cap(limits: &Limits, packed: u64) -> u64 {
    packed.max(1).saturating_mul(limits.max_ratio).max(RATIO_MIN_UNPACKED)
}

fn walk_archive(ctx: &mut Ctx<'_>, format: Format, data: &[u8], path: &str, depth: u32) -> Flow {
    ctx.stats.archives += 1;
    ctx.stats.max_depth = ctx.stats.max_depth.max(depth);
    match format {
        Format::Zip => formats::walk_zip(ctx, data, path, depth),
        Format::Tar => formats::walk_tar(ctx, data, path, depth),
        Format::Gzip | Format::Bzip2 | Format::Xz => formats::walk_stream(ctx, format, data, path, depth),
        Format::SevenZ => formats::walk_7z(ctx, data, path, depth),
        Format::Cpio => cpio::walk(ctx, data, path, depth),
    }
}

/// `prefix/name`, with `name` made safe to print (see the module documentation).
pub fn join_path(prefix: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    let mut rest: &str = &name;
    loop {
        if let Some(r) = rest.strip_prefix('/') {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else {
            break;
        }
    }
    let rest = rest.trim_end_matches('/');
    let mut out = String::with_capacity(prefix.len() + 1 + rest.len());
    out.push_str(prefix);
    if !prefix.is_empty() {
        out.push('/');
    }
    if rest.is_empty() {
        out.push_str("[unnamed]");
    }
    for c in rest.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The name of a compressed stream's content when the stream does not carry one.
pub(crate) fn stream_content_name(stream_path: &str) -> String {
    let last = stream_path.rsplit('/').next().unwrap_or("");
    let lower = last.to_ascii_lowercase();
    for (suffix, repl) in [
        (".tgz", ".tar"),
        (".taz", ".tar"),
        (".tbz2", ".tar"),
        (".tbz", ".tar"),
        (".tb2", ".tar"),
        (".txz", ".tar"),
        (".gz", ""),
        (".gzip", ""),
        (".z", ""),
        (".bz2", ""),
        (".bz", ""),
        (".xz", ""),
    ] {
        if lower.len() > suffix.len() && lower.ends_with(suffix) && last.is_char_boundary(last.len() - suffix.len()) {
            return format!("{}{}", &last[..last.len() - suffix.len()], repl);
        }
    }
    "data".to_string()
}
