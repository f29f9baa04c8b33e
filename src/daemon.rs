//! `wdavdaemon`: the long-running root daemon that owns all state.
//!
//! It serves the `mdatp` command line on a Unix socket (one thread per connection, one JSON
//! request each, see `ipc.rs`), checks the caller's credentials, holds the configuration in
//! force and the compiled definitions, runs on-demand scans and remediates detections.
//! A watcher thread picks up changes to the configuration files and definitions directories.

#![forbid(unsafe_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::{error, info, warn};

use crate::config::{
    ConfigFile, Effective, EnforcementLevel, LogLevel, NetworkEnforcement, ThreatAction, ThreatTypeAction,
    ThreatTypeKey, ThreatTypeSetting, Toggle,
};
use crate::engine::{Definitions, Detection};
use crate::exclusions::{Exclusion, ExclusionMatcher};
use crate::ipc::{self, Reply, Request, ScanKind, ScanProgress};
use crate::paths::{path_to_string, string_to_path, Paths};
use crate::quarantine;
use crate::scan::file::{scan_file, FileOutcome, FileScanOptions};
use crate::scan::walk::{self, FsFilter, WalkOptions};
use crate::store::{now, state, ScanRecord, Store, Threat};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How often the watcher looks at the configuration files and definitions directories.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// Commands served at once, for root (and the daemon's own uid) and for everyone else together;
/// more are turned away with a message (bounded threads and fds).
const ADMIN_CONNECTIONS: usize = 64;
const OTHER_CONNECTIONS: usize = 64;
/// Commands one unprivileged user may have open at once.
const PER_USER_CONNECTIONS: usize = 8;
/// How long a caller has to send its request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Connection counts by caller, so no user can lock others (root above all) out.
#[derive(Default)]
struct ConnLimits {
    counts: Mutex<(usize, usize, std::collections::HashMap<u32, usize>)>,
}

impl ConnLimits {
    fn acquire(&self, uid: u32, admin: bool) -> bool {
        let mut g = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (admins, others, per) = &mut *g;
        if admin {
            if *admins >= ADMIN_CONNECTIONS {
                return false;
            }
            *admins += 1;
            return true;
        }
        let mine = per.entry(uid).or_insert(0);
        if *others >= OTHER_CONNECTIONS || *mine >= PER_USER_CONNECTIONS {
            return false;
        }
        *mine += 1;
        *others += 1;
        true
    }

    fn release(&self, uid: u32, admin: bool) {
        let mut g = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (admins, others, per) = &mut *g;
        if admin {
            *admins -= 1;
            return;
        }
        *others -= 1;
        if let Some(n) = per.get_mut(&uid) {
            *n -= 1;
            if *n == 0 {
                per.remove(&uid);
            }
        }
    }
}

/// What identifies a file's content cheaply: (path, len, mtime ns, inode), or absent.
type Fingerprint = Vec<(PathBuf, u64, i128, u64)>;

fn fingerprint_files(files: &[PathBuf]) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .filter_map(|p| {
            let m = fs::metadata(p).ok()?;
            Some((p.clone(), m.len(), i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()), m.ino()))
        })
        .collect()
}

fn dir_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

struct ConfigState {
    managed: ConfigFile,
    local: ConfigFile,
    effective: Arc<Effective>,
    matcher: Arc<ExclusionMatcher>,
    managed_error: Option<String>,
    local_error: Option<String>,
    fp: Fingerprint,
}

struct DefsState {
    defs: Arc<Definitions>,
    loaded_at: i64,
    error: Option<String>,
    fp: Fingerprint,
}

struct ActiveScan {
    id: String,
    cancel: Arc<AtomicBool>,
}

pub struct Daemon {
    paths: Paths,
    cfg: RwLock<ConfigState>,
    defs: RwLock<DefsState>,
    store: Mutex<Store>,
    scan: Mutex<Option<ActiveScan>>,
    log: Option<crate::logging::LevelHandle>,
    machine_guid: String,
    /// Serialises read-modify-write of `wdavcfg`.
    local_write: Mutex<()>,
}

fn err<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

impl Daemon {
    /// Opens state, loads configuration and definitions, repairs interrupted quarantines.
    pub fn open(paths: Paths, log: Option<crate::logging::LevelHandle>) -> anyhow::Result<Arc<Daemon>> {
        for d in [paths.state_dir(), paths.updated_definitions(), paths.log_dir(), paths.config_dir()] {
            fs::create_dir_all(&d).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", d.display()))?;
        }
        fs::create_dir_all(paths.managed_config().parent().expect("has parent"))?;
        quarantine::ensure_dir(&paths.quarantine_dir())?;
        let store = Store::open(&paths.database())
            .map_err(|e| anyhow::anyhow!("cannot open the database {}: {e}", paths.database().display()))?;
        let n = store.mark_interrupted_scans()?;
        if n > 0 {
            warn!("{n} scan(s) were interrupted by the daemon stopping");
        }
        for note in quarantine::recover(&paths.quarantine_dir(), &store)? {
            warn!("{note}");
        }
        let guid_file = paths.state_dir().join("machine_guid");
        let machine_guid = match fs::read_to_string(&guid_file) {
            Ok(s) if uuid::Uuid::parse_str(s.trim()).is_ok() => s.trim().to_string(),
            _ => {
                let g = uuid::Uuid::new_v4().to_string();
                fs::write(&guid_file, &g)?;
                g
            }
        };
        let d = Arc::new(Daemon {
            cfg: RwLock::new(ConfigState {
                managed: ConfigFile::default(),
                local: ConfigFile::default(),
                effective: Arc::new(Effective::merge(&ConfigFile::default(), &ConfigFile::default())),
                matcher: Arc::new(ExclusionMatcher::default()),
                managed_error: None,
                local_error: None,
                fp: Vec::new(),
            }),
            defs: RwLock::new(DefsState { defs: Arc::new(Definitions::builtin()), loaded_at: now(), error: None, fp: Vec::new() }),
            store: Mutex::new(store),
            scan: Mutex::new(None),
            log,
            machine_guid,
            local_write: Mutex::new(()),
            paths,
        });
        d.reload_config();
        let _ = d.reload_definitions();
        Ok(d)
    }

    fn config_files(&self) -> Vec<PathBuf> {
        vec![self.paths.managed_config(), self.paths.local_config()]
    }

    /// Re-reads both configuration files. A file that fails to parse keeps its last good
    /// content in force, and the error shows in `health_issues`.
    pub fn reload_config(&self) {
        let fp = fingerprint_files(&self.config_files());
        let managed = ConfigFile::load(&self.paths.managed_config());
        let local = ConfigFile::load(&self.paths.local_config());
        let mut st = self.cfg.write().unwrap_or_else(|e| e.into_inner());
        st.fp = fp;
        match managed {
            Ok(m) => {
                st.managed = m;
                st.managed_error = None;
            }
            Err(e) => {
                error!("rejected configuration, keeping the last good one: {e}");
                st.managed_error = Some(e.to_string());
            }
        }
        match local {
            Ok(l) => {
                st.local = l;
                st.local_error = None;
            }
            Err(e) => {
                error!("rejected configuration, keeping the last good one: {e}");
                st.local_error = Some(e.to_string());
            }
        }
        let eff = Effective::merge(&st.managed, &st.local);
        if eff != *st.effective {
            info!("configuration in force: enforcement level {}", eff.enforcement_level.value.as_str());
        }
        st.matcher = Arc::new(ExclusionMatcher::new(&eff.exclusions));
        if let Some(h) = &self.log {
            h.set(eff.log_level.value);
        }
        st.effective = Arc::new(eff);
    }

    pub fn effective(&self) -> Arc<Effective> {
        self.cfg.read().unwrap_or_else(|e| e.into_inner()).effective.clone()
    }

    fn matcher(&self) -> Arc<ExclusionMatcher> {
        self.cfg.read().unwrap_or_else(|e| e.into_inner()).matcher.clone()
    }

    fn definitions_files(&self) -> Vec<PathBuf> {
        let mut v = dir_files(&self.paths.packaged_definitions());
        v.extend(dir_files(&self.paths.updated_definitions()));
        v
    }

    pub fn definitions(&self) -> Arc<Definitions> {
        self.defs.read().unwrap_or_else(|e| e.into_inner()).defs.clone()
    }

    /// Loads the definitions directories. On failure the definitions in force stay (on the
    /// first load: the last good snapshot, then the packaged set, then the built-in ones).
    pub fn reload_definitions(&self) -> Result<String, String> {
        let fp = fingerprint_files(&self.definitions_files());
        let packaged = self.paths.packaged_definitions();
        let updated = self.paths.updated_definitions();
        let res = Definitions::load(&[&packaged, &updated]);
        let mut st = self.defs.write().unwrap_or_else(|e| e.into_inner());
        st.fp = fp;
        match res {
            Ok(defs) => {
                let version = defs.version().to_string();
                let changed = version != st.defs.version();
                st.defs = Arc::new(defs);
                st.loaded_at = now();
                st.error = None;
                drop(st);
                if changed {
                    info!("definitions {version} loaded");
                    if let Err(e) = self.snapshot_definitions(&version) {
                        warn!("could not keep a copy of definitions {version} for restore: {e}");
                    }
                }
                Ok(version)
            }
            Err(e) => {
                let msg = format!("definitions rejected, keeping version {}: {e}", st.defs.version());
                error!("{msg}");
                st.error = Some(e.to_string());
                if st.defs.version() == Definitions::builtin().version() {
                    let snap = self.paths.state_dir().join("definitions.current");
                    for dirs in [vec![packaged.as_path(), snap.as_path()], vec![packaged.as_path()]] {
                        if let Ok(d) = Definitions::load(&dirs) {
                            warn!("using definitions {} from {}", d.version(), dirs.last().unwrap().display());
                            st.defs = Arc::new(d);
                            st.loaded_at = now();
                            break;
                        }
                    }
                }
                Err(msg)
            }
        }
    }

    /// Keeps `definitions.current` (what is in force) and `definitions.previous` (what was).
    fn snapshot_definitions(&self, version: &str) -> std::io::Result<()> {
        let state = self.paths.state_dir();
        let cur = state.join("definitions.current");
        let prev = self.paths.definitions_backup();
        if fs::read_to_string(cur.join("VERSION")).ok().as_deref() == Some(version) {
            return Ok(());
        }
        let tmp = state.join("definitions.snapshot.tmp");
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp)?;
        for f in dir_files(&self.paths.updated_definitions()) {
            fs::copy(&f, tmp.join(f.file_name().expect("file")))?;
        }
        fs::write(tmp.join("VERSION"), version)?;
        if cur.exists() {
            let _ = fs::remove_dir_all(&prev);
            fs::rename(&cur, &prev)?;
        }
        fs::rename(&tmp, &cur)
    }

    /// `mdatp definitions restore`: puts the previous set back in force.
    fn restore_definitions(&self) -> Result<String, String> {
        let prev = self.paths.definitions_backup();
        let Ok(old_version) = fs::read_to_string(prev.join("VERSION")) else {
            return err("no previous definitions to restore");
        };
        let updated = self.paths.updated_definitions();
        let staging = self.paths.state_dir().join("definitions.restore.tmp");
        let _ = fs::remove_dir_all(&staging);
        (|| -> std::io::Result<()> {
            fs::create_dir_all(&staging)?;
            for f in dir_files(&prev) {
                if f.file_name().is_some_and(|n| n != "VERSION") {
                    fs::copy(&f, staging.join(f.file_name().expect("file")))?;
                }
            }
            let old = self.paths.state_dir().join("definitions.replaced.tmp");
            let _ = fs::remove_dir_all(&old);
            fs::rename(&updated, &old)?;
            fs::rename(&staging, &updated)?;
            let _ = fs::remove_dir_all(&old);
            Ok(())
        })()
        .map_err(|e| format!("could not restore definitions {old_version}: {e}"))?;
        self.reload_definitions()
    }

    fn watch_once(&self) {
        let cfg_fp = fingerprint_files(&self.config_files());
        if cfg_fp != self.cfg.read().unwrap_or_else(|e| e.into_inner()).fp {
            self.reload_config();
        }
        let defs_fp = fingerprint_files(&self.definitions_files());
        if defs_fp != self.defs.read().unwrap_or_else(|e| e.into_inner()).fp {
            let _ = self.reload_definitions();
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a detection and remediates it as the configuration says. Returns the threat
    /// recorded, or `None` when it is allowed or its type is switched off.
    pub fn handle_detection(&self, path: &Path, det: &Detection, inner: Option<String>, source: &str) -> Option<Threat> {
        let eff = self.effective();
        if eff.is_allowed_threat(&det.threat_name) {
            info!("allowed threat {:?} in {:?} not acted on", det.threat_name, path_to_string(path));
            return None;
        }
        let action = eff.threat_type_action(det.threat_type);
        if action == ThreatTypeAction::Off {
            return None;
        }
        let remediate = action == ThreatTypeAction::Block && eff.enforcement_level.value.remediates();
        let path_s = path_to_string(path);
        let store = self.store();
        // The same file found again while still in place is one threat, not a new one.
        let existing = store
            .threats_in_state(state::DETECTED)
            .ok()
            .and_then(|v| v.into_iter().find(|t| t.path == path_s && t.name == det.threat_name));
        let t = match existing {
            Some(t) => t,
            None => {
                let t = Threat {
                    id: uuid::Uuid::new_v4().to_string(),
                    name: det.threat_name.clone(),
                    threat_type: det.threat_type.as_str().to_string(),
                    path: path_s,
                    inner,
                    sha256: None,
                    size: None,
                    mode: None,
                    uid: None,
                    gid: None,
                    detected_at: now(),
                    source: source.to_string(),
                    state: state::DETECTED.into(),
                    updated_at: now(),
                };
                if let Err(e) = store.insert_threat(&t) {
                    error!("could not record threat {:?} in {:?}: {e}", t.name, t.path);
                }
                t
            }
        };
        warn!(
            "threat {:?} ({}) detected in {:?}{}",
            t.name,
            t.threat_type,
            t.path,
            if remediate { ", quarantining" } else { ", reported only" }
        );
        if remediate {
            if let Err(e) = quarantine::quarantine(&self.paths.quarantine_dir(), &store, &t) {
                error!("could not quarantine {:?}: {e}", t.path);
            }
        }
        store.threat(&t.id).ok().flatten()
    }

    fn scan_options(&self, cancel: Option<Arc<AtomicBool>>) -> FileScanOptions {
        FileScanOptions { scan_archives: self.effective().scan_archives.value, cancel, ..Default::default() }
    }

    /// Runs an on-demand scan, streaming progress to `out` (best effort).
    fn run_scan(self: &Arc<Self>, kind: ScanKind, paths: Vec<String>, ignore_exclusions: bool, out: &mut UnixStream) -> Reply {
        let roots: Vec<PathBuf> = match kind {
            ScanKind::Quick => walk::quick_scan_roots(),
            ScanKind::Full => walk::full_scan_roots(),
            ScanKind::Custom => {
                if paths.is_empty() {
                    return Reply::err("scan custom needs --path");
                }
                let mut v = Vec::new();
                for p in &paths {
                    let pb = string_to_path(p);
                    if !pb.is_absolute() {
                        return Reply::err(format!("--path must be absolute: {p}"));
                    }
                    if fs::symlink_metadata(&pb).is_err() {
                        return Reply::err(format!("--path does not exist: {p}"));
                    }
                    v.push(pb);
                }
                v
            }
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let id = uuid::Uuid::new_v4().to_string();
        {
            let mut active = self.scan.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(a) = &*active {
                return Reply::err(format!("a scan is already running (id {}); wait for it or run `mdatp scan cancel`", a.id));
            }
            *active = Some(ActiveScan { id: id.clone(), cancel: cancel.clone() });
        }
        let record = ScanRecord {
            id: id.clone(),
            scan_type: kind.as_str().into(),
            paths: roots.iter().map(|p| path_to_string(p)).collect(),
            started_at: now(),
            finished_at: None,
            state: "running".into(),
            files_scanned: 0,
            threats_detected: 0,
        };
        if let Err(e) = self.store().insert_scan(&record) {
            *self.scan.lock().unwrap_or_else(|e| e.into_inner()) = None;
            return Reply::err(format!("could not record the scan: {e}"));
        }
        info!("{} scan {id} started on {:?}", kind.as_str(), record.paths);
        let eff = self.effective();
        let opts = WalkOptions {
            threads: eff.maximum_on_demand_scan_threads.value.clamp(1, 64) as usize,
            exclusions: if ignore_exclusions { None } else { Some((*self.matcher()).clone()) },
            filesystem_filter: match kind {
                ScanKind::Custom => FsFilter::Custom,
                _ => FsFilter::FullScan,
            },
            mount_table: None,
            // The agent's own state: quarantine items and definitions (YARA rules hold their
            // strings in clear and would detect themselves).
            skip_paths: vec![
                self.paths.quarantine_dir(),
                self.paths.packaged_definitions(),
                self.paths.updated_definitions(),
                self.paths.state_dir().join("definitions.current"),
                self.paths.definitions_backup(),
                self.paths.state_dir().join("definitions.snapshot.tmp"),
                self.paths.state_dir().join("definitions.restore.tmp"),
                self.paths.state_dir().join("definitions.replaced.tmp"),
            ],
        };
        let progress = Arc::new(walk::Progress::default());
        let threats = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let me = self.clone();
        let worker = {
            let (cancel, progress, threats, done, id) = (cancel.clone(), progress.clone(), threats.clone(), done.clone(), id.clone());
            std::thread::Builder::new().name("scan".into()).spawn(move || {
                let defs = me.definitions();
                let fopts = me.scan_options(Some(cancel.clone()));
                let scan = |p: &Path| scan_file(p, &defs, &fopts);
                let on_result = |p: &Path, o: &FileOutcome| {
                    if let FileOutcome::Detected { detection, inner } = o {
                        if me.handle_detection(p, detection, inner.clone(), &id).is_some() {
                            threats.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                };
                let summary = walk::walk(&roots, &opts, &cancel, &progress, &scan, &on_result);
                done.store(true, Ordering::Release);
                summary
            })
        };
        let worker = match worker {
            Ok(w) => w,
            Err(e) => {
                *self.scan.lock().unwrap_or_else(|e| e.into_inner()) = None;
                return Reply::err(format!("could not start the scan: {e}"));
            }
        };
        let mut client_gone = false;
        // Wake often so the reply follows the end of the scan at once; report progress every
        // 200 ms.
        let mut last_progress = Instant::now();
        while !done.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
            if !client_gone && last_progress.elapsed() >= Duration::from_millis(200) {
                last_progress = Instant::now();
                let p = ScanProgress {
                    files_scanned: progress.files_scanned.load(Ordering::Relaxed),
                    threats_detected: threats.load(Ordering::Relaxed),
                    current: None,
                };
                client_gone = ipc::write_line(out, &Reply::Progress { progress: p }).is_err();
            }
        }
        let summary = worker.join().unwrap_or_default();
        *self.scan.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let threats = threats.load(Ordering::Relaxed);
        let st = if summary.cancelled { "cancelled" } else { "completed" };
        if let Err(e) = self.store().finish_scan(&id, st, summary.files_scanned, threats) {
            error!("could not record the end of scan {id}: {e}");
        }
        info!("scan {id} {st}: {} file(s) scanned, {threats} threat(s) detected", summary.files_scanned);
        let data = json!({
            "id": id, "type": kind.as_str(), "state": st,
            "files_scanned": summary.files_scanned, "threats_detected": threats,
            "errors": summary.errors,
        });
        if summary.cancelled {
            Reply::Err { ok: false, error: format!("Scan was cancelled: {} file(s) scanned, {threats} threat(s) detected", summary.files_scanned) }
        } else {
            Reply::ok(None, data)
        }
    }

    /// Changes the local settings file with `f`, refusing keys the managed file sets.
    fn update_local(&self, f: impl FnOnce(&mut ConfigFile, &Effective) -> Result<(), String>) -> Result<(), String> {
        let _guard = self.local_write.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.paths.local_config();
        let mut local = ConfigFile::load(&path).map_err(|e| {
            format!("the local settings file is invalid, fix or remove it first: {e}")
        })?;
        let eff = self.effective();
        f(&mut local, &eff)?;
        let text = local.to_json();
        ConfigFile::parse(&path.display().to_string(), &text).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, text.as_bytes()).and_then(|_| fs::rename(&tmp, &path)).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        self.reload_config();
        Ok(())
    }

    fn set_config(&self, setting: &str, value: Option<String>) -> Result<(), String> {
        const MANAGED: &str = "Configuration property cannot be changed: it is set by the managed configuration (mdatp_managed.json)";
        let val = value.clone().unwrap_or_default();
        let toggle = || -> Result<bool, String> {
            match val.as_str() {
                "enabled" => Ok(true),
                "disabled" => Ok(false),
                other => Err(format!("invalid value {other:?} for {setting}: expected enabled or disabled")),
            }
        };
        let managed_guard = |m: bool| if m { err(MANAGED) } else { Ok(()) };
        match setting {
            "real-time-protection" | "passive-mode" => {
                let on = toggle()?;
                let level = match (setting, on) {
                    ("real-time-protection", true) => EnforcementLevel::RealTime,
                    ("real-time-protection", false) => EnforcementLevel::OnDemand,
                    ("passive-mode", true) => EnforcementLevel::Passive,
                    _ => EnforcementLevel::RealTime,
                };
                self.update_local(|l, eff| {
                    managed_guard(eff.enforcement_level.managed)?;
                    let av = l.antivirus_engine.get_or_insert_with(Default::default);
                    av.enforcement_level = Some(level);
                    av.passive_mode = None;
                    av.enable_real_time_protection = None;
                    Ok(())
                })
            }
            "behavior-monitoring" => {
                let on = toggle()?;
                self.update_local(|l, eff| {
                    managed_guard(eff.behavior_monitoring.managed)?;
                    l.antivirus_engine.get_or_insert_with(Default::default).behavior_monitoring = Some(Toggle::from_bool(on));
                    Ok(())
                })
            }
            "scan-archives" | "scan-after-definition-update" | "enable-file-hash-computation" => {
                let on = toggle()?;
                self.update_local(|l, eff| {
                    let av = l.antivirus_engine.get_or_insert_with(Default::default);
                    match setting {
                        "scan-archives" => {
                            managed_guard(eff.scan_archives.managed)?;
                            av.scan_archives = Some(on)
                        }
                        "scan-after-definition-update" => {
                            managed_guard(eff.scan_after_definition_update.managed)?;
                            av.scan_after_definition_update = Some(on)
                        }
                        _ => {
                            managed_guard(eff.enable_file_hash_computation.managed)?;
                            av.enable_file_hash_computation = Some(on)
                        }
                    }
                    Ok(())
                })
            }
            "maximum-on-demand-scan-threads" => {
                let n: i64 = val
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| format!("invalid value {val:?} for {setting}: expected a number from 1 to 64"))?;
                self.update_local(|l, eff| {
                    managed_guard(eff.maximum_on_demand_scan_threads.managed)?;
                    l.antivirus_engine.get_or_insert_with(Default::default).maximum_on_demand_scan_threads = Some(n);
                    Ok(())
                })
            }
            "cloud" => {
                let on = toggle()?;
                self.update_local(|l, eff| {
                    managed_guard(eff.cloud_enabled.managed)?;
                    l.cloud_service.get_or_insert_with(Default::default).enabled = Some(on);
                    Ok(())
                })
            }
            "cloud-diagnostic" => {
                let v = match val.as_str() {
                    "enabled" | "required" => "required",
                    "disabled" | "optional" => "optional",
                    other => return err(format!("invalid value {other:?} for {setting}: expected enabled or disabled")),
                };
                self.update_local(|l, eff| {
                    managed_guard(eff.cloud_diagnostic_level.managed)?;
                    l.cloud_service.get_or_insert_with(Default::default).diagnostic_level = Some(v.into());
                    Ok(())
                })
            }
            "cloud-automatic-sample-submission" => {
                let v = match val.as_str() {
                    "enabled" | "safe" => "safe",
                    "disabled" | "none" => "none",
                    "all" => "all",
                    other => return err(format!("invalid value {other:?} for {setting}: expected none, safe or all")),
                };
                self.update_local(|l, eff| {
                    managed_guard(eff.cloud_sample_submission.managed)?;
                    l.cloud_service.get_or_insert_with(Default::default).automatic_sample_submission_consent = Some(v.into());
                    Ok(())
                })
            }
            "proxy" => {
                if let Some(p) = &value {
                    crate::config::validate_proxy(p)?;
                }
                self.update_local(|l, eff| {
                    managed_guard(eff.proxy.managed)?;
                    l.cloud_service.get_or_insert_with(Default::default).proxy = value.clone();
                    Ok(())
                })
            }
            "network-protection-enforcement-level" => {
                let lvl = match val.as_str() {
                    "disabled" => NetworkEnforcement::Disabled,
                    "audit" => NetworkEnforcement::Audit,
                    "block" => NetworkEnforcement::Block,
                    other => return err(format!("invalid value {other:?} for {setting}: expected disabled, audit or block")),
                };
                self.update_local(|l, eff| {
                    managed_guard(eff.network_protection.managed)?;
                    l.network_protection.get_or_insert_with(Default::default).enforcement_level = Some(lvl);
                    Ok(())
                })
            }
            other => err(format!("unknown configuration setting {other:?}")),
        }
    }

    fn find_threat(&self, id: &str) -> Result<Threat, String> {
        self.store()
            .threat(id)
            .map_err(|e| format!("database: {e}"))?
            .ok_or_else(|| format!("no threat with id {id}"))
    }

    fn check_restore_allowed(&self) -> Result<(), String> {
        if self.effective().is_action_disallowed(ThreatAction::Restore) {
            return err("restoring from quarantine is disallowed by the managed configuration (disallowedThreatActions)");
        }
        Ok(())
    }

    fn restore(&self, t: &Threat, dest: Option<String>) -> Result<PathBuf, String> {
        self.check_restore_allowed()?;
        let dest = dest.map(|d| string_to_path(&d));
        if let Some(d) = &dest {
            if !d.is_absolute() {
                return err(format!("--destination-path must be absolute: {}", d.display()));
            }
        }
        let store = self.store();
        let p = quarantine::restore(&self.paths.quarantine_dir(), &store, t, dest.as_deref()).map_err(|e| e.to_string())?;
        info!("threat {} restored to {:?}", t.id, path_to_string(&p));
        Ok(p)
    }

    /// Answers one request. `out` receives progress lines for scans.
    pub fn handle(self: &Arc<Self>, req: Request, out: &mut UnixStream) -> Reply {
        let ok = |msg: &str| Reply::ok(Some(msg.to_string()), Value::Null);
        let res = |r: Result<(), String>, msg: &str| match r {
            Ok(()) => ok(msg),
            Err(e) => Reply::err(e),
        };
        match req {
            Request::Health => Reply::ok(None, self.health()),
            Request::SetConfig { setting, value } => res(self.set_config(&setting, value), "Configuration property updated"),
            Request::Scan { kind, paths, ignore_exclusions } => self.run_scan(kind, paths, ignore_exclusions, out),
            Request::ScanCancel => match &*self.scan.lock().unwrap_or_else(|e| e.into_inner()) {
                Some(a) => {
                    a.cancel.store(true, Ordering::Relaxed);
                    ok("Scan cancelled")
                }
                None => Reply::err("no scan is running"),
            },
            Request::ScanList => match self.store().scans() {
                Ok(v) => Reply::ok(None, json!(v)),
                Err(e) => Reply::err(format!("database: {e}")),
            },
            Request::ThreatList => match self.store().threats() {
                Ok(v) => Reply::ok(None, json!(v)),
                Err(e) => Reply::err(format!("database: {e}")),
            },
            Request::ThreatGet { id } => match self.find_threat(&id) {
                Ok(t) => Reply::ok(None, json!(t)),
                Err(e) => Reply::err(e),
            },
            Request::QuarantineList => match self.store().threats_in_state(state::QUARANTINED) {
                Ok(v) => Reply::ok(None, json!(v)),
                Err(e) => Reply::err(format!("database: {e}")),
            },
            Request::QuarantineAdd { id } => {
                let r = self.find_threat(&id).and_then(|t| {
                    if t.state != state::DETECTED {
                        return err(format!("threat {id} cannot be quarantined in state {}", t.state));
                    }
                    let store = self.store();
                    quarantine::quarantine(&self.paths.quarantine_dir(), &store, &t).map_err(|e| e.to_string())
                });
                res(r, "Threat quarantined")
            }
            Request::QuarantineRemove { id } => {
                let r = self.find_threat(&id).and_then(|t| {
                    quarantine::remove(&self.paths.quarantine_dir(), &self.store(), &t).map_err(|e| e.to_string())
                });
                res(r, "Threat removed from quarantine")
            }
            Request::QuarantineRemoveAll => {
                let store = self.store();
                let list = match store.threats_in_state(state::QUARANTINED) {
                    Ok(l) => l,
                    Err(e) => return Reply::err(format!("database: {e}")),
                };
                for t in &list {
                    if let Err(e) = quarantine::remove(&self.paths.quarantine_dir(), &store, t) {
                        return Reply::err(e.to_string());
                    }
                }
                ok(&format!("{} threat(s) removed from quarantine", list.len()))
            }
            Request::RestoreById { id, destination } => {
                match self.find_threat(&id).and_then(|t| self.restore(&t, destination)) {
                    Ok(p) => Reply::ok(Some(format!("Threat restored to {}", path_to_string(&p))), json!({"path": path_to_string(&p)})),
                    Err(e) => Reply::err(e),
                }
            }
            Request::RestoreByPath { path, destination } => {
                let found = self.store().threats_in_state(state::QUARANTINED).map(|v| {
                    v.into_iter().filter(|t| t.path == path).max_by_key(|t| t.detected_at)
                });
                match found {
                    Ok(Some(t)) => match self.restore(&t, destination) {
                        Ok(p) => Reply::ok(Some(format!("Threat restored to {}", path_to_string(&p))), json!({"path": path_to_string(&p)})),
                        Err(e) => Reply::err(e),
                    },
                    Ok(None) => Reply::err(format!("no quarantined threat with original path {path}")),
                    Err(e) => Reply::err(format!("database: {e}")),
                }
            }
            Request::AllowedAdd { name } => {
                if self.effective().is_action_disallowed(ThreatAction::Allow) {
                    return Reply::err("allowing threats is disallowed by the managed configuration (disallowedThreatActions)");
                }
                let r = self.update_local(|l, _| {
                    let list = l.antivirus_engine.get_or_insert_with(Default::default).allowed_threats.get_or_insert_with(Vec::new);
                    if list.contains(&name) {
                        return err(format!("{name:?} is already allowed"));
                    }
                    list.push(name.clone());
                    Ok(())
                });
                res(r, "Threat allowed")
            }
            Request::AllowedRemove { name } => {
                let r = self.update_local(|l, eff| {
                    if eff.allowed_threats.iter().any(|(t, m)| *t == name && *m) {
                        return err(format!("{name:?} is allowed by the managed configuration and cannot be removed"));
                    }
                    let list = l.antivirus_engine.get_or_insert_with(Default::default).allowed_threats.get_or_insert_with(Vec::new);
                    let before = list.len();
                    list.retain(|t| *t != name);
                    if list.len() == before {
                        return err(format!("{name:?} is not an allowed threat"));
                    }
                    Ok(())
                });
                res(r, "Threat removed from allowed list")
            }
            Request::AllowedList => {
                let v: Vec<Value> = self.effective().allowed_threats.iter().map(|(t, m)| json!({"name": t, "managed": m})).collect();
                Reply::ok(None, json!(v))
            }
            Request::ThreatPolicySet { threat_type, action } => {
                let key = match threat_type.as_str() {
                    "potentially_unwanted_application" => ThreatTypeKey::PotentiallyUnwantedApplication,
                    "archive_bomb" => ThreatTypeKey::ArchiveBomb,
                    other => return Reply::err(format!("unknown threat type {other:?}: expected potentially_unwanted_application or archive_bomb")),
                };
                let value = match action.as_str() {
                    "block" => ThreatTypeAction::Block,
                    "audit" => ThreatTypeAction::Audit,
                    "off" => ThreatTypeAction::Off,
                    other => return Reply::err(format!("unknown action {other:?}: expected block, audit or off")),
                };
                let r = self.update_local(|l, eff| {
                    let managed = match key {
                        ThreatTypeKey::PotentiallyUnwantedApplication => eff.pua.managed,
                        ThreatTypeKey::ArchiveBomb => eff.archive_bomb.managed,
                    };
                    if managed {
                        return err("Configuration property cannot be changed: it is set by the managed configuration (mdatp_managed.json)");
                    }
                    let list = l.antivirus_engine.get_or_insert_with(Default::default).threat_type_settings.get_or_insert_with(Vec::new);
                    list.retain(|s| s.key != key);
                    list.push(ThreatTypeSetting { key, value });
                    Ok(())
                });
                res(r, "Configuration property updated")
            }
            Request::ExclusionAdd { exclusion } => {
                let r = crate::exclusions::validate(&exclusion).and_then(|_| {
                    self.update_local(|l, eff| {
                        if eff.exclusions.iter().any(|e| e.kind == exclusion.kind && e.scopes == exclusion.scopes) {
                            return err("the exclusion already exists");
                        }
                        let es = l.exclusion_settings.get_or_insert_with(Default::default);
                        es.exclusions
                            .get_or_insert_with(Vec::new)
                            .push(crate::config::ExclusionEntry::from_exclusion(&Exclusion { managed: false, ..exclusion.clone() }));
                        Ok(())
                    })
                });
                res(r, "Exclusion added successfully")
            }
            Request::ExclusionRemove { exclusion } => {
                let r = self.update_local(|l, eff| {
                    if eff.exclusions.iter().any(|e| e.managed && e.kind == exclusion.kind) {
                        return err("the exclusion is set by the managed configuration and cannot be removed with the command line");
                    }
                    let mut removed = false;
                    let same = |e: &crate::config::ExclusionEntry| {
                        let x = e.to_exclusion(false);
                        x.kind == exclusion.kind && x.scopes == exclusion.scopes
                    };
                    if let Some(list) = l.exclusion_settings.as_mut().and_then(|s| s.exclusions.as_mut()) {
                        let n = list.len();
                        list.retain(|e| !same(e));
                        removed |= list.len() != n;
                    }
                    if let Some(list) = l.antivirus_engine.as_mut().and_then(|s| s.exclusions.as_mut()) {
                        let n = list.len();
                        list.retain(|e| !same(e));
                        removed |= list.len() != n;
                    }
                    if !removed {
                        return err("no such exclusion");
                    }
                    Ok(())
                });
                res(r, "Exclusion removed successfully")
            }
            Request::ExclusionList => Reply::ok(None, json!(self.effective().exclusions)),
            Request::DefinitionsUpdate => match self.reload_definitions() {
                Ok(v) => Reply::ok(Some(format!("Definitions {v} are in force")), json!({"definitions_version": v})),
                Err(e) => Reply::err(e),
            },
            Request::DefinitionsRestore => match self.restore_definitions() {
                Ok(v) => Reply::ok(Some(format!("Definitions restored to {v}")), json!({"definitions_version": v})),
                Err(e) => Reply::err(e),
            },
            Request::LogLevelSet { level } => match LogLevel::parse(&level) {
                Some(lvl) => res(
                    self.update_local(|l, eff| {
                        if eff.log_level.managed {
                            return err("the log level is set by the managed configuration");
                        }
                        l.log_level = Some(lvl);
                        Ok(())
                    }),
                    &format!("Log level configured successfully to {}", lvl.as_str()),
                ),
                None => Reply::err(format!("invalid log level {level:?}: expected error, warning, info, verbose or debug")),
            },
            Request::EdrTagSet { name, value } => {
                if name != "GROUP" {
                    return Reply::err(format!("unknown tag name {name:?}: only GROUP is supported"));
                }
                res(
                    self.update_local(|l, eff| {
                        if eff.edr_tags.managed {
                            return err("device tags are set by the managed configuration");
                        }
                        l.edr.get_or_insert_with(Default::default).tags = Some(vec![crate::config::EdrTag { key: name.clone(), value: value.clone() }]);
                        Ok(())
                    }),
                    "Configuration property updated",
                )
            }
            Request::EdrTagRemove { name } => res(
                self.update_local(|l, eff| {
                    if eff.edr_tags.managed {
                        return err("device tags are set by the managed configuration");
                    }
                    if let Some(tags) = l.edr.as_mut().and_then(|e| e.tags.as_mut()) {
                        tags.retain(|t| t.key != name);
                    }
                    Ok(())
                }),
                "Configuration property updated",
            ),
            Request::EdrGroupIds { group_id } => res(
                self.update_local(|l, eff| {
                    if eff.edr_group_ids.managed {
                        return err("group ids are set by the managed configuration");
                    }
                    l.edr.get_or_insert_with(Default::default).group_ids = Some(group_id.clone());
                    Ok(())
                }),
                "Configuration property updated",
            ),
        }
    }

    fn onboarding(&self) -> Option<Value> {
        let text = fs::read_to_string(self.paths.onboarding()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// `mdatp health` as an ordered list of fields: `{name: {value, managed}}`.
    pub fn health(&self) -> Value {
        let eff = self.effective();
        let (managed_error, local_error) = {
            let c = self.cfg.read().unwrap_or_else(|e| e.into_inner());
            (c.managed_error.clone(), c.local_error.clone())
        };
        let (defs, loaded_at, defs_error) = {
            let d = self.defs.read().unwrap_or_else(|e| e.into_inner());
            (d.defs.clone(), d.loaded_at, d.error.clone())
        };
        let onboarding = self.onboarding();
        let licensed = onboarding.is_some();
        let org_id = onboarding.as_ref().and_then(find_org_id).unwrap_or_default();
        let level = eff.enforcement_level.value;
        let rtp_configured = matches!(level, EnforcementLevel::RealTime | EnforcementLevel::Audit);
        let mut issues: Vec<String> = Vec::new();
        if !licensed {
            issues.push("missing license".into());
        }
        if let Some(e) = managed_error {
            issues.push(format!("invalid managed configuration, the last good one is in force: {e}"));
        }
        if let Some(e) = local_error {
            issues.push(format!("invalid local settings, the last good ones are in force: {e}"));
        }
        if let Some(e) = defs_error {
            issues.push(format!("definitions update rejected, version {} stays in force: {e}", defs.version()));
        }
        if rtp_configured {
            issues.push("real-time protection is configured but not available in this version".into());
        }
        let minutes = (now() - loaded_at).max(0) / 60;
        let m = |s: &crate::config::Setting<bool>| (json!(s.value), s.managed);
        let fields: Vec<(&str, (Value, bool))> = vec![
            ("healthy", (json!(issues.is_empty()), false)),
            ("health_issues", (json!(issues), false)),
            ("licensed", (json!(licensed), false)),
            ("engine_version", (json!(VERSION), false)),
            ("engine_load_status", (json!("Engine load succeeded"), false)),
            ("app_version", (json!(VERSION), false)),
            ("org_id", (json!(org_id), false)),
            ("log_level", (json!(eff.log_level.value.as_str()), eff.log_level.managed)),
            ("machine_guid", (json!(self.machine_guid), false)),
            ("release_ring", (json!("Production"), false)),
            ("product_expiration", (json!("never"), false)),
            ("cloud_enabled", m(&eff.cloud_enabled)),
            ("cloud_automatic_sample_submission_consent", (json!(eff.cloud_sample_submission.value), eff.cloud_sample_submission.managed)),
            ("cloud_diagnostic_enabled", (json!(eff.cloud_diagnostic_level.value == "required"), eff.cloud_diagnostic_level.managed)),
            ("passive_mode_enabled", (json!(level == EnforcementLevel::Passive), eff.enforcement_level.managed)),
            ("behavior_monitoring", (json!(if eff.behavior_monitoring.value { "enabled" } else { "disabled" }), eff.behavior_monitoring.managed)),
            ("real_time_protection_enabled", (json!(rtp_configured), eff.enforcement_level.managed)),
            ("real_time_protection_available", (json!(false), false)),
            ("real_time_protection_subsystem", (json!("unavailable"), false)),
            ("supplementary_events_subsystem", (json!("unavailable"), false)),
            ("tamper_protection", (json!("disabled"), false)),
            ("automatic_definition_update_enabled", m(&eff.automatic_definition_update_enabled)),
            ("definitions_updated", (json!(fmt_time(loaded_at)), false)),
            ("definitions_updated_minutes_ago", (json!(minutes), false)),
            ("definitions_version", (json!(defs.version()), false)),
            ("definitions_status", (json!("up_to_date"), false)),
            ("edr_early_preview_enabled", (json!("disabled"), false)),
            ("edr_device_tags", (json!(eff.edr_tags.value), eff.edr_tags.managed)),
            ("edr_group_ids", (json!(eff.edr_group_ids.value), eff.edr_group_ids.managed)),
            ("edr_configuration_version", (json!(""), false)),
            ("edr_machine_id", (json!(""), false)),
            ("conflicting_applications", (json!([]), false)),
            ("network_protection_status", (json!("stopped"), false)),
            ("network_protection_enforcement_level", (json!(serde_json::to_value(eff.network_protection.value).unwrap_or_default()), eff.network_protection.managed)),
            ("troubleshooting_mode", (json!("disabled"), false)),
            ("antivirus_enforcement_level", (json!(level.as_str()), eff.enforcement_level.managed)),
        ];
        Value::Array(fields.into_iter().map(|(n, (v, managed))| json!({"name": n, "value": v, "managed": managed})).collect())
    }
}

fn find_org_id(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "orgId" {
                    if let Some(s) = x.as_str() {
                        return Some(s.to_string());
                    }
                }
                if k == "orgIds" {
                    if let Some(s) = x.as_array().and_then(|a| a.first()).and_then(|s| s.as_str()) {
                        return Some(s.to_string());
                    }
                }
                if let Some(s) = find_org_id(x) {
                    return Some(s);
                }
            }
            None
        }
        // The reference's onboarding blob nests JSON inside strings.
        Value::String(s) if s.starts_with('{') => serde_json::from_str::<Value>(s).ok().as_ref().and_then(find_org_id),
        Value::Array(a) => a.iter().find_map(find_org_id),
        _ => None,
    }
}

pub fn fmt_time(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Who is calling, and what may they do.
fn authorize(d: &Daemon, s: &UnixStream, req: &Request) -> Result<(), String> {
    let cred = crate::sys::peer_cred(s).map_err(|e| format!("cannot identify the caller: {e}"))?;
    if cred.uid == 0 || cred.uid == crate::sys::euid() {
        return Ok(());
    }
    let _ = d;
    let member = crate::sys::group_id("mdatp")
        .is_some_and(|g| cred.gid == g || crate::sys::process_groups(cred.pid).contains(&g));
    if member && req.read_only() {
        return Ok(());
    }
    if member {
        Err("permission denied: this command needs root (members of group mdatp may only run read-only commands)".into())
    } else {
        Err("permission denied: run mdatp as root, or as a member of group mdatp for read-only commands".into())
    }
}

fn serve_connection(d: &Arc<Daemon>, s: UnixStream) {
    let _ = s.set_read_timeout(Some(REQUEST_TIMEOUT));
    let mut out = match s.try_clone() {
        Ok(o) => o,
        Err(_) => return,
    };
    let mut line = String::new();
    let mut reader = BufReader::new((&s).take(ipc::MAX_REQUEST));
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let reply = match serde_json::from_str::<Request>(&line) {
        Err(e) => Reply::err(format!("bad request: {e}")),
        Ok(req) => match authorize(d, &s, &req) {
            Err(e) => Reply::err(e),
            Ok(()) => d.handle(req, &mut out),
        },
    };
    let _ = ipc::write_line(&mut out, &reply);
}

/// Binds the command socket, refusing to steal it from a running daemon.
fn bind(paths: &Paths) -> anyhow::Result<UnixListener> {
    let sock = paths.socket();
    let dir = paths.run_dir();
    fs::create_dir_all(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    if UnixStream::connect(&sock).is_ok() {
        anyhow::bail!("another wdavdaemon is already serving {}", sock.display());
    }
    let _ = fs::remove_file(&sock);
    let l = UnixListener::bind(&sock).map_err(|e| anyhow::anyhow!("cannot bind {}: {e}", sock.display()))?;
    // Anyone may connect; the daemon checks credentials per request.
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o666))?;
    Ok(l)
}

/// Runs the daemon until it is killed.
pub fn run(paths: Paths) -> anyhow::Result<()> {
    let level = {
        let m = ConfigFile::load(&paths.managed_config()).ok().and_then(|c| c.log_level);
        let l = ConfigFile::load(&paths.local_config()).ok().and_then(|c| c.log_level);
        m.or(l).unwrap_or(LogLevel::Info)
    };
    let log = crate::logging::init(paths.log_dir(), level);
    let listener = bind(&paths)?;
    let d = Daemon::open(paths.clone(), Some(log))?;
    info!("wdavdaemon {VERSION} serving {} (root {})", paths.socket().display(), paths.root().display());
    {
        let d = d.clone();
        std::thread::Builder::new().name("watch".into()).spawn(move || {
            let mut last_prune = Instant::now() - Duration::from_secs(3600);
            loop {
                std::thread::sleep(WATCH_INTERVAL);
                d.watch_once();
                if last_prune.elapsed() >= Duration::from_secs(3600) {
                    let eff = d.effective();
                    if let Err(e) = d.store().prune(eff.scan_results_retention_days.value, eff.scan_history_maximum_items.value) {
                        warn!("could not prune history: {e}");
                    }
                    last_prune = Instant::now();
                }
            }
        })?;
    }
    let limits = Arc::new(ConnLimits::default());
    for conn in listener.incoming() {
        match conn {
            Ok(mut s) => {
                // Who is calling is known at accept: an unprivileged user cannot use up the
                // places kept for root.
                let uid = crate::sys::peer_cred(&s).map(|c| c.uid).unwrap_or(u32::MAX);
                let admin = uid == 0 || uid == crate::sys::euid();
                if !limits.acquire(uid, admin) {
                    let _ = ipc::write_line(&mut s, &Reply::err("the daemon is busy: too many commands at once, try again"));
                    continue;
                }
                let (d, l2) = (d.clone(), limits.clone());
                let spawned = std::thread::Builder::new().name("conn".into()).spawn(move || {
                    serve_connection(&d, s);
                    l2.release(uid, admin);
                });
                if let Err(e) = spawned {
                    limits.release(uid, admin);
                    error!("cannot start a connection thread: {e}");
                }
            }
            Err(e) => {
                warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    Ok(())
}

/// `wdavdaemon` entry point.
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    for a in &args {
        match a.as_str() {
            "--version" | "-V" => {
                println!("wdavdaemon {VERSION}");
                return 0;
            }
            "--help" | "-h" => {
                println!("wdavdaemon {VERSION}: the mdatp agent's daemon. Runs in the foreground.\n\
                          Environment: MDATP_ROOT=DIR takes every product path below DIR.");
                return 0;
            }
            "--foreground" | "-f" => {}
            other => {
                eprintln!("wdavdaemon: unknown argument {other:?} (try --help)");
                return 2;
            }
        }
    }
    match run(Paths::from_env()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("wdavdaemon: {e:#}");
            1
        }
    }
}
