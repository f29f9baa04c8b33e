//! The scan engine: definitions (signatures) compiled once into a fast matcher.
//!
//! One code path for every caller (on-demand scans, real-time protection, archives' entries).
//! See `docs/ARCHITECTURE.md` for the invariants.
//!
//! STUB: the API below is the contract other modules code against; the implementation of
//! ClamAV `.hdb/.hsb/.ndb` and YARA `.yar` definitions is being written in this module.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

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

/// A definitions file that could not be loaded: names the file, the line and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {reason}", file.display())]
pub struct DefinitionsError {
    pub file: PathBuf,
    /// 1-based line number; 0 when the problem is not on one line (unreadable file, ...).
    pub line: usize,
    pub reason: String,
}

/// Compiled definitions. Cheap to share (`Arc<Definitions>`), immutable once built.
pub struct Definitions {
    version: String,
}

impl Definitions {
    /// Only the built-in signatures (EICAR).
    pub fn builtin() -> Definitions {
        Definitions { version: "builtin".into() }
    }

    /// Loads and compiles every definitions file in `dirs` (missing directories are empty).
    pub fn load(dirs: &[&Path]) -> Result<Definitions, DefinitionsError> {
        let _ = dirs;
        Ok(Definitions::builtin())
    }

    /// A version string that changes whenever the loaded definitions change.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Number of signatures, the built-in ones included.
    pub fn signature_count(&self) -> usize {
        1
    }

    /// Scans a whole in-memory content (file or archive entry).
    pub fn scan_bytes(&self, data: &[u8]) -> Option<Detection> {
        const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
        if data.windows(EICAR.len()).any(|w| w == EICAR) {
            return Some(Detection { threat_name: EICAR_THREAT_NAME.into(), threat_type: ThreatType::Virus });
        }
        None
    }
}
