//! `mdatp`: the command line. Spellings are the reference product's (REFERENCE.md); every
//! command takes `--output json`. The CLI holds no state: it asks `wdavdaemon` over its socket.

#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use serde_json::Value;

use crate::exclusions::{Exclusion, ExclusionKind, Scope};
use crate::ipc::{self, Reply, Request, ScanKind};
use crate::paths::Paths;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Parser)]
#[command(name = "mdatp", version = crate::daemon::VERSION, about = "Command line of the mdatp endpoint-protection agent",
          disable_help_subcommand = true)]
pub struct Cli {
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    Enabled,
    Disabled,
}

impl OnOff {
    fn s(self) -> &'static str {
        match self {
            OnOff::Enabled => "enabled",
            OnOff::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Args)]
pub struct ValueArg {
    #[arg(long, value_enum)]
    pub value: OnOff,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the health of the agent.
    Health {
        /// Print only this field.
        #[arg(long)]
        field: Option<String>,
        /// Show details of a subsystem.
        #[arg(long, value_parser = ["edr", "definitions", "features"])]
        details: Option<String>,
    },
    /// Show the version.
    Version,
    /// Show help.
    Help,
    /// Change a setting.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// On-demand scans.
    #[command(subcommand)]
    Scan(ScanCmd),
    /// Detected threats, allowed threats and quarantine.
    #[command(subcommand)]
    Threat(ThreatCmd),
    /// Exclusions from scanning.
    #[command(subcommand)]
    Exclusion(ExclusionCmd),
    /// Definitions (signatures).
    #[command(subcommand)]
    Definitions(DefinitionsCmd),
    /// Logging.
    #[command(subcommand)]
    Log(LogCmd),
    /// Endpoint detection and response settings.
    #[command(subcommand)]
    Edr(EdrCmd),
    #[command(name = "__completions", hide = true)]
    Completions { shell: clap_complete::Shell },
    #[command(name = "__manpage", hide = true)]
    Manpage,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Real-time protection (enabled = real_time, disabled = on_demand).
    RealTimeProtection(ValueArg),
    /// Passive mode: report only, no remediation, no real-time protection.
    PassiveMode(ValueArg),
    BehaviorMonitoring(ValueArg),
    /// Threads of on-demand scans (1..64).
    MaximumOnDemandScanThreads {
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
        value: u32,
    },
    /// Scan inside archives (on-demand scans).
    ScanArchives(ValueArg),
    ScanAfterDefinitionUpdate(ValueArg),
    EnableFileHashComputation(ValueArg),
    Cloud(ValueArg),
    CloudDiagnostic(ValueArg),
    CloudAutomaticSampleSubmission {
        #[arg(long, value_parser = ["none", "safe", "all", "enabled", "disabled"])]
        value: String,
    },
    /// Static proxy for cloud connectivity.
    #[command(subcommand)]
    Proxy(ProxyCmd),
    /// Network protection.
    #[command(subcommand)]
    NetworkProtection(NetworkProtectionCmd),
}

#[derive(Debug, Subcommand)]
pub enum ProxyCmd {
    Set {
        #[arg(long)]
        value: String,
    },
    Clear,
}

#[derive(Debug, Subcommand)]
pub enum NetworkProtectionCmd {
    EnforcementLevel {
        #[arg(long, value_parser = ["disabled", "audit", "block"])]
        value: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScanCmd {
    /// Scan the places malware lands (see docs/scanning.md).
    Quick,
    /// Scan every local filesystem.
    Full,
    /// Scan a path.
    Custom {
        #[arg(long, required = true, value_parser = clap::value_parser!(std::path::PathBuf))]
        path: Vec<std::path::PathBuf>,
        #[arg(long)]
        ignore_exclusions: bool,
    },
    /// Stop the running scan.
    Cancel,
    /// Scan history.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ThreatCmd {
    List,
    Get {
        #[arg(long)]
        id: String,
    },
    #[command(subcommand)]
    Allowed(AllowedCmd),
    #[command(subcommand)]
    Policy(PolicyCmd),
    #[command(subcommand)]
    Quarantine(QuarantineCmd),
}

#[derive(Debug, Subcommand)]
pub enum AllowedCmd {
    Add {
        #[arg(long)]
        name: String,
    },
    Remove {
        #[arg(long)]
        name: String,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    Set {
        #[arg(long = "type", value_parser = ["potentially_unwanted_application", "archive_bomb"])]
        threat_type: String,
        #[arg(long, value_parser = ["block", "audit", "off"])]
        action: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCmd {
    List,
    RemoveAll,
    Add {
        #[arg(long)]
        id: String,
    },
    Remove {
        #[arg(long)]
        id: String,
    },
    #[command(subcommand)]
    Restore(RestoreCmd),
}

#[derive(Debug, Subcommand)]
pub enum RestoreCmd {
    ThreatId {
        #[arg(long)]
        id: String,
        #[arg(long, value_parser = clap::value_parser!(std::path::PathBuf))]
        destination_path: Option<std::path::PathBuf>,
    },
    ThreatPath {
        #[arg(long, value_parser = clap::value_parser!(std::path::PathBuf))]
        path: std::path::PathBuf,
        #[arg(long, value_parser = clap::value_parser!(std::path::PathBuf))]
        destination_path: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    Epp,
    Global,
}

#[derive(Debug, Subcommand)]
pub enum AddRemove<A: Args> {
    Add(A),
    Remove(A),
}

#[derive(Debug, Args)]
pub struct ExtArgs {
    #[arg(long)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PathArgs {
    #[arg(long)]
    pub path: String,
    #[arg(long, value_enum)]
    pub scope: Vec<ScopeArg>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false, id = "process")]
pub struct ProcArgs {
    #[arg(long, group = "process")]
    pub path: Option<String>,
    #[arg(long, group = "process")]
    pub name: Option<String>,
    #[arg(long, value_enum)]
    pub scope: Vec<ScopeArg>,
}

#[derive(Debug, Subcommand)]
pub enum ExclusionCmd {
    #[command(subcommand)]
    Extension(AddRemove<ExtArgs>),
    #[command(subcommand)]
    File(AddRemove<PathArgs>),
    #[command(subcommand)]
    Folder(AddRemove<PathArgs>),
    #[command(subcommand)]
    Process(AddRemove<ProcArgs>),
    List,
}

#[derive(Debug, Subcommand)]
pub enum DefinitionsCmd {
    /// Load the definitions directories again.
    Update,
    /// Put the previous definitions back in force.
    Restore,
}

#[derive(Debug, Subcommand)]
pub enum LogCmd {
    #[command(subcommand)]
    Level(LogLevelCmd),
}

#[derive(Debug, Subcommand)]
pub enum LogLevelCmd {
    Set {
        #[arg(long, value_parser = ["error", "warning", "info", "verbose", "debug"])]
        level: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum EdrCmd {
    #[command(subcommand)]
    Tag(EdrTagCmd),
    GroupIds {
        #[arg(long)]
        group_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum EdrTagCmd {
    Set {
        #[arg(long)]
        name: String,
        #[arg(long)]
        value: String,
    },
    Remove {
        #[arg(long)]
        tag_name: String,
    },
}

fn scopes(s: &[ScopeArg]) -> Vec<Scope> {
    let mut v: Vec<Scope> = s
        .iter()
        .map(|x| match x {
            ScopeArg::Epp => Scope::Epp,
            ScopeArg::Global => Scope::Global,
        })
        .collect();
    if v.is_empty() {
        v.push(Scope::Epp);
    }
    v.sort();
    v.dedup();
    v
}

fn exclusion_request<A: Args>(ar: AddRemove<A>, make: impl Fn(A) -> Exclusion) -> Request {
    match ar {
        AddRemove::Add(a) => Request::ExclusionAdd { exclusion: make(a) },
        AddRemove::Remove(a) => Request::ExclusionRemove { exclusion: make(a) },
    }
}

fn config_request(c: ConfigCmd) -> Request {
    let set = |s: &str, v: &str| Request::SetConfig { setting: s.into(), value: Some(v.into()) };
    match c {
        ConfigCmd::RealTimeProtection(v) => set("real-time-protection", v.value.s()),
        ConfigCmd::PassiveMode(v) => set("passive-mode", v.value.s()),
        ConfigCmd::BehaviorMonitoring(v) => set("behavior-monitoring", v.value.s()),
        ConfigCmd::MaximumOnDemandScanThreads { value } => set("maximum-on-demand-scan-threads", &value.to_string()),
        ConfigCmd::ScanArchives(v) => set("scan-archives", v.value.s()),
        ConfigCmd::ScanAfterDefinitionUpdate(v) => set("scan-after-definition-update", v.value.s()),
        ConfigCmd::EnableFileHashComputation(v) => set("enable-file-hash-computation", v.value.s()),
        ConfigCmd::Cloud(v) => set("cloud", v.value.s()),
        ConfigCmd::CloudDiagnostic(v) => set("cloud-diagnostic", v.value.s()),
        ConfigCmd::CloudAutomaticSampleSubmission { value } => set("cloud-automatic-sample-submission", &value),
        ConfigCmd::Proxy(ProxyCmd::Set { value }) => set("proxy", &value),
        ConfigCmd::Proxy(ProxyCmd::Clear) => Request::SetConfig { setting: "proxy".into(), value: None },
        ConfigCmd::NetworkProtection(NetworkProtectionCmd::EnforcementLevel { value }) => {
            set("network-protection-enforcement-level", &value)
        }
    }
}

/// A path from the command line, made absolute against the caller's directory, as sent.
fn abs_string(p: &std::path::Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    crate::paths::path_to_string(&cwd.join(p))
}

/// The request a command sends, or `None` for commands answered locally.
fn request_for(cmd: Command) -> Option<Request> {
    Some(match cmd {
        Command::Health { .. } => Request::Health,
        Command::Config(c) => config_request(c),
        Command::Scan(ScanCmd::Quick) => Request::Scan { kind: ScanKind::Quick, paths: vec![], ignore_exclusions: false },
        Command::Scan(ScanCmd::Full) => Request::Scan { kind: ScanKind::Full, paths: vec![], ignore_exclusions: false },
        Command::Scan(ScanCmd::Custom { path, ignore_exclusions }) => {
            let cwd = std::env::current_dir().unwrap_or_default();
            let paths = path.iter().map(|p| crate::paths::path_to_string(&cwd.join(p))).collect();
            Request::Scan { kind: ScanKind::Custom, paths, ignore_exclusions }
        }
        Command::Scan(ScanCmd::Cancel) => Request::ScanCancel,
        Command::Scan(ScanCmd::List) => Request::ScanList,
        Command::Threat(ThreatCmd::List) => Request::ThreatList,
        Command::Threat(ThreatCmd::Get { id }) => Request::ThreatGet { id },
        Command::Threat(ThreatCmd::Allowed(AllowedCmd::Add { name })) => Request::AllowedAdd { name },
        Command::Threat(ThreatCmd::Allowed(AllowedCmd::Remove { name })) => Request::AllowedRemove { name },
        Command::Threat(ThreatCmd::Allowed(AllowedCmd::List)) => Request::AllowedList,
        Command::Threat(ThreatCmd::Policy(PolicyCmd::Set { threat_type, action })) => {
            Request::ThreatPolicySet { threat_type, action }
        }
        Command::Threat(ThreatCmd::Quarantine(q)) => match q {
            QuarantineCmd::List => Request::QuarantineList,
            QuarantineCmd::RemoveAll => Request::QuarantineRemoveAll,
            QuarantineCmd::Add { id } => Request::QuarantineAdd { id },
            QuarantineCmd::Remove { id } => Request::QuarantineRemove { id },
            QuarantineCmd::Restore(RestoreCmd::ThreatId { id, destination_path }) => {
                Request::RestoreById { id, destination: destination_path.map(|d| abs_string(&d)) }
            }
            QuarantineCmd::Restore(RestoreCmd::ThreatPath { path, destination_path }) => Request::RestoreByPath {
                path: abs_string(&path),
                destination: destination_path.map(|d| abs_string(&d)),
            },
        },
        Command::Exclusion(e) => match e {
            ExclusionCmd::Extension(ar) => exclusion_request(ar, |a| Exclusion {
                kind: ExclusionKind::Extension { extension: a.name },
                scopes: vec![Scope::Epp],
                managed: false,
            }),
            ExclusionCmd::File(ar) => exclusion_request(ar, |a| Exclusion {
                kind: ExclusionKind::Path { path: a.path, is_directory: false },
                scopes: scopes(&a.scope),
                managed: false,
            }),
            ExclusionCmd::Folder(ar) => exclusion_request(ar, |a| Exclusion {
                kind: ExclusionKind::Path { path: a.path, is_directory: true },
                scopes: scopes(&a.scope),
                managed: false,
            }),
            ExclusionCmd::Process(ar) => exclusion_request(ar, |a| Exclusion {
                kind: match (a.path, a.name) {
                    (Some(path), _) => ExclusionKind::ProcessPath { path },
                    (None, name) => ExclusionKind::ProcessName { name: name.unwrap_or_default() },
                },
                scopes: scopes(&a.scope),
                managed: false,
            }),
            ExclusionCmd::List => Request::ExclusionList,
        },
        Command::Definitions(DefinitionsCmd::Update) => Request::DefinitionsUpdate,
        Command::Definitions(DefinitionsCmd::Restore) => Request::DefinitionsRestore,
        Command::Log(LogCmd::Level(LogLevelCmd::Set { level })) => Request::LogLevelSet { level },
        Command::Edr(EdrCmd::Tag(EdrTagCmd::Set { name, value })) => Request::EdrTagSet { name, value },
        Command::Edr(EdrCmd::Tag(EdrTagCmd::Remove { tag_name })) => Request::EdrTagRemove { name: tag_name },
        Command::Edr(EdrCmd::GroupIds { group_id }) => Request::EdrGroupIds { group_id },
        Command::Version | Command::Help | Command::Completions { .. } | Command::Manpage => return None,
    })
}

/// A value as the reference prints it in text: strings quoted, lists as JSON.
fn text_value(v: &Value) -> String {
    match v {
        Value::String(_) | Value::Array(_) | Value::Object(_) => v.to_string(),
        Value::Null => "unavailable".into(),
        other => other.to_string(),
    }
}

fn health_text(fields: &[Value], field: Option<&str>, details: Option<&str>) -> Result<String, String> {
    let get = |f: &Value| {
        let name = f["name"].as_str().unwrap_or_default().to_string();
        let managed = if f["managed"].as_bool() == Some(true) { " [managed]" } else { "" };
        (name, format!("{}{managed}", text_value(&f["value"])))
    };
    if let Some(want) = field {
        return fields
            .iter()
            .map(get)
            .find(|(n, _)| n == want)
            .map(|(_, v)| format!("{v}\n"))
            .ok_or_else(|| {
                let names: Vec<String> = fields.iter().map(|f| get(f).0).collect();
                format!("unknown health field {want:?}; fields are: {}", names.join(", "))
            });
    }
    let prefix = match details {
        Some("definitions") => Some("definitions_"),
        Some("edr") => Some("edr_"),
        _ => None,
    };
    let mut s = String::new();
    for f in fields {
        let (n, v) = get(f);
        if prefix.is_none_or(|p| n.starts_with(p)) {
            s.push_str(&format!("{n:<45} : {v}\n"));
        }
    }
    Ok(s)
}

fn threat_text(t: &Value) -> String {
    let when = t["detected_at"].as_i64().map(crate::daemon::fmt_time).unwrap_or_default();
    let mut s = format!(
        "Id: {}\nName: {}\nType: {}\nDetection time: {}\nStatus: {}\nPath: {}\n",
        t["id"],
        t["name"].as_str().unwrap_or_default(),
        t["type"],
        serde_json::json!(when),
        t["state"],
        t["path"]
    );
    if let Some(inner) = t["inner"].as_str() {
        s.push_str(&format!("Inside: {}\n", serde_json::json!(inner)));
    }
    if let Some(h) = t["sha256"].as_str() {
        s.push_str(&format!("SHA256: {h}\n"));
    }
    s
}

fn render_text(cmd_name: &str, data: &Value, message: Option<&str>, field: Option<&str>, details: Option<&str>) -> Result<String, String> {
    match cmd_name {
        "health" => health_text(data.as_array().map(|v| v.as_slice()).unwrap_or(&[]), field, details),
        "scan" => Ok(format!(
            "Scan has finished\n\t{} file(s) scanned\n\t{} threat(s) detected\n",
            data["files_scanned"], data["threats_detected"]
        )),
        "threat_list" => {
            let list = data.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                return Ok("No threats found\n".into());
            }
            Ok(list.iter().map(threat_text).collect::<Vec<_>>().join("\n"))
        }
        "threat" => Ok(threat_text(data)),
        "scan_list" => {
            let mut s = String::new();
            for r in data.as_array().cloned().unwrap_or_default() {
                s.push_str(&format!(
                    "Id: {}\nType: {}\nStarted: {}\nState: {}\nFiles scanned: {}\nThreats detected: {}\n\n",
                    r["id"],
                    r["type"],
                    serde_json::json!(r["started_at"].as_i64().map(crate::daemon::fmt_time).unwrap_or_default()),
                    r["state"],
                    r["files_scanned"],
                    r["threats_detected"]
                ));
            }
            if s.is_empty() {
                s = "No scans found\n".into();
            }
            Ok(s)
        }
        "allowed_list" => {
            let mut s = String::new();
            for a in data.as_array().cloned().unwrap_or_default() {
                let m = if a["managed"].as_bool() == Some(true) { " [managed]" } else { "" };
                s.push_str(&format!("{}{m}\n", a["name"].as_str().unwrap_or_default()));
            }
            Ok(s)
        }
        "exclusion_list" => {
            let mut s = String::new();
            for e in data.as_array().cloned().unwrap_or_default() {
                let m = if e["managed"].as_bool() == Some(true) { " [managed]" } else { "" };
                let (label, key, val) = match e["type"].as_str().unwrap_or_default() {
                    "path" if e["is_directory"].as_bool() == Some(true) => ("Folder", "Path", &e["path"]),
                    "path" => ("File", "Path", &e["path"]),
                    "extension" => ("Extension", "Extension", &e["extension"]),
                    "process_name" => ("Process", "Name", &e["name"]),
                    _ => ("Process", "Path", &e["path"]),
                };
                s.push_str(&format!("=====================================\nExclusion type: \"{label}\"\n{key}: {val}{m}\nScopes: {}\n", e["scopes"]));
            }
            if s.is_empty() {
                s = "No exclusions\n".into();
            }
            Ok(s)
        }
        _ => Ok(message.map(|m| format!("{m}\n")).unwrap_or_default()),
    }
}

fn cmd_kind(cmd: &Command) -> &'static str {
    match cmd {
        Command::Health { .. } => "health",
        Command::Scan(ScanCmd::Quick | ScanCmd::Full | ScanCmd::Custom { .. }) => "scan",
        Command::Scan(ScanCmd::List) => "scan_list",
        Command::Threat(ThreatCmd::List) | Command::Threat(ThreatCmd::Quarantine(QuarantineCmd::List)) => "threat_list",
        Command::Threat(ThreatCmd::Get { .. }) => "threat",
        Command::Threat(ThreatCmd::Allowed(AllowedCmd::List)) => "allowed_list",
        Command::Exclusion(ExclusionCmd::List) => "exclusion_list",
        _ => "message",
    }
}

/// Health as a JSON object `{field: value}` (the reference's `--output json` shape).
fn health_json(fields: &Value, field: Option<&str>) -> Result<Value, String> {
    let mut m = serde_json::Map::new();
    for f in fields.as_array().cloned().unwrap_or_default() {
        let name = f["name"].as_str().unwrap_or_default().to_string();
        m.insert(name, serde_json::json!({"value": f["value"], "isManaged": f["managed"]}));
    }
    match field {
        Some(want) => m.get(want).cloned().ok_or_else(|| format!("unknown health field {want:?}")),
        None => Ok(Value::Object(m)),
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let out = cli.output;
    let (field, details) = match &cli.command {
        Command::Health { field, details } => (field.clone(), details.clone()),
        _ => (None, None),
    };
    let kind = cmd_kind(&cli.command);
    match &cli.command {
        Command::Version => {
            match out {
                Output::Json => println!("{}", serde_json::json!({"app_version": crate::daemon::VERSION})),
                Output::Text => println!("Product version: {}", crate::daemon::VERSION),
            }
            return Ok(());
        }
        Command::Help => {
            Cli::command().print_help().map_err(|e| e.to_string())?;
            return Ok(());
        }
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "mdatp", &mut std::io::stdout());
            return Ok(());
        }
        Command::Manpage => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()).map_err(|e| e.to_string())?;
            return Ok(());
        }
        _ => {}
    }
    let req = request_for(cli.command).expect("local commands returned above");
    let paths = Paths::from_env();
    let socket = paths.socket();
    let show_progress = kind == "scan" && out == Output::Text && std::io::stderr().is_terminal();
    let mut on_progress = |p: &ipc::ScanProgress| {
        if show_progress {
            let _ = write!(
                std::io::stderr(),
                "\rScanning: {} file(s) scanned, {} threat(s) detected ",
                p.files_scanned, p.threats_detected
            );
        }
    };
    let reply = ipc::call(&socket, &req, &mut on_progress).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => format!(
            "the daemon (wdavdaemon) is not running: cannot connect to {}. Start it with `systemctl start mdatp`.",
            socket.display()
        ),
        std::io::ErrorKind::PermissionDenied => {
            format!("permission denied: cannot connect to {}", socket.display())
        }
        _ => format!("cannot talk to the daemon at {}: {e}", socket.display()),
    })?;
    if show_progress {
        eprintln!();
    }
    match reply {
        Reply::Ok { data, message, .. } => {
            match out {
                Output::Json => {
                    let v = if kind == "health" {
                        health_json(&data, field.as_deref())?
                    } else if data.is_null() {
                        serde_json::json!({"message": message})
                    } else {
                        data
                    };
                    println!("{}", serde_json::to_string_pretty(&v).expect("json"));
                }
                Output::Text => {
                    print!("{}", render_text(kind, &data, message.as_deref(), field.as_deref(), details.as_deref())?);
                }
            }
            Ok(())
        }
        Reply::Err { error, .. } => Err(error),
        Reply::Progress { .. } => Err("unexpected reply from the daemon".into()),
    }
}

/// `mdatp` entry point: exit 0 on success, 1 with a one-line message on failure, 2 on usage errors.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            let line = e.replace('\n', " ");
            eprintln!("Error: {line}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn reference_spellings_parse() {
        for line in [
            "mdatp health --field healthy",
            "mdatp health --output json",
            "mdatp --output json health",
            "mdatp config real-time-protection --value enabled",
            "mdatp config passive-mode --value disabled",
            "mdatp config maximum-on-demand-scan-threads --value 4",
            "mdatp config proxy set --value http://proxy:8080",
            "mdatp config proxy clear",
            "mdatp config network-protection enforcement-level --value block",
            "mdatp scan custom --path /tmp --ignore-exclusions",
            "mdatp threat quarantine restore threat-id --id X --destination-path /tmp",
            "mdatp threat quarantine restore threat-path --path /tmp/x",
            "mdatp threat policy set --type archive_bomb --action block",
            "mdatp threat allowed add --name EICAR",
            "mdatp exclusion folder add --path /var/*/tmp --scope global",
            "mdatp exclusion process remove --name cat",
            "mdatp exclusion extension add --name .log",
            "mdatp definitions restore",
            "mdatp log level set --level debug",
            "mdatp edr tag set --name GROUP --value web",
            "mdatp edr tag remove --tag-name GROUP",
            "mdatp edr group-ids --group-id g1",
        ] {
            let args: Vec<&str> = line.split(' ').collect();
            Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
        for bad in ["mdatp config maximum-on-demand-scan-threads --value 65", "mdatp config scan-archives --value maybe"] {
            let args: Vec<&str> = bad.split(' ').collect();
            assert!(Cli::try_parse_from(&args).is_err(), "{bad}");
        }
    }

    #[test]
    fn health_text_layout() {
        let fields = serde_json::json!([
            {"name": "healthy", "value": true, "managed": false},
            {"name": "definitions_status", "value": "up_to_date", "managed": false},
            {"name": "passive_mode_enabled", "value": false, "managed": true},
        ]);
        let f = fields.as_array().unwrap();
        assert_eq!(health_text(f, Some("healthy"), None).unwrap(), "true\n");
        assert_eq!(health_text(f, Some("passive_mode_enabled"), None).unwrap(), "false [managed]\n");
        assert_eq!(health_text(f, Some("definitions_status"), None).unwrap(), "\"up_to_date\"\n");
        assert!(health_text(f, Some("nope"), None).unwrap_err().contains("healthy"));
        assert_eq!(health_text(f, None, Some("definitions")).unwrap().lines().count(), 1);
    }
}
