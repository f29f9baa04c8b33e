//! Quarantine: moving a detected file into `/var/opt/microsoft/mdatp/quarantine` and back.
//!
//! Invariant: at every instant, the file's content exists in full in at least one place (the
//! original path or a complete quarantine item), and the database says which. The order is:
//!
//! 1. the threat row goes to `quarantining` (committed);
//! 2. the content is written, obfuscated, to `ID.tmp`, fsynced, renamed to `ID.mdq`, the
//!    directory fsynced;
//! 3. only then is the original unlinked (if it is still the same file), its directory fsynced;
//! 4. the row goes to `quarantined`.
//!
//! `recover` repairs a crash at any point: a row left in `quarantining` becomes `quarantined` if
//! the original is gone and `ID.mdq` is there, else the item is dropped and the row goes back to
//! `detected` (the original is still in place). `*.tmp` files are always incomplete and removed.
//!
//! Items are stored as a small header (magic, JSON metadata with original path, mode, owner,
//! size, SHA-256 and the XOR key) followed by the content XORed with a random 32-byte key, so a
//! quarantined program can be neither run nor opened by mistake. Directory 0700, items 0600,
//! root only.

#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::paths::{path_to_string, string_to_path};
use crate::store::{state, Store, Threat};

const MAGIC: &[u8] = b"MDATPQ01\n";

/// The metadata written at the head of every quarantine item.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ItemHeader {
    pub id: String,
    pub threat_name: String,
    pub original_path: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub sha256: String,
    pub key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("{0}")]
    Refused(String),
}

type Result<T> = std::result::Result<T, QuarantineError>;

fn item_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.mdq"))
}

fn tmp_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.tmp"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

fn xor(buf: &mut [u8], key: &[u8], offset: u64) {
    let start = (offset % key.len() as u64) as usize;
    for (b, k) in buf.iter_mut().zip(key.iter().cycle().skip(start)) {
        *b ^= k;
    }
}

/// Makes the quarantine directory (0700) if needed.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Opens a path for reading without following a final symlink and without blocking on FIFOs.
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// Moves the file of threat `t` into quarantine. `t` must be in the database.
pub fn quarantine(dir: &Path, store: &Store, t: &Threat) -> Result<()> {
    ensure_dir(dir)?;
    let path_buf = string_to_path(&t.path);
    let path = path_buf.as_path();
    let mut src = match open_nofollow(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            store.set_state(&t.id, state::VANISHED)?;
            return Err(QuarantineError::Refused(format!("{:?} vanished before it could be quarantined", t.path)));
        }
        Err(e) => return Err(e.into()),
    };
    let before = src.metadata()?;
    if !before.file_type().is_file() {
        return Err(QuarantineError::Refused(format!("{:?} is not a regular file", t.path)));
    }
    store.set_state(&t.id, state::QUARANTINING)?;

    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());

    // Pass 1: hash (the header carries the hash, so it is known before the body is written).
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let sha256 = hex(&hasher.finalize());
    let header = ItemHeader {
        id: t.id.clone(),
        threat_name: t.name.clone(),
        original_path: t.path.clone(),
        mode: before.mode() & 0o7777,
        uid: before.uid(),
        gid: before.gid(),
        size,
        sha256: sha256.clone(),
        key: hex(&key),
    };

    // Pass 2: write the item.
    let tmp = tmp_path(dir, &t.id);
    let written = (|| -> io::Result<String> {
        let mut out = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        out.write_all(MAGIC)?;
        out.write_all(serde_json::to_string(&header).expect("header serialises").as_bytes())?;
        out.write_all(b"\n")?;
        let mut src = open_nofollow(path)?;
        let mut h = Sha256::new();
        let mut off = 0u64;
        loop {
            let n = src.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            xor(&mut buf[..n], &key, off);
            out.write_all(&buf[..n])?;
            off += n as u64;
        }
        out.sync_all()?;
        Ok(hex(&h.finalize()))
    })();
    let second = match written {
        Ok(h) => h,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            store.set_state(&t.id, state::DETECTED)?;
            return Err(e.into());
        }
    };
    let changed = |after: &fs::Metadata| {
        after.dev() != before.dev()
            || after.ino() != before.ino()
            || after.len() != size
            || after.mtime() != before.mtime()
            || after.mtime_nsec() != before.mtime_nsec()
    };
    let after = fs::symlink_metadata(path)?;
    if second != sha256 || changed(&after) {
        let _ = fs::remove_file(&tmp);
        store.set_state(&t.id, state::DETECTED)?;
        return Err(QuarantineError::Refused(format!("{:?} changed while it was being quarantined", t.path)));
    }
    let item = item_path(dir, &t.id);
    fs::rename(&tmp, &item)?;
    sync_dir(dir)?;
    store.update_file_facts(&t.id, &sha256, size, header.mode, header.uid, header.gid)?;

    // The item is durable: now the original may go.
    fs::remove_file(path)?;
    if let Some(parent) = path.parent() {
        let _ = sync_dir(parent);
    }
    store.set_state(&t.id, state::QUARANTINED)?;
    Ok(())
}

/// Repairs quarantine operations a crash interrupted. Returns what it did, for the log.
pub fn recover(dir: &Path, store: &Store) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "tmp") {
                fs::remove_file(e.path())?;
                notes.push(format!("removed incomplete quarantine item {}", e.path().display()));
            }
        }
    }
    // A restore interrupted after it began writing its temporary file: remove that file (it
    // holds the de-obfuscated content), the item is still in quarantine.
    for (id, tmp) in store.restore_tmps()? {
        let tmp = string_to_path(&tmp);
        if fs::symlink_metadata(&tmp).is_ok() {
            fs::remove_file(&tmp)?;
            notes.push(format!("removed the temporary file of an interrupted restore: {:?}", path_to_string(&tmp)));
        }
        store.set_restore_tmp(&id, None)?;
    }
    for t in store.threats_in_state(state::QUARANTINING)? {
        let item = item_path(dir, &t.id);
        let original_there = fs::symlink_metadata(string_to_path(&t.path)).is_ok();
        if item.exists() && !original_there {
            store.set_state(&t.id, state::QUARANTINED)?;
            notes.push(format!("completed interrupted quarantine of {:?}", t.path));
        } else if original_there {
            if item.exists() {
                fs::remove_file(&item)?;
            }
            store.set_state(&t.id, state::DETECTED)?;
            notes.push(format!("rolled back interrupted quarantine of {:?}; the file is in place", t.path));
        } else {
            store.set_state(&t.id, state::VANISHED)?;
            notes.push(format!("{:?} vanished during an interrupted quarantine", t.path));
        }
    }
    if !notes.is_empty() {
        let _ = sync_dir(dir);
    }
    Ok(notes)
}

/// Reads an item's header.
pub fn read_header(dir: &Path, id: &str) -> Result<(ItemHeader, BufReader<File>)> {
    let f = File::open(item_path(dir, id))?;
    let mut r = BufReader::new(f);
    let mut magic = vec![0u8; MAGIC.len()];
    r.read_exact(&mut magic)?;
    if magic != MAGIC {
        return Err(QuarantineError::Refused(format!("quarantine item {id} is damaged (bad magic)")));
    }
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    let header: ItemHeader = serde_json::from_slice(&line)
        .map_err(|e| QuarantineError::Refused(format!("quarantine item {id} is damaged: {e}")))?;
    Ok((header, r))
}

/// Restores threat `t` to its original path, or into `dest_dir` with its original file name.
/// Never overwrites an existing file. Returns the path written.
pub fn restore(dir: &Path, store: &Store, t: &Threat, dest_dir: Option<&Path>) -> Result<PathBuf> {
    if t.state != state::QUARANTINED {
        return Err(QuarantineError::Refused(format!("threat {} is not in quarantine (state: {})", t.id, t.state)));
    }
    let (header, mut body) = read_header(dir, &t.id)?;
    let original = string_to_path(&header.original_path);
    let target = match dest_dir {
        Some(d) => {
            let name = original
                .file_name()
                .ok_or_else(|| QuarantineError::Refused(format!("{} has no file name", header.original_path)))?;
            d.join(name)
        }
        None => original.clone(),
    };
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| QuarantineError::Refused(format!("{} has no parent directory", target.display())))?;
    if !parent.is_dir() {
        return Err(QuarantineError::Refused(format!("destination directory {} does not exist", parent.display())));
    }
    if fs::symlink_metadata(&target).is_ok() {
        return Err(QuarantineError::Refused(format!(
            "{} already exists; not overwriting it (use --destination-path to restore elsewhere)",
            target.display()
        )));
    }
    let key = unhex(&header.key).filter(|k| !k.is_empty()).ok_or_else(|| {
        QuarantineError::Refused(format!("quarantine item {} is damaged (bad key)", t.id))
    })?;
    let tmp = parent.join(format!(".mdatp-restore-{}.tmp", t.id));
    let _ = fs::remove_file(&tmp);
    // Journal the temporary file first, so `recover` removes it after a crash.
    store.set_restore_tmp(&t.id, Some(&path_to_string(&tmp)))?;
    let res = (|| -> Result<()> {
        let mut out = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        let mut buf = vec![0u8; 1 << 16];
        let mut h = Sha256::new();
        let mut off = 0u64;
        loop {
            let n = body.read(&mut buf)?;
            if n == 0 {
                break;
            }
            xor(&mut buf[..n], &key, off);
            h.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            off += n as u64;
        }
        if off != header.size || hex(&h.finalize()) != header.sha256 {
            return Err(QuarantineError::Refused(format!(
                "quarantine item {} is damaged (content does not match its hash); nothing restored",
                t.id
            )));
        }
        std::os::unix::fs::fchown(&out, Some(header.uid), Some(header.gid))?;
        out.set_permissions(fs::Permissions::from_mode(header.mode))?;
        out.sync_all()?;
        // hard_link fails with EEXIST instead of overwriting: the no-overwrite rule holds even
        // if the target appeared since the check above.
        fs::hard_link(&tmp, &target).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                QuarantineError::Refused(format!("{} already exists; not overwriting it", target.display()))
            } else {
                e.into()
            }
        })?;
        Ok(())
    })();
    let _ = fs::remove_file(&tmp);
    store.set_restore_tmp(&t.id, None)?;
    res?;
    let _ = sync_dir(parent);
    store.set_state(&t.id, state::RESTORED)?;
    fs::remove_file(item_path(dir, &t.id))?;
    let _ = sync_dir(dir);
    Ok(target)
}

/// Deletes a quarantined item for good.
pub fn remove(dir: &Path, store: &Store, t: &Threat) -> Result<()> {
    if t.state != state::QUARANTINED {
        return Err(QuarantineError::Refused(format!("threat {} is not in quarantine (state: {})", t.id, t.state)));
    }
    store.set_state(&t.id, state::REMOVED)?;
    match fs::remove_file(item_path(dir, &t.id)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now;

    fn setup() -> (tempfile::TempDir, Store, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(&d.path().join("db")).unwrap();
        let q = d.path().join("q");
        (d, store, q)
    }

    fn threat(id: &str, path: &Path) -> Threat {
        Threat {
            id: id.into(),
            name: "T".into(),
            threat_type: "virus".into(),
            path: path.to_string_lossy().into(),
            inner: None,
            sha256: None,
            size: None,
            mode: None,
            uid: None,
            gid: None,
            detected_at: now(),
            source: "test".into(),
            state: state::DETECTED.into(),
            updated_at: now(),
        }
    }

    #[test]
    fn quarantine_and_restore_round_trip() {
        let (d, store, q) = setup();
        let f = d.path().join("bad.bin");
        let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(&f, &content).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o751)).unwrap();
        let t = threat("a", &f);
        store.insert_threat(&t).unwrap();
        quarantine(&q, &store, &t).unwrap();
        assert!(!f.exists());
        let stored = fs::read(q.join("a.mdq")).unwrap();
        assert!(!stored.windows(64).any(|w| w == &content[1000..1064]), "content must be obfuscated");
        assert_eq!(fs::metadata(q.join("a.mdq")).unwrap().permissions().mode() & 0o777, 0o600);
        let t = store.threat("a").unwrap().unwrap();
        assert_eq!(t.state, state::QUARANTINED);
        // A file in the way is not overwritten.
        fs::write(&f, b"other").unwrap();
        let err = restore(&q, &store, &t, None).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(fs::read(&f).unwrap(), b"other");
        fs::remove_file(&f).unwrap();
        let back = restore(&q, &store, &t, None).unwrap();
        assert_eq!(back, f);
        assert_eq!(fs::read(&f).unwrap(), content);
        assert_eq!(fs::metadata(&f).unwrap().permissions().mode() & 0o7777, 0o751);
        assert_eq!(store.threat("a").unwrap().unwrap().state, state::RESTORED);
        assert!(!q.join("a.mdq").exists());
    }

    #[test]
    fn recover_rolls_back_or_completes() {
        let (d, store, q) = setup();
        ensure_dir(&q).unwrap();
        // Crash after the item was written but before the original was unlinked.
        let f = d.path().join("x");
        fs::write(&f, b"payload").unwrap();
        let t = threat("x", &f);
        store.insert_threat(&t).unwrap();
        quarantine(&q, &store, &t).unwrap();
        fs::write(&f, b"payload").unwrap();
        store.set_state("x", state::QUARANTINING).unwrap();
        fs::write(q.join("y.tmp"), b"half").unwrap();
        recover(&q, &store).unwrap();
        assert_eq!(store.threat("x").unwrap().unwrap().state, state::DETECTED);
        assert!(!q.join("x.mdq").exists());
        assert!(!q.join("y.tmp").exists());
        assert_eq!(fs::read(&f).unwrap(), b"payload");
        // Crash after unlink, before the final state.
        let t = store.threat("x").unwrap().unwrap();
        quarantine(&q, &store, &t).unwrap();
        store.set_state("x", state::QUARANTINING).unwrap();
        recover(&q, &store).unwrap();
        assert_eq!(store.threat("x").unwrap().unwrap().state, state::QUARANTINED);
    }

    #[test]
    fn damaged_item_is_refused_and_nothing_written() {
        let (d, store, q) = setup();
        let f = d.path().join("z");
        fs::write(&f, vec![1u8; 5000]).unwrap();
        let t = threat("z", &f);
        store.insert_threat(&t).unwrap();
        quarantine(&q, &store, &t).unwrap();
        let mut item = fs::read(q.join("z.mdq")).unwrap();
        let n = item.len();
        item[n - 10] ^= 0xff;
        fs::write(q.join("z.mdq"), item).unwrap();
        let t = store.threat("z").unwrap().unwrap();
        let err = restore(&q, &store, &t, None).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
        assert!(!f.exists());
        assert_eq!(store.threat("z").unwrap().unwrap().state, state::QUARANTINED);
    }
}
