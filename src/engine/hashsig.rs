//! ClamAV file-hash signatures (`.hdb`, `.hsb`): `hash:size:name[:MinFL]`.
//!
//! The hash kind is taken from the length of the hash, as ClamAV does: 32 hex digits MD5,
//! 40 SHA-1, 64 SHA-256 (in either file type). `size` is the file size in bytes, or `*` for any
//! size (newer ClamAV wants a functionality-level flag with `*`; accepted here without one).
//!
//! Signatures are kept in maps keyed by (size, digest), plus one map per hash kind for `*`
//! sizes, so that a file's digests are only computed when some signature could match it.

use std::collections::{HashMap, HashSet};

use md5::Digest as _;

/// The hash function of a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum HashKind {
    Md5 = 0,
    Sha1 = 1,
    Sha256 = 2,
}

/// A parsed hash signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HashSig {
    pub kind: HashKind,
    pub digest: Vec<u8>,
    /// None for `*`.
    pub size: Option<u64>,
    pub name: String,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Parses one non-comment `.hdb`/`.hsb` line.
pub(crate) fn parse_line(line: &str) -> Result<HashSig, String> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 3 {
        return Err(format!("expected hash:size:name[:MinFL], found {} field(s)", fields.len()));
    }
    if fields.len() > 4 {
        return Err(format!("too many fields ({}): expected hash:size:name[:MinFL]", fields.len()));
    }
    let hash = fields[0].trim();
    let kind = match hash.len() {
        32 => HashKind::Md5,
        40 => HashKind::Sha1,
        64 => HashKind::Sha256,
        n => {
            return Err(format!(
                "invalid hash length {n}: expected 32 (MD5), 40 (SHA-1) or 64 (SHA-256) hex digits"
            ))
        }
    };
    let digest = match hash.bytes().all(|b| b.is_ascii_hexdigit()).then(|| unhex(hash)).flatten() {
        Some(d) => d,
        None => return Err(format!("invalid hash {hash:?}: not hexadecimal")),
    };
    let size = match fields[1].trim() {
        "*" => None,
        s if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => match s.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return Err(format!("file size {s} is too large")),
        },
        s => return Err(format!("invalid file size {s:?}: expected a number or '*'")),
    };
    let name = super::check_name(fields[2])?;
    if let Some(fl) = fields.get(3) {
        let fl = fl.trim();
        if !(fl.is_empty() || fl.len() <= 9 && fl.bytes().all(|b| b.is_ascii_digit())) {
            return Err(format!("invalid MinFL {fl:?}: expected a number"));
        }
    }
    Ok(HashSig { kind, digest, size, name: name.to_string() })
}

/// One hash kind's signatures. Digests are stored in fixed arrays (padded with zeros).
#[derive(Default)]
struct KindDb {
    sized: HashMap<(u64, [u8; 32]), u32>,
    sizes: HashSet<u64>,
    any_size: HashMap<[u8; 32], u32>,
}

impl KindDb {
    fn wants(&self, size: u64) -> bool {
        !self.any_size.is_empty() || self.sizes.contains(&size)
    }
    fn lookup(&self, size: u64, digest: &[u8; 32]) -> Option<u32> {
        self.sized.get(&(size, *digest)).or_else(|| self.any_size.get(digest)).copied()
    }
}

/// All hash signatures, compiled.
#[derive(Default)]
pub(crate) struct HashDb {
    kinds: [KindDb; 3],
    count: usize,
}

fn pad(d: &[u8]) -> [u8; 32] {
    let mut a = [0u8; 32];
    a[..d.len()].copy_from_slice(d);
    a
}

impl HashDb {
    /// Adds a signature whose threat name is `name_id`.
    pub fn add(&mut self, sig: &HashSig, name_id: u32) {
        let db = &mut self.kinds[sig.kind as usize];
        let d = pad(&sig.digest);
        match sig.size {
            Some(s) => {
                db.sized.entry((s, d)).or_insert(name_id);
                db.sizes.insert(s);
            }
            None => {
                db.any_size.entry(d).or_insert(name_id);
            }
        }
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether any digest must be computed for content of `size` bytes.
    pub fn wants(&self, size: u64) -> bool {
        self.kinds.iter().any(|k| k.wants(size))
    }

    /// A hasher for content of (expected) `size` bytes, computing only the needed digests.
    pub fn hasher(&self, size: u64) -> Option<MultiHasher> {
        if !self.wants(size) {
            return None;
        }
        let w = |k: HashKind| self.kinds[k as usize].wants(size);
        Some(MultiHasher {
            md5: w(HashKind::Md5).then(md5::Md5::new),
            sha1: w(HashKind::Sha1).then(<sha1::Sha1 as sha1::Digest>::new),
            sha256: w(HashKind::Sha256).then(sha2::Sha256::new),
            len: 0,
        })
    }

    /// Looks the finished digests up; returns the threat-name id of a matching signature.
    pub fn lookup(&self, h: MultiHasher) -> Option<u32> {
        let size = h.len;
        if let Some(m) = h.md5 {
            if let Some(id) = self.kinds[0].lookup(size, &pad(&m.finalize())) {
                return Some(id);
            }
        }
        if let Some(m) = h.sha1 {
            use sha1::Digest as _;
            if let Some(id) = self.kinds[1].lookup(size, &pad(&m.finalize())) {
                return Some(id);
            }
        }
        if let Some(m) = h.sha256 {
            if let Some(id) = self.kinds[2].lookup(size, &pad(&m.finalize())) {
                return Some(id);
            }
        }
        None
    }
}

/// Incremental hashing of one content with the digests some signature needs.
pub(crate) struct MultiHasher {
    md5: Option<md5::Md5>,
    sha1: Option<sha1::Sha1>,
    sha256: Option<sha2::Sha256>,
    len: u64,
}

impl MultiHasher {
    pub fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.md5 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha1 {
            use sha1::Digest as _;
            h.update(data);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        self.len += data.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let s = parse_line("44d88612fea8a8f36de82e1278abb02f:68:Eicar-MD5").unwrap();
        assert_eq!((s.kind, s.size, s.name.as_str()), (HashKind::Md5, Some(68), "Eicar-MD5"));
        let s = parse_line(&format!("{}:*:Any:73", "ab".repeat(32))).unwrap();
        assert_eq!((s.kind, s.size), (HashKind::Sha256, None));
        let s = parse_line(&format!("{}:1:Sha1", "AB".repeat(20))).unwrap();
        assert_eq!(s.kind, HashKind::Sha1);
    }

    #[test]
    fn rejects() {
        for (line, reason) in [
            ("abc:1:N", "invalid hash length 3"),
            (&format!("{}:1:N", "zz".repeat(16)), "not hexadecimal"),
            (&format!("{}:x:N", "00".repeat(16)), "invalid file size"),
            (&format!("{}::N", "00".repeat(16)), "invalid file size"),
            (&format!("{}:-1:N", "00".repeat(16)), "invalid file size"),
            (&format!("{}:99999999999999999999999:N", "00".repeat(16)), "too large"),
            (&format!("{}:1:", "00".repeat(16)), "empty threat name"),
            (&format!("{}:1", "00".repeat(16)), "found 2 field(s)"),
            (&format!("{}:1:N:1:2", "00".repeat(16)), "too many fields"),
            (&format!("{}:1:N:abc", "00".repeat(16)), "invalid MinFL"),
        ] {
            let err = parse_line(line).expect_err(line);
            assert!(err.contains(reason), "{line}: {err}");
        }
    }
}
