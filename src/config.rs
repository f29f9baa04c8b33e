//! Configuration: the admin's `mdatp_managed.json` beats the local settings the CLI writes to
//! `wdavcfg`, which beat the defaults.
//!
//! Both files share one schema: the reference product's managed-configuration keys (camelCase,
//! REFERENCE.md). Unknown keys and invalid values are rejected with a message naming the file,
//! the key path and the reason; the caller then keeps the last good configuration.

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::exclusions::{Exclusion, ExclusionKind, Scope};

/// `antivirusEngine.enforcementLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnforcementLevel {
    RealTime,
    OnDemand,
    Passive,
    Audit,
}

impl EnforcementLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementLevel::RealTime => "real_time",
            EnforcementLevel::OnDemand => "on_demand",
            EnforcementLevel::Passive => "passive",
            EnforcementLevel::Audit => "audit",
        }
    }
    /// Whether detections are remediated (quarantined). Passive and audit only report.
    pub fn remediates(self) -> bool {
        matches!(self, EnforcementLevel::RealTime | EnforcementLevel::OnDemand)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergePolicy {
    Merge,
    AdminOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreatAction {
    Allow,
    Restore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreatTypeKey {
    PotentiallyUnwantedApplication,
    ArchiveBomb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreatTypeAction {
    Audit,
    Block,
    Off,
}

impl ThreatTypeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ThreatTypeAction::Audit => "audit",
            ThreatTypeAction::Block => "block",
            ThreatTypeAction::Off => "off",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreatTypeSetting {
    pub key: ThreatTypeKey,
    pub value: ThreatTypeAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonExecMountPolicy {
    Unmute,
    Mute,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkEnforcement {
    Disabled,
    Audit,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Error,
    Warning,
    Info,
    Verbose,
    Debug,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warning => "warning",
            LogLevel::Info => "info",
            LogLevel::Verbose => "verbose",
            LogLevel::Debug => "debug",
        }
    }
    pub fn parse(s: &str) -> Option<LogLevel> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// One exclusion as written in the configuration files (`$type` discriminated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "$type", deny_unknown_fields)]
pub enum ExclusionEntry {
    #[serde(rename = "excludedPath")]
    Path {
        path: String,
        #[serde(rename = "isDirectory", default)]
        is_directory: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scopes: Option<Vec<Scope>>,
    },
    #[serde(rename = "excludedFileExtension")]
    Extension {
        extension: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scopes: Option<Vec<Scope>>,
    },
    /// A process, by name (`name`) or by full path (`name` starting with `/`), as the
    /// reference product's `excludedFileName`.
    #[serde(rename = "excludedFileName")]
    FileName {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scopes: Option<Vec<Scope>>,
    },
}

impl ExclusionEntry {
    /// The exclusion this entry describes; `default_scope` applies when it names none.
    pub fn to_exclusion(&self, managed: bool) -> Exclusion {
        let (kind, scopes) = match self {
            ExclusionEntry::Path { path, is_directory, scopes } => {
                (ExclusionKind::Path { path: path.clone(), is_directory: *is_directory }, scopes)
            }
            ExclusionEntry::Extension { extension, scopes } => {
                (ExclusionKind::Extension { extension: extension.clone() }, scopes)
            }
            ExclusionEntry::FileName { name, scopes } => {
                let kind = if name.starts_with('/') {
                    ExclusionKind::ProcessPath { path: name.clone() }
                } else {
                    ExclusionKind::ProcessName { name: name.clone() }
                };
                (kind, scopes)
            }
        };
        let mut scopes = scopes.clone().unwrap_or_else(|| vec![Scope::Epp]);
        scopes.sort();
        scopes.dedup();
        Exclusion { kind, scopes, managed }
    }

    /// The file entry for an exclusion made with the CLI.
    pub fn from_exclusion(e: &Exclusion) -> ExclusionEntry {
        let scopes = Some(e.scopes.clone());
        match &e.kind {
            ExclusionKind::Path { path, is_directory } => {
                ExclusionEntry::Path { path: path.clone(), is_directory: *is_directory, scopes }
            }
            ExclusionKind::Extension { extension } => {
                ExclusionEntry::Extension { extension: extension.clone(), scopes }
            }
            ExclusionKind::ProcessName { name } => ExclusionEntry::FileName { name: name.clone(), scopes },
            ExclusionKind::ProcessPath { path } => ExclusionEntry::FileName { name: path.clone(), scopes },
        }
    }
}

/// `antivirusEngine`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AntivirusEngine {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforcement_level: Option<EnforcementLevel>,
    /// Legacy spelling of real-time protection (`true` = real_time), kept for old policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_real_time_protection: Option<bool>,
    /// Legacy spelling of passive mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passive_mode: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behavior_monitoring: Option<Toggle>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_after_definition_update: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_archives: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_on_demand_scan_threads: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusions_merge_policy: Option<MergePolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusions: Option<Vec<ExclusionEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub non_exec_mount_policy: Option<NonExecMountPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmonitored_filesystems: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_file_hash_computation: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_threats: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disallowed_threat_actions: Option<Vec<ThreatAction>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threat_type_settings_merge_policy: Option<MergePolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threat_type_settings: Option<Vec<ThreatTypeSetting>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_results_retention_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_history_maximum_items: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_definition_update: Option<Toggle>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_definition_update_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_definition_update_fallback_to_cloud: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definitions_update_interval: Option<i64>,
}

/// `enabled` / `disabled` values, as the reference writes several switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Toggle {
    Enabled,
    Disabled,
}

impl Toggle {
    pub fn on(self) -> bool {
        self == Toggle::Enabled
    }
    pub fn from_bool(b: bool) -> Toggle {
        if b {
            Toggle::Enabled
        } else {
            Toggle::Disabled
        }
    }
}

/// `exclusionSettings`: the newer exclusion schema with scopes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExclusionSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge_policy: Option<MergePolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusions: Option<Vec<ExclusionEntry>>,
}

/// `scheduledScan` (accepted and validated; the scheduler is a later issue).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduledScan {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weekly_configuration: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_configuration: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub randomize_scan_start_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_priority_scheduled_scan: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_for_definitions_update: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_exclusions: Option<bool>,
}

/// `cloudService` (accepted and validated; connectivity is a later issue).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloudService {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostic_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automatic_sample_submission_consent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automatic_definition_update_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition_updates_interval: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

/// `networkProtection` (network protection is a later issue; the level is kept and reported).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkProtection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforcement_level: Option<NetworkEnforcement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indicators: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdrTag {
    pub key: String,
    pub value: String,
}

/// `edr`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Edr {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_ids: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<EdrTag>>,
}

/// The whole file: `mdatp_managed.json` or `wdavcfg`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub antivirus_engine: Option<AntivirusEngine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusion_settings: Option<ExclusionSettings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_scan: Option<ScheduledScan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_service: Option<CloudService>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_protection: Option<NetworkProtection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edr: Option<Edr>,
    /// Reference feature switches (`features.*`), accepted as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tamper_protection: Option<serde_json::Value>,
    /// Our own key: the daemon's log level (`mdatp log level set`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<LogLevel>,
}

/// A configuration file that was rejected: names the file, the key and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// Dotted key path (`antivirusEngine.maximumOnDemandScanThreads`), empty when the file as a
    /// whole is wrong (not JSON, unreadable).
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigFile {
    /// Parses and validates a configuration file's text. `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<ConfigFile, ConfigError> {
        if text.trim().is_empty() {
            return Ok(ConfigFile::default());
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        let cfg: ConfigFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            let inner = e.into_inner();
            let mut reason = inner.to_string();
            // serde_json appends " at line L column C"; keep it, it helps find the spot.
            if inner.is_syntax() || inner.is_eof() {
                reason = format!("not valid JSON: {reason}");
            }
            ConfigError { file: file.to_string(), key, reason }
        })?;
        cfg.validate(file)?;
        Ok(cfg)
    }

    /// Reads and parses a file; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => ConfigFile::parse(&path.display().to_string(), &text),
                Err(_) => Err(ConfigError {
                    file: path.display().to_string(),
                    key: String::new(),
                    reason: "not valid UTF-8".into(),
                }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(e) => Err(ConfigError { file: path.display().to_string(), key: String::new(), reason: e.to_string() }),
        }
    }

    fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let err = |key: &str, reason: String| ConfigError { file: file.into(), key: key.into(), reason };
        if let Some(av) = &self.antivirus_engine {
            range(av.maximum_on_demand_scan_threads, 1, 64)
                .map_err(|r| err("antivirusEngine.maximumOnDemandScanThreads", r))?;
            range(av.scan_results_retention_days, 1, 180)
                .map_err(|r| err("antivirusEngine.scanResultsRetentionDays", r))?;
            range(av.scan_history_maximum_items, 5000, 15000)
                .map_err(|r| err("antivirusEngine.scanHistoryMaximumItems", r))?;
            if let Some(list) = &av.exclusions {
                for (i, e) in list.iter().enumerate() {
                    let ex = e.to_exclusion(true);
                    if ex.scopes.contains(&Scope::Global) {
                        return Err(err(
                            &format!("antivirusEngine.exclusions[{i}].scopes"),
                            "antivirusEngine exclusions are epp exclusions; use exclusionSettings for global ones".into(),
                        ));
                    }
                    crate::exclusions::validate(&ex).map_err(|r| err(&format!("antivirusEngine.exclusions[{i}]"), r))?;
                }
            }
            if let Some(list) = &av.threat_type_settings {
                let mut seen = BTreeSet::new();
                for (i, s) in list.iter().enumerate() {
                    if !seen.insert(s.key) {
                        return Err(err(
                            &format!("antivirusEngine.threatTypeSettings[{i}].key"),
                            "the same threat type is set twice".into(),
                        ));
                    }
                }
            }
            if let Some(list) = &av.allowed_threats {
                for (i, t) in list.iter().enumerate() {
                    if t.trim().is_empty() {
                        return Err(err(&format!("antivirusEngine.allowedThreats[{i}]"), "empty threat name".into()));
                    }
                }
            }
        }
        if let Some(es) = &self.exclusion_settings {
            if let Some(list) = &es.exclusions {
                for (i, e) in list.iter().enumerate() {
                    let ex = e.to_exclusion(true);
                    crate::exclusions::validate(&ex).map_err(|r| err(&format!("exclusionSettings.exclusions[{i}]"), r))?;
                }
            }
        }
        if let Some(cs) = &self.cloud_service {
            range(cs.definition_updates_interval, 60, 7 * 24 * 3600)
                .map_err(|r| err("cloudService.definitionUpdatesInterval", r))?;
            if let Some(p) = &cs.proxy {
                validate_proxy(p).map_err(|r| err("cloudService.proxy", r))?;
            }
        }
        Ok(())
    }

    /// Serialises for writing `wdavcfg`.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("configuration serialises");
        s.push('\n');
        s
    }

    /// All exclusions of this file, as `(exclusion, merge policy if the file sets one)`.
    fn exclusions(&self, managed: bool) -> Vec<Exclusion> {
        let mut out = Vec::new();
        if let Some(av) = &self.antivirus_engine {
            for e in av.exclusions.iter().flatten() {
                out.push(e.to_exclusion(managed));
            }
        }
        if let Some(es) = &self.exclusion_settings {
            for e in es.exclusions.iter().flatten() {
                out.push(e.to_exclusion(managed));
            }
        }
        out
    }

    fn av(&self) -> AntivirusEngine {
        self.antivirus_engine.clone().unwrap_or_default()
    }
}

fn range(v: Option<i64>, lo: i64, hi: i64) -> Result<(), String> {
    match v {
        Some(n) if n < lo || n > hi => Err(format!("{n} is out of range: must be between {lo} and {hi}")),
        _ => Ok(()),
    }
}

/// A static proxy is `http://host:port` (PAC, WPAD and authenticated proxies are unsupported).
pub fn validate_proxy(p: &str) -> Result<(), String> {
    let rest = p
        .strip_prefix("http://")
        .ok_or_else(|| format!("proxy must look like http://host:port, got {p:?}"))?;
    if rest.contains('@') {
        return Err("authenticated proxies are not supported".into());
    }
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| format!("proxy {p:?} has no port"))?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |n| n == 0) {
        return Err(format!("proxy {p:?} must be http://host:port with a port from 1 to 65535"));
    }
    Ok(())
}

/// A setting's value and whether the managed configuration set it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting<T> {
    pub value: T,
    pub managed: bool,
}

/// The configuration in force: managed > local > default, key by key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effective {
    pub enforcement_level: Setting<EnforcementLevel>,
    pub behavior_monitoring: Setting<bool>,
    pub scan_after_definition_update: Setting<bool>,
    pub scan_archives: Setting<bool>,
    pub maximum_on_demand_scan_threads: Setting<u32>,
    pub exclusions_merge_policy: Setting<MergePolicy>,
    /// Managed first, then (unless admin_only) local ones.
    pub exclusions: Vec<Exclusion>,
    pub non_exec_mount_policy: Setting<NonExecMountPolicy>,
    pub unmonitored_filesystems: Setting<Vec<String>>,
    pub enable_file_hash_computation: Setting<bool>,
    pub allowed_threats: Vec<(String, bool)>,
    pub disallowed_threat_actions: Setting<Vec<ThreatAction>>,
    pub pua: Setting<ThreatTypeAction>,
    pub archive_bomb: Setting<ThreatTypeAction>,
    pub scan_results_retention_days: Setting<u32>,
    pub scan_history_maximum_items: Setting<u32>,
    pub cloud_enabled: Setting<bool>,
    pub cloud_diagnostic_level: Setting<String>,
    pub cloud_sample_submission: Setting<String>,
    pub automatic_definition_update_enabled: Setting<bool>,
    pub proxy: Setting<Option<String>>,
    pub network_protection: Setting<NetworkEnforcement>,
    pub edr_group_ids: Setting<String>,
    pub edr_tags: Setting<Vec<EdrTag>>,
    pub log_level: Setting<LogLevel>,
}

fn pick<T: Clone>(managed: Option<T>, local: Option<T>, default: T) -> Setting<T> {
    match (managed, local) {
        (Some(v), _) => Setting { value: v, managed: true },
        (None, Some(v)) => Setting { value: v, managed: false },
        (None, None) => Setting { value: default, managed: false },
    }
}

fn legacy_level(av: &AntivirusEngine) -> Option<EnforcementLevel> {
    av.enforcement_level.or(match (av.passive_mode, av.enable_real_time_protection) {
        (Some(true), _) => Some(EnforcementLevel::Passive),
        (_, Some(true)) => Some(EnforcementLevel::RealTime),
        (_, Some(false)) => Some(EnforcementLevel::OnDemand),
        _ => None,
    })
}

/// The default unmonitored filesystems (REFERENCE.md).
pub const DEFAULT_UNMONITORED_FILESYSTEMS: &[&str] = &["nfs", "nfs4", "cifs", "smb", "fuse"];

impl Effective {
    /// Merges the two files key by key.
    pub fn merge(managed: &ConfigFile, local: &ConfigFile) -> Effective {
        let (m, l) = (managed.av(), local.av());
        let mcs = managed.cloud_service.clone().unwrap_or_default();
        let lcs = local.cloud_service.clone().unwrap_or_default();
        let mnp = managed.network_protection.clone().unwrap_or_default();
        let lnp = local.network_protection.clone().unwrap_or_default();
        let medr = managed.edr.clone().unwrap_or_default();
        let ledr = local.edr.clone().unwrap_or_default();

        let merge_policy = pick(
            managed
                .exclusion_settings
                .as_ref()
                .and_then(|e| e.merge_policy)
                .or(m.exclusions_merge_policy),
            None,
            MergePolicy::Merge,
        );
        let mut exclusions = managed.exclusions(true);
        if merge_policy.value == MergePolicy::Merge {
            for e in local.exclusions(false) {
                if !exclusions.iter().any(|x| x.kind == e.kind && x.scopes == e.scopes) {
                    exclusions.push(e);
                }
            }
        }

        let mut allowed: Vec<(String, bool)> =
            m.allowed_threats.iter().flatten().map(|t| (t.clone(), true)).collect();
        for t in l.allowed_threats.iter().flatten() {
            if !allowed.iter().any(|(x, _)| x == t) {
                allowed.push((t.clone(), false));
            }
        }

        let tt_policy = m.threat_type_settings_merge_policy.unwrap_or(MergePolicy::Merge);
        let tt = |key: ThreatTypeKey, default: ThreatTypeAction| {
            let find = |list: &Option<Vec<ThreatTypeSetting>>| {
                list.iter().flatten().find(|s| s.key == key).map(|s| s.value)
            };
            let local_v = if tt_policy == MergePolicy::Merge { find(&l.threat_type_settings) } else { None };
            pick(find(&m.threat_type_settings), local_v, default)
        };

        Effective {
            enforcement_level: pick(legacy_level(&m), legacy_level(&l), EnforcementLevel::Passive),
            behavior_monitoring: pick(
                m.behavior_monitoring.map(Toggle::on),
                l.behavior_monitoring.map(Toggle::on),
                false,
            ),
            scan_after_definition_update: pick(m.scan_after_definition_update, l.scan_after_definition_update, true),
            scan_archives: pick(m.scan_archives, l.scan_archives, true),
            maximum_on_demand_scan_threads: pick(
                m.maximum_on_demand_scan_threads.map(|n| n as u32),
                l.maximum_on_demand_scan_threads.map(|n| n as u32),
                2,
            ),
            exclusions_merge_policy: merge_policy,
            exclusions,
            non_exec_mount_policy: pick(m.non_exec_mount_policy, l.non_exec_mount_policy, NonExecMountPolicy::Unmute),
            unmonitored_filesystems: pick(
                m.unmonitored_filesystems.clone(),
                l.unmonitored_filesystems.clone(),
                DEFAULT_UNMONITORED_FILESYSTEMS.iter().map(|s| s.to_string()).collect(),
            ),
            enable_file_hash_computation: pick(m.enable_file_hash_computation, l.enable_file_hash_computation, false),
            allowed_threats: allowed,
            disallowed_threat_actions: pick(m.disallowed_threat_actions.clone(), None, Vec::new()),
            pua: tt(ThreatTypeKey::PotentiallyUnwantedApplication, ThreatTypeAction::Audit),
            archive_bomb: tt(ThreatTypeKey::ArchiveBomb, ThreatTypeAction::Audit),
            scan_results_retention_days: pick(
                m.scan_results_retention_days.map(|n| n as u32),
                l.scan_results_retention_days.map(|n| n as u32),
                90,
            ),
            scan_history_maximum_items: pick(
                m.scan_history_maximum_items.map(|n| n as u32),
                l.scan_history_maximum_items.map(|n| n as u32),
                10000,
            ),
            cloud_enabled: pick(mcs.enabled, lcs.enabled, true),
            cloud_diagnostic_level: pick(mcs.diagnostic_level, lcs.diagnostic_level, "optional".into()),
            cloud_sample_submission: pick(
                mcs.automatic_sample_submission_consent,
                lcs.automatic_sample_submission_consent,
                "safe".into(),
            ),
            automatic_definition_update_enabled: pick(
                mcs.automatic_definition_update_enabled,
                lcs.automatic_definition_update_enabled,
                true,
            ),
            proxy: pick(mcs.proxy.map(Some), lcs.proxy.map(Some), None),
            network_protection: pick(mnp.enforcement_level, lnp.enforcement_level, NetworkEnforcement::Disabled),
            edr_group_ids: pick(medr.group_ids, ledr.group_ids, String::new()),
            edr_tags: pick(medr.tags, ledr.tags, Vec::new()),
            log_level: pick(managed.log_level, local.log_level, LogLevel::Info),
        }
    }

    /// The action for a detection of `threat_type` by its threat-type setting.
    pub fn threat_type_action(&self, t: crate::engine::ThreatType) -> ThreatTypeAction {
        match t {
            crate::engine::ThreatType::Virus => ThreatTypeAction::Block,
            crate::engine::ThreatType::PotentiallyUnwantedApplication => self.pua.value,
            crate::engine::ThreatType::ArchiveBomb => self.archive_bomb.value,
        }
    }

    pub fn is_allowed_threat(&self, name: &str) -> bool {
        self.allowed_threats.iter().any(|(t, _)| t == name)
    }

    pub fn is_action_disallowed(&self, a: ThreatAction) -> bool {
        self.disallowed_threat_actions.value.contains(&a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, String> {
        ConfigFile::parse("mdatp_managed.json", text).map_err(|e| e.to_string())
    }

    #[test]
    fn errors_name_file_key_and_reason() {
        let cases: &[(&str, &str)] = &[
            (r#"{"antivirusEngine": {"maximumOnDemandScanThreads": 65}}"#,
             "mdatp_managed.json: antivirusEngine.maximumOnDemandScanThreads: 65 is out of range: must be between 1 and 64"),
            (r#"{"antivirusEngine": {"maximumOnDemandScanThreads": "two"}}"#,
             "mdatp_managed.json: antivirusEngine.maximumOnDemandScanThreads: invalid type: string \"two\", expected i64"),
            (r#"{"antivirusEngine": {"enforcementLevel": "loud"}}"#,
             "mdatp_managed.json: antivirusEngine.enforcementLevel: unknown variant `loud`"),
            (r#"{"antivirusEngine": {"scanArchivez": true}}"#,
             "mdatp_managed.json: antivirusEngine.scanArchivez: unknown field `scanArchivez`, expected one of"),
            (r#"{"antivirusEngine": {"scanHistoryMaximumItems": 100}}"#,
             "antivirusEngine.scanHistoryMaximumItems: 100 is out of range: must be between 5000 and 15000"),
            (r#"{"antivirusEngine": {"scanResultsRetentionDays": 0}}"#,
             "antivirusEngine.scanResultsRetentionDays: 0 is out of range"),
            (r#"{"antivirusEngine": {"threatTypeSettings": [{"key": "archive_bomb", "value": "nuke"}]}}"#,
             "antivirusEngine.threatTypeSettings[0].value: unknown variant `nuke`"),
            (r#"{"antivirusEngine": {"exclusions": [{"$type": "excludedPath", "path": "/x", "isDirectory": "yes"}]}}"#,
             "antivirusEngine.exclusions[0]: invalid type: string \"yes\", expected a boolean"),
            (r#"{"antivirusEngine": "#, "mdatp_managed.json: antivirusEngine: not valid JSON: EOF while parsing"),
            (r#"{"cloudService": {"proxy": "http://user:pw@proxy:8080"}}"#, "cloudService.proxy: authenticated proxies are not supported"),
        ];
        for (text, want) in cases {
            let got = parse(text).expect_err(text);
            assert!(got.contains(want), "for {text}\n got: {got}\nwant: {want}");
        }
    }

    #[test]
    fn valid_reference_policy_parses() {
        let text = r#"{
          "antivirusEngine": {
            "enforcementLevel": "real_time",
            "scanArchives": false,
            "maximumOnDemandScanThreads": 4,
            "exclusionsMergePolicy": "admin_only",
            "exclusions": [
              {"$type": "excludedPath", "isDirectory": true, "path": "/var/lib/postgresql"},
              {"$type": "excludedFileExtension", "extension": ".pdf"},
              {"$type": "excludedFileName", "name": "cat"}
            ],
            "allowedThreats": ["EICAR-Test-File (not a virus)"],
            "disallowedThreatActions": ["allow", "restore"],
            "threatTypeSettings": [{"key": "potentially_unwanted_application", "value": "block"}],
            "scanResultsRetentionDays": 30,
            "scanHistoryMaximumItems": 5000
          },
          "cloudService": {"enabled": false, "proxy": "http://proxy.example:3128"},
          "edr": {"tags": [{"key": "GROUP", "value": "web"}]}
        }"#;
        let m = parse(text).unwrap();
        let local = parse(r#"{"antivirusEngine": {"enforcementLevel": "passive", "scanArchives": true,
            "exclusions": [{"$type": "excludedPath", "isDirectory": false, "path": "/etc/x"}]}}"#)
        .unwrap();
        let e = Effective::merge(&m, &local);
        assert_eq!(e.enforcement_level, Setting { value: EnforcementLevel::RealTime, managed: true });
        assert_eq!(e.scan_archives, Setting { value: false, managed: true });
        assert_eq!(e.maximum_on_demand_scan_threads.value, 4);
        // admin_only: the local exclusion is dropped.
        assert_eq!(e.exclusions.len(), 3);
        assert!(e.exclusions.iter().all(|x| x.managed));
        assert_eq!(e.pua.value, ThreatTypeAction::Block);
        assert!(e.is_action_disallowed(ThreatAction::Restore));
        assert!(e.is_allowed_threat("EICAR-Test-File (not a virus)"));
    }

    #[test]
    fn local_beats_default_and_merge_keeps_both() {
        let m = parse(r#"{"antivirusEngine": {"exclusions": [{"$type": "excludedFileExtension", "extension": ".a"}]}}"#).unwrap();
        let l = parse(r#"{"antivirusEngine": {"enforcementLevel": "on_demand", "maximumOnDemandScanThreads": 8},
            "exclusionSettings": {"exclusions": [{"$type": "excludedPath", "path": "/srv", "isDirectory": true, "scopes": ["epp", "global"]}]}}"#).unwrap();
        let e = Effective::merge(&m, &l);
        assert_eq!(e.enforcement_level, Setting { value: EnforcementLevel::OnDemand, managed: false });
        assert_eq!(e.maximum_on_demand_scan_threads, Setting { value: 8, managed: false });
        assert_eq!(e.exclusions.len(), 2);
        assert_eq!(e.exclusions[1].scopes, vec![Scope::Epp, Scope::Global]);
        let d = Effective::merge(&ConfigFile::default(), &ConfigFile::default());
        assert_eq!(d.enforcement_level.value, EnforcementLevel::Passive);
        assert_eq!(d.maximum_on_demand_scan_threads.value, 2);
        assert!(d.scan_archives.value);
    }

    #[test]
    fn legacy_switches_map_to_levels() {
        let m = parse(r#"{"antivirusEngine": {"passiveMode": true}}"#).unwrap();
        assert_eq!(Effective::merge(&m, &ConfigFile::default()).enforcement_level.value, EnforcementLevel::Passive);
        let m = parse(r#"{"antivirusEngine": {"enableRealTimeProtection": false}}"#).unwrap();
        assert_eq!(Effective::merge(&m, &ConfigFile::default()).enforcement_level.value, EnforcementLevel::OnDemand);
    }

    #[test]
    fn round_trip_local_file() {
        let l = parse(r#"{"antivirusEngine": {"enforcementLevel": "audit"}, "logLevel": "debug"}"#).unwrap();
        assert_eq!(parse(&l.to_json()).unwrap(), l);
    }
}
