//! Scanning one file: read it, run the engine, descend into archives.
//!
//! [`scan_file`] is the one path every caller takes for one file:
//! 1. `lstat` the path: anything but a regular file (symlink, FIFO, socket, character or block
//!    device, directory) is `Skipped` without being opened, because opening a device can have
//!    side effects (a watchdog, a tape) and a FIFO can block.
//! 2. open it with `O_NOFOLLOW | O_NONBLOCK | O_NOCTTY` (and `O_NOATIME` where permitted, so
//!    scanning does not change access times), then `fstat` the opened descriptor and skip it
//!    unless it is still a regular file (the path may have been swapped in between).
//! 3. read at most [`MAX_SCAN_BYTES`] (512 MiB): a larger file is scanned over its first
//!    512 MiB only (an archive whose directory lies past that point is walked as far as its
//!    local headers go).
//! 4. run the engine on the content; then, with `scan_archives`, if the content starts like an
//!    archive (magic bytes only: nothing else is done for other files), walk it with the
//!    limits and run the engine on every member. The first detection wins and ends the walk.
//!
//! A passed archive limit is a detection of type `archive_bomb`, named after the limit:
//! `ArchiveBomb.Depth`, `ArchiveBomb.TotalSize`, `ArchiveBomb.CompressionRatio` or
//! `ArchiveBomb.EntryCount`, with `inner` the place inside the file where it tripped.
//!
//! `inner` is the path inside the scanned file, without the file's own name: for
//! `/tmp/a.zip` holding `b.tar.gz` holding `c`, it is `b.tar.gz/b.tar/c` (a compressed stream's
//! content is a level of its own, see [`crate::archive`]). Entry names are made printable.
//!
//! A file that disappears before it is opened is `Skipped("vanished")`; permission and I/O
//! errors are `Error`. Nothing here panics on any input.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::archive::{self, Limits};
use crate::engine::{Definitions, Detection, ThreatType};

/// How much of one file is scanned: larger files are scanned over their first part.
pub const MAX_SCAN_BYTES: u64 = 512 << 20;

/// A thread's read buffer is kept between files up to this capacity.
const KEEP_BUFFER_BYTES: usize = 16 << 20;

thread_local! {
    static READ_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How one file is scanned.
#[derive(Debug, Clone, Default)]
pub struct FileScanOptions {
    /// Descend into archives (`scanArchives`).
    pub scan_archives: bool,
    pub limits: Limits,
    /// Set by `mdatp scan cancel`: checked between read chunks and archive members, so a
    /// cancel does not wait for a big file. A cancelled file is `Skipped("cancelled")`.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl FileScanOptions {
    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }
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
///
/// `Skipped` reasons: `vanished`, `symbolic link`, `directory`, `fifo`, `socket`,
/// `character device`, `block device`, `not a regular file`.
pub fn scan_file(path: &Path, defs: &Definitions, opts: &FileScanOptions) -> FileOutcome {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            if let Some(reason) = not_regular(&meta) {
                return FileOutcome::Skipped(reason);
            }
        }
        Err(e) => return io_outcome(&e, "stat"),
    }
    let file = match open(path) {
        Ok(f) => f,
        Err(e) => return io_outcome(&e, "open"),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return io_outcome(&e, "fstat"),
    };
    if let Some(reason) = not_regular(&meta) {
        return FileOutcome::Skipped(reason);
    }

    let mut buf = READ_BUFFER.with(|b| b.take());
    buf.clear();
    let outcome = match read_bounded(&file, meta.len(), MAX_SCAN_BYTES, &mut buf, opts) {
        Ok(true) => scan_content(&buf, path, defs, opts),
        Ok(false) => FileOutcome::Skipped("cancelled".into()),
        Err(e) => io_outcome(&e, "read"),
    };
    drop(file);
    if buf.capacity() <= KEEP_BUFFER_BYTES {
        buf.clear();
        READ_BUFFER.with(|b| *b.borrow_mut() = buf);
    }
    outcome
}

/// Runs the engine on a file's content and, when asked, on the members of the archive it is.
/// `path` only names things (the archive paths start after the file's name).
pub fn scan_content(data: &[u8], path: &Path, defs: &Definitions, opts: &FileScanOptions) -> FileOutcome {
    if !opts.scan_archives || archive::detect(data).is_none() {
        return match defs.scan_bytes(data) {
            Some(detection) => FileOutcome::Detected { detection, inner: None },
            None => FileOutcome::Clean,
        };
    }
    // An archive: members first (so a detection names the member), then the archive itself.
    let name = archive::join_path("", path.file_name().map(|n| n.as_bytes()).unwrap_or(b"file"));
    let inner_of = |p: &str| -> Option<String> {
        let rel = p.strip_prefix(name.as_str()).unwrap_or(p);
        let rel = rel.strip_prefix('/').unwrap_or(rel);
        (!rel.is_empty()).then(|| rel.to_string())
    };
    let mut found: Option<(Detection, String)> = None;
    let mut visit = |p: &str, content: &[u8]| {
        if opts.cancelled() {
            return ControlFlow::Break(());
        }
        if let Some(d) = defs.scan_bytes(content) {
            found = Some((d, p.to_string()));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    };
    let walked = archive::walk(data, &name, &opts.limits, &mut visit);
    if opts.cancelled() {
        return FileOutcome::Skipped("cancelled".into());
    }
    if let Some((detection, p)) = found {
        return FileOutcome::Detected { detection, inner: inner_of(&p) };
    }
    // A signature on the whole file outranks an archive limit.
    if let Some(detection) = defs.scan_bytes(data) {
        return FileOutcome::Detected { detection, inner: None };
    }
    match walked {
        Ok(_stats) => FileOutcome::Clean,
        Err(limit) => FileOutcome::Detected {
            detection: Detection { threat_name: limit.kind.threat_name().to_string(), threat_type: ThreatType::ArchiveBomb },
            inner: inner_of(&limit.path),
        },
    }
}

fn open(path: &Path) -> io::Result<File> {
    let base = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    // O_NOATIME is only allowed to the file's owner or with CAP_FOWNER.
    match OpenOptions::new().read(true).custom_flags(base | libc::O_NOATIME).open(path) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            OpenOptions::new().read(true).custom_flags(base).open(path)
        }
        other => other,
    }
}

/// Reads at most `max` bytes of `file`; `size` (from fstat) is only a capacity hint, the file
/// may grow or shrink while it is read.
/// Reads up to `max` bytes in chunks, checking for a cancel between them. `Ok(false)`: cancelled.
fn read_bounded(file: &File, size: u64, max: u64, buf: &mut Vec<u8>, opts: &FileScanOptions) -> io::Result<bool> {
    const CHUNK: u64 = 4 << 20;
    let _ = buf.try_reserve(size.min(max) as usize);
    let mut r = file.take(max);
    loop {
        if opts.cancelled() {
            return Ok(false);
        }
        if (&mut r).take(CHUNK).read_to_end(buf)? == 0 {
            return Ok(true);
        }
    }
}

fn not_regular(meta: &Metadata) -> Option<String> {
    let t = meta.file_type();
    let what = if t.is_file() {
        return None;
    } else if t.is_symlink() {
        "symbolic link"
    } else if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "not a regular file"
    };
    Some(what.to_string())
}

fn io_outcome(e: &io::Error, op: &str) -> FileOutcome {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => FileOutcome::Skipped("vanished".into()),
        // O_NOFOLLOW on a path that became a symlink after the lstat.
        Some(libc::ELOOP) => FileOutcome::Skipped("symbolic link".into()),
        // A socket or a device node without a driver, swapped in after the lstat.
        Some(libc::ENXIO) | Some(libc::ENODEV) => FileOutcome::Skipped("not a regular file".into()),
        _ => FileOutcome::Error(format!("{op}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::io::{Cursor, Write};
    use std::path::PathBuf;

    use super::*;

    const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

    fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, *data).unwrap();
        }
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&b.into_inner().unwrap()).unwrap();
        e.finish().unwrap()
    }

    fn opts(scan_archives: bool) -> FileScanOptions {
        FileScanOptions { scan_archives, limits: Limits::default(), cancel: None }
    }

    fn scan(path: &Path, archives: bool) -> FileOutcome {
        scan_file(path, &Definitions::builtin(), &opts(archives))
    }

    fn write(dir: &Path, name: &OsStr, data: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    /// The engine's own EICAR detection (whatever it names it), found at `inner`.
    fn eicar_at(inner: Option<&str>) -> FileOutcome {
        let detection = Definitions::builtin().scan_bytes(EICAR).expect("the engine detects EICAR");
        assert_ne!(detection.threat_type, ThreatType::ArchiveBomb);
        FileOutcome::Detected { detection, inner: inner.map(str::to_string) }
    }

    #[test]
    fn plain_files() {
        let dir = tempfile::tempdir().unwrap();
        let e = write(dir.path(), OsStr::new("eicar.com"), EICAR);
        assert_eq!(scan(&e, true), eicar_at(None));
        assert_eq!(scan(&e, false), eicar_at(None));
        let c = write(dir.path(), OsStr::new("clean.txt"), b"hello");
        assert_eq!(scan(&c, true), FileOutcome::Clean);
        let empty = write(dir.path(), OsStr::new("empty"), b"");
        assert_eq!(scan(&empty, true), FileOutcome::Clean);
    }

    #[test]
    fn archives_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let z = zip(&[("docs/readme", b"x"), ("docs/inner.tar.gz", &tar_gz(&[("bin/eicar.com", EICAR)]))]);
        let p = write(dir.path(), OsStr::new("outer.zip"), &z);
        assert_eq!(scan(&p, true), eicar_at(Some("docs/inner.tar.gz/inner.tar/bin/eicar.com")));
        assert_eq!(scan(&p, false), FileOutcome::Clean);
        let clean = write(dir.path(), OsStr::new("clean.zip"), &zip(&[("a", b"b")]));
        assert_eq!(scan(&clean, true), FileOutcome::Clean);
    }

    #[test]
    fn bombs_are_archive_bomb_detections() {
        let dir = tempfile::tempdir().unwrap();
        let z = zip(&[("ok.txt", b"fine"), ("zeros.bin", &vec![0u8; 4 << 20])]);
        let p = write(dir.path(), OsStr::new("bomb.zip"), &z);
        match scan(&p, true) {
            FileOutcome::Detected { detection, inner } => {
                assert_eq!(detection.threat_type, ThreatType::ArchiveBomb);
                assert_eq!(detection.threat_name, "ArchiveBomb.CompressionRatio");
                assert_eq!(inner.as_deref(), Some("zeros.bin"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(scan(&p, false), FileOutcome::Clean);
        // A detection met before the limit wins.
        let z = zip(&[("eicar", EICAR), ("zeros.bin", &vec![0u8; 4 << 20])]);
        let p = write(dir.path(), OsStr::new("both.zip"), &z);
        assert_eq!(scan(&p, true), eicar_at(Some("eicar")));
        // Entry count, at the top level (inner is then None).
        let few = FileScanOptions { scan_archives: true, limits: Limits { max_entries: 1, ..Limits::default() }, cancel: None };
        let p = write(dir.path(), OsStr::new("two.zip"), &zip(&[("a", b"a"), ("b", b"b")]));
        match scan_file(&p, &Definitions::builtin(), &few) {
            FileOutcome::Detected { detection, inner } => {
                assert_eq!(detection.threat_name, "ArchiveBomb.EntryCount");
                assert_eq!(inner, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn special_files_are_skipped_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(scan(&fifo, true), FileOutcome::Skipped("fifo".into()));
        let target = write(dir.path(), OsStr::new("eicar"), EICAR);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(scan(&link, true), FileOutcome::Skipped("symbolic link".into()));
        let loop_link = dir.path().join("loop");
        std::os::unix::fs::symlink(&loop_link, &loop_link).unwrap();
        assert_eq!(scan(&loop_link, true), FileOutcome::Skipped("symbolic link".into()));
        assert_eq!(scan(Path::new("/dev/null"), true), FileOutcome::Skipped("character device".into()));
        assert_eq!(scan(dir.path(), true), FileOutcome::Skipped("directory".into()));
        let sock = dir.path().join("sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_eq!(scan(&sock, true), FileOutcome::Skipped("socket".into()));
        // The symlink check is on the last component only; O_NOFOLLOW still refuses it at open.
        assert_eq!(io_outcome(&io::Error::from_raw_os_error(libc::ELOOP), "open"), FileOutcome::Skipped("symbolic link".into()));
    }

    #[test]
    fn vanished_and_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(scan(&dir.path().join("gone"), true), FileOutcome::Skipped("vanished".into()));
        let f = write(dir.path(), OsStr::new("f"), b"x");
        assert_eq!(scan(&f.join("below-a-file"), true), FileOutcome::Skipped("vanished".into()));
        match io_outcome(&io::Error::from_raw_os_error(libc::EACCES), "open") {
            FileOutcome::Error(m) => assert!(m.starts_with("open: "), "{m}"),
            other => panic!("{other:?}"),
        }
        if !nix::unistd::geteuid().is_root() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o000)).unwrap();
            assert!(matches!(scan(&f, true), FileOutcome::Error(_)));
        }
    }

    #[test]
    fn reads_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sparse");
        let f = File::create(&p).unwrap();
        f.set_len(1 << 30).unwrap(); // sparse: no disk used
        let f = File::open(&p).unwrap();
        let mut buf = Vec::new();
        assert!(read_bounded(&f, 1 << 30, 4096, &mut buf, &FileScanOptions::default()).unwrap());
        assert_eq!(buf.len(), 4096);
        // A file smaller than its (stale) size hint is read to its end.
        let small = write(dir.path(), OsStr::new("small"), b"abc");
        let mut buf = Vec::new();
        assert!(read_bounded(&File::open(&small).unwrap(), 1 << 20, MAX_SCAN_BYTES, &mut buf, &FileScanOptions::default()).unwrap());
        assert_eq!(buf, b"abc");
    }

    #[test]
    fn odd_file_names() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let z = zip(&[("in\nner.com", EICAR)]);
        let p = write(dir.path(), OsStr::from_bytes(b"not-utf8-\xff\xfe.zip"), &z);
        assert_eq!(scan(&p, true), eicar_at(Some("in\\nner.com")));
        let p = write(dir.path(), OsStr::new("new\nline.zip"), &z);
        assert_eq!(scan(&p, true), eicar_at(Some("in\\nner.com")));
        let p = write(dir.path(), OsStr::new("new\nline.com"), EICAR);
        assert_eq!(scan(&p, true), eicar_at(None));
    }

    #[test]
    fn corrupt_archive_files_scan_clean_or_detect_without_error() {
        let dir = tempfile::tempdir().unwrap();
        let z = zip(&[("a", b"some text"), ("e", EICAR)]);
        for cut in (0..z.len()).step_by(7) {
            let p = write(dir.path(), OsStr::new("cut.zip"), &z[..cut]);
            match scan(&p, true) {
                FileOutcome::Clean | FileOutcome::Detected { .. } => {}
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }
}
