//! The scan engine: definitions (signatures) compiled once into a fast matcher.
//!
//! One code path for every caller (on-demand scans, real-time protection, archives' entries).
//! See `docs/ARCHITECTURE.md` for the invariants.
//!
//! # Definitions
//! [`Definitions::load`] reads every file of the given directories (not recursively; hidden
//! files and other extensions are ignored) with these extensions:
//! - `.hdb`, `.hsb`: ClamAV file-hash signatures `hash:size:name[:MinFL]` (MD5, SHA-1 or
//!   SHA-256 by hash length; size `*` = any size). See [`hashsig`].
//! - `.ndb`: ClamAV body signatures `Name:TargetType:Offset:HexSignature[:MinFL[:MaxFL]]`.
//!   See [`ndb`] for the supported syntax and what is rejected.
//! - `.yar`, `.yara`: YARA rules, compiled with `boreal`. See [`yara`].
//!
//! Lines starting with `#` and blank lines are ignored in the ClamAV formats. A malformed line
//! makes the whole load fail with a [`DefinitionsError`] naming the file and line, so that the
//! daemon keeps its previous definitions. A file in a later directory replaces the file of the
//! same name in an earlier one (updated definitions override the packaged set).
//!
//! Threat type: a signature name starting with `PUA.` (ClamAV convention), or a YARA rule with
//! the meta `threat_type = "potentially_unwanted_application"` or the tag `pua`, is a
//! potentially unwanted application; everything else is a virus.
//!
//! # Matching
//! - hash signatures live in maps keyed by size: a digest is computed only when some signature
//!   of that kind has the content's size, or a `*`-size signature of that kind exists
//!   ([`Definitions::wants_hash`]);
//! - body signatures (and the built-in EICAR detection) share one multi-pattern filter over
//!   their 4-byte anchors (a cache-resident bitmap of hashed 4-grams, then an exact table); the
//!   whole signature is verified only around an anchor hit ([`matcher`]);
//! - YARA rules run only when some are loaded.
//!
//! [`Definitions::scan_reader`] scans content too big to hold in memory: hashes cover the whole
//! stream, body signatures and YARA rules only the first [`SCAN_WINDOW`] bytes.

#![forbid(unsafe_code)]

pub mod hashsig;
pub mod matcher;
pub mod ndb;
pub mod yara;

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

/// The kind of a detection, spelled as the reference product's threat types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreatType {
    Virus,
    PotentiallyUnwantedApplication,
    ArchiveBomb,
}

impl ThreatType {
    pub fn as_str(self) -> &'static str {
        match self {
            ThreatType::Virus => "virus",
            ThreatType::PotentiallyUnwantedApplication => "potentially_unwanted_application",
            ThreatType::ArchiveBomb => "archive_bomb",
        }
    }

    /// The type of a ClamAV-style signature name: `PUA.` prefix = potentially unwanted.
    pub fn from_signature_name(name: &str) -> ThreatType {
        if name.starts_with("PUA.") {
            ThreatType::PotentiallyUnwantedApplication
        } else {
            ThreatType::Virus
        }
    }
}

/// What a signature found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// Threat name, e.g. `EICAR-Test-File (not a virus)`.
    pub threat_name: String,
    pub threat_type: ThreatType,
}

/// The reference product's name for the EICAR test file.
pub const EICAR_THREAT_NAME: &str = "EICAR-Test-File (not a virus)";

/// The EICAR test string, detected anywhere in a content.
pub const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// [`Definitions::scan_reader`] matches body signatures and YARA rules over the first
/// `SCAN_WINDOW` bytes of a content (hash signatures over all of it).
pub const SCAN_WINDOW: u64 = 32 << 20;

/// A definitions file that could not be loaded: names the file, the line and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {reason}", file.display())]
pub struct DefinitionsError {
    pub file: PathBuf,
    /// 1-based line number; 0 when the problem is not on one line (unreadable file, ...).
    pub line: usize,
    pub reason: String,
}

/// Which file types a body signature applies to (`.ndb` target type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Any,
    Pe,
    Elf,
    MachO,
}

/// The kinds of definitions files, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Hash,
    Body,
    Yara,
}

impl FileKind {
    fn from_extension(ext: &str) -> Option<FileKind> {
        match ext.to_ascii_lowercase().as_str() {
            "hdb" | "hsb" => Some(FileKind::Hash),
            "ndb" => Some(FileKind::Body),
            "yar" | "yara" => Some(FileKind::Yara),
            _ => None,
        }
    }
}

/// Validates a threat name field.
pub(crate) fn check_name(name: &str) -> Result<&str, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("empty threat name".into());
    }
    if name.chars().any(char::is_control) {
        return Err("threat name contains a control character".into());
    }
    Ok(name)
}

/// Signature counts per kind, for health and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SignatureCounts {
    /// Built-in signatures (EICAR).
    pub builtin: usize,
    /// `.hdb`/`.hsb` file-hash signatures.
    pub hash: usize,
    /// `.ndb` body signatures.
    pub body: usize,
    /// Body signatures without a two-byte literal anchor (tried with a pass of their own).
    pub body_slow_path: usize,
    /// YARA rules (private rules not counted).
    pub yara: usize,
}

impl SignatureCounts {
    pub fn total(&self) -> usize {
        self.builtin + self.hash + self.body + self.yara
    }
}

/// Compiled definitions. Cheap to share (`Arc<Definitions>`), immutable once built.
pub struct Definitions {
    version: String,
    /// Threat names of the hash signatures.
    hash_names: Vec<String>,
    hashes: hashsig::HashDb,
    body: matcher::BodyMatcher,
    yara: Option<yara::YaraRules>,
    counts: SignatureCounts,
}

// The daemon shares one `Definitions` between threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Definitions>();
};

/// Accumulates parsed files, then compiles them.
struct Builder {
    hash_names: Vec<String>,
    hashes: hashsig::HashDb,
    body: Vec<ndb::BodySig>,
    yara: yara::YaraBuilder,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            hash_names: Vec::new(),
            hashes: hashsig::HashDb::default(),
            body: Vec::new(),
            yara: yara::YaraBuilder::new(),
        }
    }

    fn add_file(&mut self, path: &Path, kind: FileKind, content: &[u8]) -> Result<(), DefinitionsError> {
        let err = |line: usize, reason: String| DefinitionsError { file: path.to_path_buf(), line, reason };
        let text = std::str::from_utf8(content).map_err(|e| {
            let line = content[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
            err(line, "not valid UTF-8".into())
        })?;
        if kind == FileKind::Yara {
            let namespace = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            return self.yara.add(&namespace, text).map_err(|e| err(e.line, e.reason));
        }
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match kind {
                FileKind::Hash => {
                    let sig = hashsig::parse_line(line).map_err(|r| err(i + 1, r))?;
                    self.hashes.add(&sig, self.hash_names.len() as u32);
                    self.hash_names.push(sig.name);
                }
                FileKind::Body => {
                    let sig = ndb::parse_line(line).map_err(|r| err(i + 1, r))?;
                    self.body.push(sig);
                }
                FileKind::Yara => unreachable!(),
            }
        }
        Ok(())
    }

    fn finish(self, version: String) -> Definitions {
        let body_count = self.body.len();
        let mut sigs = Vec::with_capacity(body_count + 1);
        sigs.push(ndb::BodySig {
            name: EICAR_THREAT_NAME.into(),
            target: Target::Any,
            offset: ndb::Offset::Any,
            segs: vec![EICAR.iter().map(|&b| ndb::Tok::Byte(b)).collect()],
            gaps: Vec::new(),
        });
        sigs.extend(self.body);
        let body = matcher::BodyMatcher::new(sigs);
        let yara = self.yara.finish();
        let counts = SignatureCounts {
            builtin: 1,
            hash: self.hashes.len(),
            body: body_count,
            body_slow_path: body.slow_count(),
            yara: yara.as_ref().map_or(0, |y| y.len()),
        };
        Definitions { version, hash_names: self.hash_names, hashes: self.hashes, body, yara, counts }
    }
}

/// Parses and compiles one definitions text as if it were a file of type `kind` (`"hdb"`,
/// `"hsb"`, `"ndb"`, `"yar"`). For the fuzzer and for tests.
pub fn parse_definitions_text(kind: &str, text: &str) -> Result<Definitions, DefinitionsError> {
    let path = PathBuf::from(format!("text.{kind}"));
    let fk = FileKind::from_extension(kind).ok_or_else(|| DefinitionsError {
        file: path.clone(),
        line: 0,
        reason: format!("unknown definitions kind {kind:?}"),
    })?;
    let mut b = Builder::new();
    b.add_file(&path, fk, text.as_bytes())?;
    Ok(b.finish("text".into()))
}

impl Definitions {
    /// Only the built-in signatures (EICAR).
    pub fn builtin() -> Definitions {
        Builder::new().finish("builtin".into())
    }

    /// Loads and compiles every definitions file in `dirs` (missing directories are empty).
    pub fn load(dirs: &[&Path]) -> Result<Definitions, DefinitionsError> {
        // file name -> path; a later directory replaces an earlier one's file of the same name.
        let mut files: std::collections::BTreeMap<String, (PathBuf, FileKind)> = Default::default();
        for dir in dirs {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(DefinitionsError { file: dir.to_path_buf(), line: 0, reason: e.to_string() })
                }
            };
            for entry in entries {
                let entry = entry.map_err(|e| DefinitionsError {
                    file: dir.to_path_buf(),
                    line: 0,
                    reason: e.to_string(),
                })?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with('.') {
                    continue;
                }
                let Some(kind) = Path::new(name).extension().and_then(|e| e.to_str()).and_then(FileKind::from_extension)
                else {
                    continue;
                };
                let path = entry.path();
                // Follows symlinks: the directories are root's.
                if !std::fs::metadata(&path).map(|m| m.is_file()).unwrap_or(false) {
                    continue;
                }
                files.insert(name.to_string(), (path, kind));
            }
        }
        if files.is_empty() {
            return Ok(Definitions::builtin());
        }
        let mut b = Builder::new();
        let mut h = sha2::Sha256::new();
        for (name, (path, kind)) in &files {
            let content = std::fs::read(path).map_err(|e| DefinitionsError {
                file: path.clone(),
                line: 0,
                reason: e.to_string(),
            })?;
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update((content.len() as u64).to_le_bytes());
            h.update(&content);
            b.add_file(path, *kind, &content)?;
        }
        let digest = h.finalize();
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Ok(b.finish(format!("1.0.{hex}")))
    }

    /// A version string that changes whenever the loaded definitions change:
    /// `builtin` with only the built-in signatures, else `1.0.<12 hex digits>` of a SHA-256
    /// over the sorted file names and contents.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Number of signatures, the built-in ones included.
    pub fn signature_count(&self) -> usize {
        self.counts.total()
    }

    /// Signature counts per kind.
    pub fn counts(&self) -> SignatureCounts {
        self.counts
    }

    /// Approximate memory of the body-signature filters, in bytes (for diagnostics).
    pub fn body_filter_memory(&self) -> usize {
        self.body.filter_memory()
    }

    /// Whether a content of `size` bytes needs a digest (some hash signature could match it).
    /// Cheap: a few hash-set look-ups.
    pub fn wants_hash(&self, size: u64) -> bool {
        self.hashes.wants(size)
    }

    fn hash_detection(&self, id: u32) -> Detection {
        let name = &self.hash_names[id as usize];
        Detection { threat_name: name.clone(), threat_type: ThreatType::from_signature_name(name) }
    }

    fn scan_content(&self, data: &[u8], eof_known: bool) -> Option<Detection> {
        if let Some(sid) = self.body.scan(data, eof_known) {
            let name = &self.body.sig(sid).name;
            return Some(Detection {
                threat_name: name.clone(),
                threat_type: ThreatType::from_signature_name(name),
            });
        }
        self.yara.as_ref().and_then(|y| y.scan(data))
    }

    /// Scans a whole in-memory content (file or archive entry).
    pub fn scan_bytes(&self, data: &[u8]) -> Option<Detection> {
        if let Some(mut h) = self.hashes.hasher(data.len() as u64) {
            h.update(data);
            if let Some(id) = self.hashes.lookup(h) {
                return Some(self.hash_detection(id));
            }
        }
        self.scan_content(data, true)
    }

    /// Scans a content read from `reader`, of `size_hint` bytes expected (the file's size from
    /// its metadata). A content of at most [`SCAN_WINDOW`] bytes is scanned exactly as
    /// [`Definitions::scan_bytes`] does. For a longer one, body signatures and YARA rules see
    /// only its first `SCAN_WINDOW` bytes (and `EOF-n` body signatures are not tried), while
    /// hash signatures are checked over the whole stream when [`Definitions::wants_hash`] is
    /// true for `size_hint`; otherwise the rest is not even read.
    pub fn scan_reader<R: Read>(&self, reader: R, size_hint: u64) -> std::io::Result<Option<Detection>> {
        let mut reader = reader;
        let mut buf = Vec::with_capacity(size_hint.min(SCAN_WINDOW) as usize + 1);
        (&mut reader).take(SCAN_WINDOW + 1).read_to_end(&mut buf)?;
        if buf.len() as u64 <= SCAN_WINDOW {
            return Ok(self.scan_bytes(&buf));
        }
        if let Some(mut h) = self.hashes.hasher(size_hint) {
            h.update(&buf);
            let mut chunk = vec![0u8; 1 << 20];
            loop {
                let n = match reader.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                h.update(&chunk[..n]);
            }
            if let Some(id) = self.hashes.lookup(h) {
                return Ok(Some(self.hash_detection(id)));
            }
        }
        buf.truncate(SCAN_WINDOW as usize);
        Ok(self.scan_content(&buf, false))
    }
}

#[cfg(test)]
mod tests;
