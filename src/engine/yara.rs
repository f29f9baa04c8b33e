//! YARA rules (`.yar`, `.yara`) with the pure-Rust `boreal` engine.
//!
//! Each file is compiled into its own namespace (named after the file), so two files may use
//! the same rule name. `include` is disabled: the definitions version covers only the files in
//! the definitions directories, and an include could reach outside them.
//!
//! Threat name: the rule name, or the rule's `threat_name` meta when it has one. Threat type:
//! potentially_unwanted_application when the rule has the meta
//! `threat_type = "potentially_unwanted_application"` or the tag `pua` (any case), or its threat
//! name starts with `PUA.`; virus otherwise. Private rules never report.

use std::time::Duration;

use boreal::compiler::CompilerParams;
use boreal::scanner::{ScanCallbackResult, ScanEvent, ScanParams};
use boreal::{Compiler, MetadataValue, Scanner};

use super::{Detection, ThreatType};

/// A scan of one content never runs longer than this (then it is reported clean).
const SCAN_TIMEOUT: Duration = Duration::from_secs(60);

/// Accumulates YARA files, then compiles them into one scanner.
pub(crate) struct YaraBuilder {
    compiler: Compiler,
    files: usize,
}

/// A compile error of a YARA source: 1-based line (0 if unknown) and reason.
pub(crate) struct YaraError {
    pub line: usize,
    pub reason: String,
}

impl YaraBuilder {
    pub fn new() -> YaraBuilder {
        let mut compiler = Compiler::new();
        compiler.set_params(CompilerParams::default().disable_includes(true));
        YaraBuilder { compiler, files: 0 }
    }

    /// Adds one file's source under `namespace`.
    pub fn add(&mut self, namespace: &str, source: &str) -> Result<(), YaraError> {
        match self.compiler.add_rules_str_in_namespace(source, namespace) {
            Ok(_warnings) => {
                self.files += 1;
                Ok(())
            }
            Err(e) => {
                let diag = e.to_diagnostic();
                let line = diag
                    .labels
                    .first()
                    .map(|l| line_of(source, l.range.start))
                    .unwrap_or(0);
                let mut reason = diag.message.clone();
                if let Some(l) = diag.labels.first() {
                    if !l.message.is_empty() {
                        reason = format!("{reason}: {}", l.message);
                    }
                }
                if reason.is_empty() {
                    reason = e.to_string();
                }
                Err(YaraError { line, reason })
            }
        }
    }

    /// None when no file was added.
    pub fn finish(self) -> Option<YaraRules> {
        if self.files == 0 {
            return None;
        }
        let mut scanner = self.compiler.finalize();
        scanner.set_scan_params(
            ScanParams::default().timeout_duration(Some(SCAN_TIMEOUT)).string_max_nb_matches(100),
        );
        let count = scanner.rules().filter(|r| !r.is_private).count();
        Some(YaraRules { scanner, count })
    }
}

/// 1-based line of byte offset `pos` in `src`.
fn line_of(src: &str, pos: usize) -> usize {
    let pos = pos.min(src.len());
    src.as_bytes()[..pos].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Compiled YARA rules.
pub(crate) struct YaraRules {
    scanner: Scanner,
    count: usize,
}

impl YaraRules {
    pub fn len(&self) -> usize {
        self.count
    }

    /// The first matching (non-private) rule.
    pub fn scan(&self, data: &[u8]) -> Option<Detection> {
        let mut found: Option<Detection> = None;
        let scanner = &self.scanner;
        let _ = scanner.scan_mem_with_callback(data, |event| {
            if let ScanEvent::RuleMatch(rule) = event {
                let mut name = rule.name.to_string();
                let mut pua = false;
                for m in rule.metadatas {
                    let key = scanner.get_string_symbol(m.name);
                    if let MetadataValue::Bytes(b) = m.value {
                        let v = scanner.get_bytes_symbol(b);
                        if key == "threat_type" {
                            pua |= v.eq_ignore_ascii_case(b"potentially_unwanted_application");
                        } else if key == "threat_name" && !v.is_empty() {
                            name = String::from_utf8_lossy(v).into_owned();
                        }
                    }
                }
                pua |= rule.tags.iter().any(|t| scanner.get_string_symbol(*t).eq_ignore_ascii_case("pua"));
                pua |= name.starts_with("PUA.");
                found = Some(Detection {
                    threat_name: name,
                    threat_type: if pua { ThreatType::PotentiallyUnwantedApplication } else { ThreatType::Virus },
                });
                return ScanCallbackResult::Abort;
            }
            ScanCallbackResult::Continue
        });
        found
    }
}
