//! Exclusions: what scans and real-time protection leave alone.
//!
//! STUB: contract only; the wildcard rules of REFERENCE.md are being implemented here.

#![forbid(unsafe_code)]

use std::path::Path;

/// Where an exclusion applies (REFERENCE.md "Exclusion semantics").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// On-demand, real-time and behaviour monitoring.
    Epp,
    /// Muted at the sensor for real-time protection and EDR; not for on-demand scans.
    Global,
}

/// What is excluded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExclusionKind {
    /// A file (`is_directory = false`) or a folder and everything below it.
    Path { path: String, is_directory: bool },
    /// A file name extension, with its dot (`.log`).
    Extension { extension: String },
    /// A process, by its executable's name.
    ProcessName { name: String },
    /// A process, by its executable's full path.
    ProcessPath { path: String },
}

/// One exclusion with its scopes and origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Exclusion {
    #[serde(flatten)]
    pub kind: ExclusionKind,
    pub scopes: Vec<Scope>,
    /// Set by the managed configuration; the CLI cannot remove it.
    #[serde(default)]
    pub managed: bool,
}

/// Exclusions compiled for fast matching.
#[derive(Debug, Clone, Default)]
pub struct ExclusionMatcher {
    list: Vec<Exclusion>,
}

impl ExclusionMatcher {
    pub fn new(list: &[Exclusion]) -> ExclusionMatcher {
        ExclusionMatcher { list: list.to_vec() }
    }

    /// True when `path` (absolute, as found by the walker; not resolved) is excluded in `scope`.
    pub fn is_path_excluded(&self, path: &Path, is_dir: bool, scope: Scope) -> bool {
        let _ = (path, is_dir, scope, &self.list);
        false
    }

    /// True when a process is excluded in `scope`.
    pub fn is_process_excluded(&self, exe: &Path, name: &str, scope: Scope) -> bool {
        let _ = (exe, name, scope);
        false
    }
}

/// Checks an exclusion for the rules of its kind and scope; the error names what is wrong.
pub fn validate(e: &Exclusion) -> Result<(), String> {
    let _ = e;
    Ok(())
}
