//! Test harness: a real `wdavdaemon` below a temporary `MDATP_ROOT`, driven through the real
//! `mdatp` binary.
//!
//! Rules the tests follow:
//! - everything goes through `mdatp` (no library calls, no reading of the database);
//! - nothing depends on timing except generous polling timeouts ([`wait_until`]);
//! - the daemon is killed when the [`TestDaemon`] is dropped, and its stderr is shown when it
//!   fails to come up.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const MDATP: &str = env!("CARGO_BIN_EXE_mdatp");
pub const WDAVDAEMON: &str = env!("CARGO_BIN_EXE_wdavdaemon");

/// The EICAR test string (REFERENCE.md "Validation").
pub const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
pub const EICAR_NAME: &str = "EICAR-Test-File (not a virus)";

/// How long the daemon may take to answer its first `mdatp health`.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a configuration or definitions change may take to be picked up (the watcher looks
/// every 0.5 s; this leaves room for a loaded CI machine).
pub const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// The result of one `mdatp` run.
#[derive(Debug, Clone)]
pub struct Out {
    pub stdout: String,
    pub stderr: String,
    /// Exit code; `-1` when killed by a signal.
    pub code: i32,
    /// The command line, for messages.
    pub cmd: String,
}

impl Out {
    fn from_output(cmd: String, o: Output) -> Out {
        Out {
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            code: o.status.code().unwrap_or(-1),
            cmd,
        }
    }

    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// Panics unless the command succeeded; returns self for chaining.
    #[track_caller]
    pub fn success(self) -> Out {
        assert!(self.code == 0, "expected success of `{}`, got {}", self.cmd, self.describe());
        self
    }

    /// Panics unless the command failed with a non-zero exit code and a message on stderr.
    #[track_caller]
    pub fn failure(self) -> Out {
        assert!(self.code != 0 && self.code != -1, "expected `{}` to fail, got {}", self.cmd, self.describe());
        assert!(!self.stderr.trim().is_empty(), "`{}` failed without a message: {}", self.cmd, self.describe());
        self
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("`{}` did not print JSON ({e}): {}", self.cmd, self.describe()))
    }

    pub fn describe(&self) -> String {
        format!("exit code {}\n--- stdout ---\n{}--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }

    /// stdout and stderr together, lower-cased, for message checks.
    pub fn text_lower(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr).to_lowercase()
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
#[track_caller]
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `mdatp` command for the daemon below `root`.
pub fn mdatp_command(root: &Path) -> Command {
    let mut c = Command::new(MDATP);
    c.env("MDATP_ROOT", root).env_remove("RUST_LOG").stdin(Stdio::null());
    c
}

/// Runs a prepared command and collects its output.
pub fn run(mut c: Command) -> Out {
    let cmd = format!("{c:?}");
    let mut tries = 0;
    let o = loop {
        match c.output() {
            Ok(o) => break o,
            // A binary copied by a test (permissions.rs) can be briefly "busy" while another
            // test thread's fork still holds the copy's descriptor: try again.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("cannot run {cmd}: {e}"),
        }
    };
    Out::from_output(cmd, o)
}

/// A real daemon below a temporary root.
pub struct TestDaemon {
    root: tempfile::TempDir,
    child: Option<Child>,
    stderr_log: PathBuf,
}

impl TestDaemon {
    /// Makes a temporary root and starts the daemon in it.
    pub fn start() -> TestDaemon {
        let d = TestDaemon::new_stopped();
        let mut d = d;
        d.spawn();
        d
    }

    /// Makes a temporary root without starting the daemon (to prepare files first).
    pub fn new_stopped() -> TestDaemon {
        let root = tempfile::Builder::new().prefix("mdatp-it-").tempdir().expect("tempdir");
        let stderr_log = root.path().join("wdavdaemon.stderr");
        fs::create_dir_all(root.path().join("data")).expect("data dir");
        TestDaemon { root, child: None, stderr_log }
    }

    /// Starts the daemon (again) on the same root and waits until it answers.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        let log = fs::OpenOptions::new().create(true).append(true).open(&self.stderr_log).expect("stderr log");
        let child = Command::new(WDAVDAEMON)
            .env("MDATP_ROOT", self.root.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {WDAVDAEMON}: {e}"));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.as_mut().expect("child").try_wait().expect("try_wait") {
                self.child = None;
                panic!("wdavdaemon exited during start-up ({st}); its stderr:\n{}", self.daemon_stderr());
            }
            let o = self.mdatp(&["health"]);
            if o.ok() {
                return;
            }
            if start.elapsed() > START_TIMEOUT {
                panic!(
                    "wdavdaemon did not answer `mdatp health` within {START_TIMEOUT:?}; last answer: {}\ndaemon stderr:\n{}",
                    o.describe(),
                    self.daemon_stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's stderr so far (all runs on this root).
    pub fn daemon_stderr(&self) -> String {
        fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// Kills the daemon with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the daemon and starts it again on the same root.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// Asserts that the daemon is still alive and answers `mdatp health`.
    #[track_caller]
    pub fn assert_alive(&mut self) {
        assert!(self.is_running(), "wdavdaemon died; its stderr:\n{}", self.daemon_stderr());
        let o = self.mdatp(&["health"]);
        assert!(o.ok(), "mdatp health does not answer: {}\ndaemon stderr:\n{}", o.describe(), self.daemon_stderr());
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A directory for test files, outside every product directory.
    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Product path below the root, e.g. `p("/var/opt/microsoft/mdatp/quarantine")`.
    pub fn p(&self, abs: &str) -> PathBuf {
        self.root.path().join(abs.trim_start_matches('/'))
    }

    pub fn managed_path(&self) -> PathBuf {
        self.p("/etc/opt/microsoft/mdatp/managed/mdatp_managed.json")
    }
    pub fn local_config_path(&self) -> PathBuf {
        self.p("/etc/opt/microsoft/mdatp/wdavcfg")
    }
    pub fn onboarding_path(&self) -> PathBuf {
        self.p("/etc/opt/microsoft/mdatp/mdatp_onboard.json")
    }
    pub fn definitions_dir(&self) -> PathBuf {
        self.p("/var/opt/microsoft/mdatp/definitions")
    }
    pub fn quarantine_dir(&self) -> PathBuf {
        self.p("/var/opt/microsoft/mdatp/quarantine")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.p("/var/log/microsoft/mdatp")
    }

    /// Writes the managed configuration atomically (the watcher never sees half a file).
    pub fn write_managed(&self, text: &str) {
        write_atomic(&self.managed_path(), text.as_bytes());
    }

    /// A `mdatp` command for this daemon.
    pub fn command(&self) -> Command {
        mdatp_command(self.root.path())
    }

    /// Runs `mdatp ARGS`.
    pub fn mdatp(&self, args: &[&str]) -> Out {
        let mut c = self.command();
        c.args(args);
        run(c)
    }

    /// Runs `mdatp ARGS` with arguments that need not be UTF-8.
    pub fn mdatp_os<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        let mut c = self.command();
        c.args(args);
        run(c)
    }

    /// Runs `mdatp ARGS`, asserting success.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Out {
        let o = self.mdatp(args);
        assert!(o.ok(), "`mdatp {}` failed: {}\ndaemon stderr (tail):\n{}", args.join(" "), o.describe(), self.stderr_tail());
        o
    }

    /// Runs `mdatp ARGS --output json`, asserting success, and parses it.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        self.ok(&a).json()
    }

    fn stderr_tail(&self) -> String {
        let s = self.daemon_stderr();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `mdatp scan custom --path P...` (text output).
    pub fn scan(&self, paths: &[&Path]) -> Out {
        let mut args: Vec<OsString> = vec!["scan".into(), "custom".into()];
        for p in paths {
            args.push("--path".into());
            args.push(p.as_os_str().to_owned());
        }
        self.mdatp_os(&args)
    }

    /// `mdatp scan custom --path P --output json`, asserting success; returns the summary.
    #[track_caller]
    pub fn scan_json(&self, path: &Path, extra: &[&str]) -> Value {
        let mut args: Vec<OsString> = vec!["scan".into(), "custom".into(), "--path".into(), path.as_os_str().to_owned()];
        args.extend(extra.iter().map(OsString::from));
        args.extend(["--output".into(), "json".into()]);
        let o = self.mdatp_os(&args);
        assert!(o.ok(), "scan of {} failed: {}\ndaemon stderr (tail):\n{}", path.display(), o.describe(), self.stderr_tail());
        o.json()
    }

    /// One health field's text value (`mdatp health --field NAME`), trimmed.
    #[track_caller]
    pub fn health_field(&self, name: &str) -> String {
        self.ok(&["health", "--field", name]).stdout.trim().to_string()
    }

    /// Waits until `mdatp health --field NAME` satisfies `pred`; returns the value.
    #[track_caller]
    pub fn wait_health(&self, name: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let o = self.mdatp(&["health", "--field", name]);
            let v = o.stdout.trim().to_string();
            if o.ok() && pred(&v) {
                return v;
            }
            if start.elapsed() > CHANGE_TIMEOUT {
                panic!("health field {name} never became {what} within {CHANGE_TIMEOUT:?}; last answer: {}", o.describe());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Switches to `on_demand` (detections are quarantined; no real-time protection).
    pub fn set_on_demand(&self) {
        self.ok(&["config", "real-time-protection", "--value", "disabled"]);
        assert_eq!(self.health_field("antivirus_enforcement_level"), "\"on_demand\"");
    }

    /// All threats (`mdatp threat list --output json`).
    pub fn threats(&self) -> Vec<Value> {
        self.json(&["threat", "list"]).as_array().cloned().unwrap_or_default()
    }

    /// Threats whose recorded path is `path` (as the daemon spells paths: non-UTF-8 bytes as
    /// `\xNN`, a backslash as `\\`).
    pub fn threats_for(&self, path: &Path) -> Vec<Value> {
        let want = path_string(path);
        self.threats().into_iter().filter(|t| t["path"].as_str() == Some(want.as_str())).collect()
    }

    /// Quarantined threats (`mdatp threat quarantine list --output json`).
    pub fn quarantined(&self) -> Vec<Value> {
        self.json(&["threat", "quarantine", "list"]).as_array().cloned().unwrap_or_default()
    }

    /// The set of recorded threat paths.
    pub fn threat_paths(&self) -> Vec<String> {
        let mut v: Vec<String> = self.threats().iter().filter_map(|t| t["path"].as_str().map(String::from)).collect();
        v.sort();
        v.dedup();
        v
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.kill();
        // Files made unreadable or immutable by a test must not stop the clean-up.
        let _ = Command::new("chmod").arg("-R").arg("u+rwX").arg(self.root.path()).status();
    }
}

/// A temporary directory for big generated trees: on tmpfs (`/dev/shm`) when there is one,
/// where creating and deleting tens of thousands of files is fast; else in the usual place.
pub fn fast_tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new().prefix("mdatp-it-").tempdir_in(shm) {
            return d;
        }
    }
    tempfile::Builder::new().prefix("mdatp-it-").tempdir().expect("tempdir")
}

/// The daemon's spelling of a path (`paths::path_to_string`): UTF-8 as is with `\` doubled,
/// other bytes as `\xNN`.
pub fn path_string(p: &Path) -> String {
    let mut out = String::new();
    for chunk in p.as_os_str().as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Writes a file via a temporary name and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let tmp = path.with_extension("it-tmp");
    {
        let mut f = fs::File::create(&tmp).expect("create");
        f.write_all(bytes).expect("write");
        f.sync_all().expect("sync");
    }
    fs::rename(&tmp, path).expect("rename");
}

/// Creates `path` (and its parents) with `bytes`.
pub fn write(path: &Path, bytes: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    }
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// An EICAR file: the test string followed by `extra`.
pub fn eicar_with(extra: &[u8]) -> Vec<u8> {
    let mut v = EICAR.to_vec();
    v.extend_from_slice(extra);
    v
}

/// Writes an EICAR file at `path`.
pub fn write_eicar(path: &Path) {
    write(path, EICAR);
}

/// Deterministic pseudo-random bytes (xorshift), for content that compresses badly.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Lines of the scan summary, trimmed: `["Scan has finished", "N file(s) scanned", ...]`.
pub fn summary_lines(o: &Out) -> Vec<String> {
    o.stdout.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

/// The expected text summary of a finished scan.
pub fn expected_summary(files: u64, threats: u64) -> Vec<String> {
    vec!["Scan has finished".into(), format!("{files} file(s) scanned"), format!("{threats} threat(s) detected")]
}

pub fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).expect("metadata").permissions().mode() & 0o7777
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Every file below `dir` (recursively), for checks on the quarantine directory.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// True when `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Archive builders. `zip_stored` and `tar` are written by hand (byte-exact, easy to corrupt on
// purpose); compressed formats use the same crates the agent reads them with.
// ---------------------------------------------------------------------------------------------

/// CRC-32 (IEEE), as zip and gzip use it.
pub fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
        *t = c;
    }
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = table[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

/// A zip archive with stored (uncompressed) members.
pub fn zip_stored(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let off = out.len() as u32;
        let crc = crc32(data);
        let n = name.as_bytes();
        // Local file header.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&0u16.to_le_bytes()); // method: stored
        out.extend_from_slice(&0u16.to_le_bytes()); // time
        out.extend_from_slice(&0x21u16.to_le_bytes()); // date (1980-01-01)
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(n.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(n);
        out.extend_from_slice(data);
        // Central directory entry.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // made by
        central.extend_from_slice(&20u16.to_le_bytes()); // needed
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x21u16.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(n.len() as u16).to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes()); // extra
        central.extend_from_slice(&0u16.to_le_bytes()); // comment
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attrs
        central.extend_from_slice(&0u32.to_le_bytes()); // external attrs
        central.extend_from_slice(&off.to_le_bytes());
        central.extend_from_slice(n);
    }
    let cd_off = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_off.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A ustar archive of regular files.
pub fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in members {
        let mut h = [0u8; 512];
        let n = name.as_bytes();
        assert!(n.len() < 100, "tar name too long");
        h[..n.len()].copy_from_slice(n);
        let octal = |h: &mut [u8; 512], off: usize, len: usize, v: u64| {
            let s = format!("{:0width$o}\0", v, width = len - 1);
            h[off..off + len].copy_from_slice(s.as_bytes());
        };
        octal(&mut h, 100, 8, 0o644);
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, data.len() as u64);
        octal(&mut h, 136, 12, 1_700_000_000);
        h[148..156].copy_from_slice(b"        ");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        out.extend(std::iter::repeat(0u8).take(pad));
    }
    out.extend(std::iter::repeat(0u8).take(1024));
    out
}

/// gzip-compressed `data` (best compression).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// bzip2-compressed `data`.
pub fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    e.write_all(data).expect("bzip2");
    e.finish().expect("bzip2")
}

/// xz-compressed `data`.
pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(6)).expect("xz");
    e.write_all(data).expect("xz");
    e.finish().expect("xz")
}

/// A zip archive whose members use `method` (the `zip` crate's writer).
pub fn zip_with(members: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(method).large_file(false);
    for (name, data) in members {
        w.start_file(*name, opts).expect("zip entry");
        w.write_all(data).expect("zip data");
    }
    w.finish().expect("zip").into_inner()
}

/// A 7z archive (LZMA2).
pub fn sevenz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = sevenz_rust2::ArchiveWriter::new(std::io::Cursor::new(Vec::new())).expect("7z");
    for (name, data) in members {
        w.push_archive_entry(sevenz_rust2::ArchiveEntry::new_file(name), Some(*data)).expect("7z entry");
    }
    w.finish().expect("7z").into_inner()
}

/// A cpio archive in the `newc` format.
pub fn cpio_newc(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut all: Vec<(&str, &[u8], u32)> = members.iter().map(|(n, d)| (*n, *d, 0o100644)).collect();
    all.push(("TRAILER!!!", b"", 0));
    for (i, (name, data, mode)) in all.into_iter().enumerate() {
        let namesize = name.len() + 1;
        let fields = [i as u32 + 1, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0, namesize as u32, 0];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
    out
}
