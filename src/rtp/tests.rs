//! Real fanotify tests. Each test watches a tmpfs of its own (mounted at a temporary
//! directory, `mount_points: Some(..)`), so a bug cannot freeze the machine, and opens files
//! from child processes (`cat`, ...): our own process is always allowed without a scan.
//! They need root; without it they fail under `CI=true` and are skipped (with a line saying
//! so) otherwise.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::engine::{Definitions, EICAR, EICAR_THREAT_NAME};

fn have_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: real-time protection tests need root (fanotify permission events); CI runs them as root");
    }
    eprintln!("SKIPPED {test}: real-time protection tests need root (fanotify permission events)");
    false
}

/// A tmpfs mounted at a fresh temporary directory, unmounted on drop.
struct TmpMount {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

fn mount_tmpfs(at: &Path) {
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64m", "rtp-test"]).arg(at).status().expect("run mount");
    assert!(st.success(), "mount -t tmpfs at {} failed", at.display());
}

fn umount(at: &Path) {
    let _ = Command::new("umount").arg("-l").arg(at).status();
}

impl TmpMount {
    fn new() -> TmpMount {
        let dir = tempfile::Builder::new().prefix("rtp-test-").tempdir().unwrap();
        let path = dir.path().canonicalize().unwrap();
        mount_tmpfs(&path);
        TmpMount { path, _dir: dir }
    }
    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.path.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }
}

impl Drop for TmpMount {
    fn drop(&mut self) {
        umount(&self.path);
    }
}

/// A host that detects with the built-in definitions (EICAR).
#[derive(Default)]
struct TestHost {
    defs: Option<Definitions>,
    scans: AtomicU64,
    detections: Mutex<Vec<(PathBuf, String, bool)>>,
    excluded_paths: Vec<PathBuf>,
    excluded_names: Vec<String>,
    slow: Duration,
    panics: bool,
    gen: AtomicU64,
}

impl TestHost {
    fn new() -> TestHost {
        TestHost { defs: Some(Definitions::builtin()), ..Default::default() }
    }
    fn scans(&self) -> u64 {
        self.scans.load(Ordering::SeqCst)
    }
    fn detections(&self) -> Vec<(PathBuf, String, bool)> {
        self.detections.lock().unwrap().clone()
    }
}

impl RtpHost for TestHost {
    fn scan(&self, file: &std::fs::File, _path: &Path) -> Option<Detection> {
        self.scans.fetch_add(1, Ordering::SeqCst);
        if !self.slow.is_zero() {
            std::thread::sleep(self.slow);
        }
        if self.panics {
            panic!("test host: scan panics");
        }
        let mut data = Vec::new();
        let mut f: &std::fs::File = file;
        f.read_to_end(&mut data).ok()?;
        self.defs.as_ref()?.scan_bytes(&data)
    }
    fn is_excluded(&self, path: &Path, _exe: &Path, comm: &str) -> bool {
        self.excluded_paths.iter().any(|p| path.starts_with(p)) || self.excluded_names.iter().any(|n| n == comm)
    }
    fn on_detection(&self, path: &Path, det: &Detection, blocked: bool) {
        self.detections.lock().unwrap().push((path.to_path_buf(), det.threat_name.clone(), blocked));
    }
    fn generation(&self) -> u64 {
        self.gen.load(Ordering::SeqCst)
    }
}

fn cfg(mode: RtpMode, m: &TmpMount) -> RtpConfig {
    RtpConfig { mode, mount_points: Some(vec![m.path.clone()]), statistics: true, ..RtpConfig::default() }
}

/// `cat FILE` in a child process: its output, or its error message.
fn cat(p: &Path) -> Result<Vec<u8>, String> {
    let out = Command::new("cat").arg(p).output().unwrap();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

fn denied(r: Result<Vec<u8>, String>) -> bool {
    matches!(r, Err(ref e) if e.contains("Operation not permitted"))
}

#[test]
fn block_denies_eicar_reports_it_and_caches_clean_files() {
    if !have_root("block_denies_eicar_reports_it_and_caches_clean_files") {
        return;
    }
    let m = TmpMount::new();
    let eicar = m.file("eicar.com", EICAR);
    let clean = m.file("clean.txt", b"hello");
    let host = Arc::new(TestHost::new());
    let rtp = Rtp::start(cfg(RtpMode::Block, &m), host.clone()).unwrap();
    let st = rtp.stats();
    assert!(st.running);
    assert_eq!(st.filesystems, vec![m.path.display().to_string()]);

    let r = cat(&eicar);
    assert!(denied(r.clone()), "{r:?}");
    assert!(wait_until(Duration::from_secs(5), || !host.detections().is_empty()));
    assert_eq!(host.detections(), vec![(eicar.clone(), EICAR_THREAT_NAME.to_string(), true)]);

    assert_eq!(cat(&clean).unwrap(), b"hello");
    let scans = host.scans();
    // The second open is answered by the kernel's ignore mark: no event, no scan.
    for _ in 0..3 {
        assert_eq!(cat(&clean).unwrap(), b"hello");
    }
    assert_eq!(host.scans(), scans);
    // The detected file is not cached: denied again.
    assert!(denied(cat(&eicar)));

    // Counters move just after the answer is written: give the worker a moment.
    assert!(wait_until(Duration::from_secs(5), || rtp.stats().denied >= 2));
    let st = rtp.stats();
    assert!(st.detections >= 2 && st.ignore_marks >= 1, "{st:?}");
    assert_eq!(st.deadline_allows, 0);
    assert!(st.latency.count >= 3 && st.latency.p50_us > 0);
    assert!(st.processes.iter().any(|p| p.name == "cat" && p.total_files_scanned >= 2), "{:?}", st.processes);
    // Our own process is never held up, whatever the file.
    assert_eq!(std::fs::read(&eicar).unwrap(), EICAR);
    assert!(rtp.stats().self_allowed >= 1);
    rtp.stop();
    // Stopped: no marks left, the file opens.
    assert_eq!(cat(&eicar).unwrap(), EICAR);
}

#[test]
fn audit_allows_and_reports() {
    if !have_root("audit_allows_and_reports") {
        return;
    }
    let m = TmpMount::new();
    let eicar = m.file("eicar.com", EICAR);
    let host = Arc::new(TestHost::new());
    let rtp = Rtp::start(cfg(RtpMode::Audit, &m), host.clone()).unwrap();
    assert_eq!(cat(&eicar).unwrap(), EICAR);
    assert!(wait_until(Duration::from_secs(5), || !host.detections().is_empty()));
    assert_eq!(host.detections(), vec![(eicar, EICAR_THREAT_NAME.to_string(), false)]);
    assert_eq!(rtp.stats().denied, 0);
}

#[test]
fn off_places_no_marks() {
    if !have_root("off_places_no_marks") {
        return;
    }
    let m = TmpMount::new();
    let eicar = m.file("eicar.com", EICAR);
    let host = Arc::new(TestHost::new());
    let rtp = Rtp::start(cfg(RtpMode::Off, &m), host.clone()).unwrap();
    assert!(!rtp.is_running());
    assert_eq!(cat(&eicar).unwrap(), EICAR);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(host.scans(), 0);
    assert!(host.detections().is_empty());
    let st = rtp.stats();
    assert_eq!((st.mode.as_str(), st.running, st.events), ("off", false, 0));
    assert!(st.filesystems.is_empty());
}

#[test]
fn modes_switch_live() {
    if !have_root("modes_switch_live") {
        return;
    }
    let m = TmpMount::new();
    let eicar = m.file("eicar.com", EICAR);
    let host = Arc::new(TestHost::new());
    let rtp = Rtp::start(cfg(RtpMode::Block, &m), host.clone()).unwrap();
    assert!(denied(cat(&eicar)));
    rtp.reconfigure(cfg(RtpMode::Audit, &m)).unwrap();
    assert_eq!(cat(&eicar).unwrap(), EICAR);
    rtp.reconfigure(cfg(RtpMode::Off, &m)).unwrap();
    assert!(!rtp.is_running());
    let scans = host.scans();
    assert_eq!(cat(&eicar).unwrap(), EICAR);
    assert_eq!(host.scans(), scans);
    rtp.reconfigure(cfg(RtpMode::Block, &m)).unwrap();
    assert!(denied(cat(&eicar)));
    assert!(wait_until(Duration::from_secs(5), || host.detections().len() == 3));
    let blocked: Vec<bool> = host.detections().iter().map(|d| d.2).collect();
    assert_eq!(blocked, [true, false, true]);
}

#[test]
fn executing_a_detected_elf_fails() {
    if !have_root("executing_a_detected_elf_fails") {
        return;
    }
    let m = TmpMount::new();
    let mut elf = std::fs::read("/bin/true").unwrap();
    let good = m.file("good", &elf);
    elf.extend_from_slice(EICAR);
    let bad = m.file("bad", &elf);
    for p in [&good, &bad] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let host = Arc::new(TestHost::new());
    let _rtp = Rtp::start(cfg(RtpMode::Block, &m), host.clone()).unwrap();
    assert!(Command::new(&good).status().unwrap().success());
    let e = Command::new(&bad).status().expect_err("the detected ELF ran");
    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
    assert!(wait_until(Duration::from_secs(5), || host.detections().iter().any(|d| d.0 == bad && d.2)));
}

#[test]
fn clean_file_overwritten_with_eicar_is_caught() {
    if !have_root("clean_file_overwritten_with_eicar_is_caught") {
        return;
    }
    let m = TmpMount::new();
    let f = m.file("doc.txt", b"innocent");
    let g = m.file("other.txt", b"innocent too");
    let host = Arc::new(TestHost::new());
    let rtp = Rtp::start(cfg(RtpMode::Block, &m), host.clone()).unwrap();
    assert_eq!(cat(&f).unwrap(), b"innocent");
    assert_eq!(cat(&g).unwrap(), b"innocent too");
    assert!(rtp.stats().ignore_marks >= 2);
    // Rewritten in place (same inode) by us ...
    std::fs::write(&f, EICAR).unwrap();
    assert!(denied(cat(&f)));
    // ... and appended to by another process.
    let st = Command::new("sh").arg("-c").arg("printf '%s' \"$1\" >> \"$2\"").arg("sh").arg(std::str::from_utf8(EICAR).unwrap()).arg(&g).status().unwrap();
    assert!(st.success());
    assert!(denied(cat(&g)));
}

#[test]
fn invalidation_flushes_both_caches() {
    if !have_root("invalidation_flushes_both_caches") {
        return;
    }
    let m = TmpMount::new();
    let f = m.file("a.txt", b"clean");
    let host = Arc::new(TestHost::new());
    let rtp = Rtp::start(cfg(RtpMode::Block, &m), host.clone()).unwrap();
    cat(&f).unwrap();
    cat(&f).unwrap();
    assert_eq!(host.scans(), 1);
    rtp.invalidate();
    cat(&f).unwrap();
    assert_eq!(host.scans(), 2);
    cat(&f).unwrap();
    assert_eq!(host.scans(), 2);
    // A new host generation (definitions or exclusions changed) has the same effect: the
    // first event after it flushes, and that event is scanned (a new file, so it reaches us).
    host.gen.fetch_add(1, Ordering::SeqCst);
    let g = m.file("b.txt", b"also clean");
    cat(&g).unwrap();
    assert_eq!(host.scans(), 3);
    cat(&f).unwrap();
    assert_eq!(host.scans(), 4);
    assert!(rtp.stats().invalidations >= 2);
}

#[test]
fn slow_scan_never_holds_an_open_past_the_deadline() {
    if !have_root("slow_scan_never_holds_an_open_past_the_deadline") {
        return;
    }
    let m = TmpMount::new();
    let clean = m.file("clean.txt", b"x");
    let eicar = m.file("eicar.com", EICAR);
    let host = Arc::new(TestHost { slow: Duration::from_secs(2), ..TestHost::new() });
    let deadline = Duration::from_millis(250);
    let rtp = Rtp::start(RtpConfig { deadline, ..cfg(RtpMode::Block, &m) }, host.clone()).unwrap();
    for p in [&clean, &eicar] {
        let t = Instant::now();
        let r = cat(p);
        let took = t.elapsed();
        assert!(r.is_ok(), "{r:?}");
        // Slack for a loaded 2-core machine; far below the 2 s scan.
        assert!(took < deadline + Duration::from_millis(700), "open took {took:?}");
    }
    let st = rtp.stats();
    assert!(st.deadline_allows >= 2, "{st:?}");
    // The late verdict on the EICAR file is still reported, as not blocked.
    assert!(wait_until(Duration::from_secs(5), || host.detections().iter().any(|d| d.0 == eicar && !d.2)));
}

#[test]
fn a_stuck_reader_is_covered_by_the_watchdog() {
    if !have_root("a_stuck_reader_is_covered_by_the_watchdog") {
        return;
    }
    let m = TmpMount::new();
    let f = m.file("f.txt", b"data");
    let host = Arc::new(TestHost::new());
    let deadline = Duration::from_millis(250);
    let rtp = Rtp::start(RtpConfig { deadline, ..cfg(RtpMode::Block, &m) }, host.clone()).unwrap();
    assert!(rtp.is_alive());
    rtp.pause_reader(true);
    let t = Instant::now();
    assert_eq!(cat(&f).unwrap(), b"data");
    let took = t.elapsed();
    // Noticed after max(deadline, 300 ms) without a reader heartbeat, plus a watchdog tick.
    assert!(took < Duration::from_millis(1300), "open took {took:?}");
    assert!(rtp.stats().deadline_allows >= 1);
    assert_eq!(host.scans(), 0);
    assert!(wait_until(Duration::from_secs(5), || !rtp.is_alive()));
    rtp.pause_reader(false);
    assert!(wait_until(Duration::from_secs(5), || rtp.is_alive()));
    let e = m.file("eicar.com", EICAR);
    assert!(denied(cat(&e)));
}

#[test]
fn a_panicking_scan_allows_at_once_and_blocks_nothing_later() {
    if !have_root("a_panicking_scan_allows_at_once_and_blocks_nothing_later") {
        return;
    }
    let m = TmpMount::new();
    let f = m.file("f.txt", b"data");
    let host = Arc::new(TestHost { panics: true, ..TestHost::new() });
    let deadline = Duration::from_secs(5);
    let rtp = Rtp::start(RtpConfig { deadline, ..cfg(RtpMode::Block, &m) }, host.clone()).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(cat(&f).unwrap(), b"data");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    let st = rtp.stats();
    assert_eq!(host.scans(), 3);
    assert!(st.errors >= 3 && st.deadline_allows == 0, "{st:?}");
}

#[test]
fn excluded_paths_and_processes_are_not_scanned() {
    if !have_root("excluded_paths_and_processes_are_not_scanned") {
        return;
    }
    let m = TmpMount::new();
    std::fs::create_dir(m.path.join("excluded")).unwrap();
    let ex = m.file("excluded/eicar.com", EICAR);
    let other = m.file("eicar.com", EICAR);
    let host = Arc::new(TestHost { excluded_paths: vec![m.path.join("excluded")], excluded_names: vec!["head".into()], ..TestHost::new() });
    let rtp = Rtp::start(cfg(RtpMode::Block, &m), host.clone()).unwrap();
    assert_eq!(cat(&ex).unwrap(), EICAR);
    assert_eq!(host.scans(), 0);
    // An excluded process opens anything without a scan; others are still blocked.
    let out = Command::new("head").arg("-c").arg("100").arg(&other).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(host.scans(), 0);
    assert!(denied(cat(&other)));
    assert_eq!(host.scans(), 1);
    assert!(rtp.stats().excluded >= 2);
}

#[test]
fn mounts_below_the_root_are_followed() {
    if !have_root("mounts_below_the_root_are_followed") {
        return;
    }
    let m = TmpMount::new();
    let sub = m.path.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let host = Arc::new(TestHost::new());
    let rtp = Rtp::start(cfg(RtpMode::Block, &m), host.clone()).unwrap();
    mount_tmpfs(&sub);
    let sub_s = sub.display().to_string();
    let marked = wait_until(Duration::from_secs(8), || rtp.stats().filesystems.contains(&sub_s));
    if !marked {
        umount(&sub);
    }
    assert!(marked, "{:?}", rtp.stats().filesystems);
    let e = sub.join("eicar.com");
    std::fs::write(&e, EICAR).unwrap();
    let r = cat(&e);
    umount(&sub);
    assert!(denied(r));
    assert!(wait_until(Duration::from_secs(8), || !rtp.stats().filesystems.contains(&sub_s)));
}

#[test]
fn noexec_and_unmonitored_filesystems_are_left_alone_when_configured() {
    if !have_root("noexec_and_unmonitored_filesystems_are_left_alone_when_configured") {
        return;
    }
    let m = TmpMount::new();
    let sub = m.path.join("noexec");
    std::fs::create_dir(&sub).unwrap();
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "noexec,size=8m", "rtp-test"]).arg(&sub).status().unwrap();
    assert!(st.success());
    let e = sub.join("eicar.com");
    std::fs::write(&e, EICAR).unwrap();
    let sub_s = sub.display().to_string();
    let host = Arc::new(TestHost::new());
    let muted = RtpConfig { non_exec_mount_mute: true, ..cfg(RtpMode::Block, &m) };
    let rtp = Rtp::start(muted.clone(), host.clone()).unwrap();
    let marked_muted = rtp.stats().filesystems;
    let open_muted = cat(&e);
    rtp.reconfigure(cfg(RtpMode::Block, &m)).unwrap();
    let marked_unmuted = rtp.stats().filesystems;
    let open_unmuted = cat(&e);
    rtp.reconfigure(RtpConfig { unmonitored_filesystems: vec!["tmpfs".into()], ..cfg(RtpMode::Block, &m) }).unwrap();
    let marked_unmonitored = rtp.stats().filesystems;
    let open_unmonitored = cat(&e);
    drop(rtp);
    umount(&sub);
    assert!(!marked_muted.contains(&sub_s), "{marked_muted:?}");
    assert_eq!(open_muted.unwrap(), EICAR);
    assert!(marked_unmuted.contains(&sub_s), "{marked_unmuted:?}");
    assert!(denied(open_unmuted));
    // The root asked for by name stays marked whatever its type.
    assert_eq!(marked_unmonitored, vec![m.path.display().to_string()]);
    assert_eq!(open_unmonitored.unwrap(), EICAR);
}

#[test]
fn many_opens_stay_within_bounds() {
    if !have_root("many_opens_stay_within_bounds") {
        return;
    }
    let m = TmpMount::new();
    for i in 0..3000 {
        m.file(&format!("f{i}"), format!("file {i}").as_bytes());
    }
    m.file("eicar.com", EICAR);
    let host = Arc::new(TestHost::new());
    let rtp = Rtp::start(cfg(RtpMode::Block, &m), host.clone()).unwrap();
    // Four processes reading every file concurrently, twice.
    let mut kids = Vec::new();
    for _ in 0..4 {
        kids.push(Command::new("sh").arg("-c").arg("cat ./f* >/dev/null; cat ./f* >/dev/null").current_dir(&m.path).spawn().unwrap());
    }
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
    assert!(denied(cat(&m.path.join("eicar.com"))));
    let st = rtp.stats();
    assert_eq!(st.pending, 0);
    assert_eq!(st.deadline_allows, 0, "{st:?}");
    // 24,000 opens, 3,001 files: every file scanned, and no file scanned more than once per
    // concurrent reader (the second pass of each reader is answered from the caches). How often
    // concurrent first opens share one scan depends on timing (3,024 on a quiet machine, 3,892
    // once under CI load), so it is reported, not asserted.
    assert!(st.scanned >= 3001 && st.scanned <= 4 * 3001, "{st:?}");
    eprintln!(
        "many_opens: {} events, {} scans, {} cache hits, latency p50 {} µs p90 {} µs p99 {} µs max {} µs",
        st.events, st.scanned, st.cache_hits, st.latency.p50_us, st.latency.p90_us, st.latency.p99_us, st.latency.max_us
    );
}

#[test]
fn open_overhead_first_and_second_pass() {
    if !have_root("open_overhead_first_and_second_pass") {
        return;
    }
    let m = TmpMount::new();
    let n = 4000;
    for i in 0..n {
        m.file(&format!("f{i}"), &vec![b'a' + (i % 26) as u8; 4096]);
    }
    let (base1, base2) = open_loop(&m.path);
    let host = Arc::new(TestHost::new());
    let rtp = Rtp::start(cfg(RtpMode::Block, &m), host.clone()).unwrap();
    let (first, second) = open_loop(&m.path);
    let st = rtp.stats();
    eprintln!(
        "open overhead ({n} files of 4 KiB, one process): no agent {base1}/{base2} ns per open; RTP first pass {first} ns, second pass {second} ns; {} events, {} scans; latency p50 {} µs p99 {} µs",
        st.events, st.scanned, st.latency.p50_us, st.latency.p99_us
    );
    // Every file was scanned once, on the first pass; the second pass raised no event at all.
    assert_eq!(st.scanned, n as u64);
    assert_eq!(st.events, n as u64);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

#[test]
fn thousands_of_simultaneous_opens_keep_descriptors_bounded() {
    if !have_root("thousands_of_simultaneous_opens_keep_descriptors_bounded") {
        return;
    }
    let m = TmpMount::new();
    let n = 2500;
    for i in 0..n {
        m.file(&format!("f{i}"), b"x");
    }
    // Slow scans: far more events wait than the workers can decide within the deadline.
    let host = Arc::new(TestHost { slow: Duration::from_millis(20), ..TestHost::new() });
    let rtp = Rtp::start(cfg(RtpMode::Block, &m), host.clone()).unwrap();
    let before = open_fds();
    let t = Instant::now();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "rtp::tests::child_process_helper", "--nocapture", "--test-threads=1"])
        .env("RTP_TEST_CHILD", "open-storm")
        .env("RTP_TEST_DIR", &m.path)
        .env("RTP_TEST_N", n.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut peak = 0;
    let mut peak_pending = 0;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let waiter = {
        let done = done.clone();
        std::thread::spawn(move || {
            let out = child.wait_with_output().unwrap();
            done.store(true, Ordering::SeqCst);
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    };
    while !done.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(60) {
        peak = peak.max(open_fds());
        peak_pending = peak_pending.max(rtp.stats().pending);
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = waiter.join().unwrap();
    let took = t.elapsed();
    let st = rtp.stats();
    eprintln!(
        "open storm: {n} simultaneous opens in {took:?}; peak {} extra descriptors, peak {peak_pending} pending; {} scans, {} deadline allows",
        peak.saturating_sub(before),
        st.scanned,
        st.deadline_allows
    );
    assert!(out.contains(&format!("RTP-CHILD-READY {n}")), "{out}");
    // Other tests of this process open descriptors too: allow some slack above the bound.
    assert!(peak.saturating_sub(before) <= listener::MAX_PENDING + 64, "peak {peak}, before {before}");
    assert!(peak_pending <= listener::MAX_PENDING as u64);
    assert!(st.deadline_allows > 0 && st.scanned > 0, "{st:?}");
}

/// Not a test on its own: the child process of the tests below (does nothing unless
/// `RTP_TEST_CHILD` says what to do).
#[test]
fn child_process_helper() {
    let Ok(what) = std::env::var("RTP_TEST_CHILD") else { return };
    match what.as_str() {
        // Hold a content-class group until stdin closes.
        "hold-group" => {
            let _g = crate::sys::fanotify::Group::new_content().unwrap();
            println!("RTP-CHILD-READY");
            std::io::stdout().flush().unwrap();
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        // Watch RTP_TEST_DIR with a scan that never ends in time, until killed.
        "stuck-listener" => {
            let dir = PathBuf::from(std::env::var("RTP_TEST_DIR").unwrap());
            let host = Arc::new(TestHost { slow: Duration::from_secs(600), ..TestHost::new() });
            let c = RtpConfig { mode: RtpMode::Block, deadline: Duration::from_secs(60), mount_points: Some(vec![dir]), ..RtpConfig::default() };
            let _rtp = Rtp::start(c, host).unwrap();
            println!("RTP-CHILD-READY");
            std::io::stdout().flush().unwrap();
            std::thread::sleep(Duration::from_secs(600));
        }
        // Open and close every file of RTP_TEST_DIR, twice; print the mean time per open.
        "open-loop" => {
            let dir = PathBuf::from(std::env::var("RTP_TEST_DIR").unwrap());
            let files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
            println!("RTP-CHILD-READY");
            for pass in 1..=2 {
                let t = Instant::now();
                for f in &files {
                    drop(std::fs::File::open(f).unwrap());
                }
                println!("PASS {pass} {}", t.elapsed().as_nanos() / files.len() as u128);
            }
        }
        // RTP_TEST_N threads open one file each of RTP_TEST_DIR (f0, f1, ...) at the same time.
        "open-storm" => {
            let dir = PathBuf::from(std::env::var("RTP_TEST_DIR").unwrap());
            let n: usize = std::env::var("RTP_TEST_N").unwrap().parse().unwrap();
            let barrier = Arc::new(std::sync::Barrier::new(n));
            let threads: Vec<_> = (0..n)
                .map(|i| {
                    let (b, p) = (barrier.clone(), dir.join(format!("f{i}")));
                    std::thread::Builder::new()
                        .stack_size(64 << 10)
                        .spawn(move || {
                            b.wait();
                            std::fs::File::open(p).is_ok()
                        })
                        .unwrap()
                })
                .collect();
            let ok = threads.into_iter().map(|t| t.join().unwrap()).filter(|&ok| ok).count();
            println!("RTP-CHILD-READY {ok}");
        }
        other => panic!("unknown RTP_TEST_CHILD {other}"),
    }
}

/// Runs the `open-loop` child on `dir`: mean ns per open of its first and second pass.
fn open_loop(dir: &Path) -> (u128, u128) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "rtp::tests::child_process_helper", "--nocapture", "--test-threads=1"])
        .env("RTP_TEST_CHILD", "open-loop")
        .env("RTP_TEST_DIR", dir)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let pass = |n: &str| -> u128 {
        text.lines().find_map(|l| l.strip_prefix(&format!("PASS {n} "))).and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("{text}"))
    };
    (pass("1"), pass("2"))
}

/// Runs this test binary's `child_process_helper` with `what`, and waits for it to be ready.
fn spawn_child(what: &str, dir: Option<&Path>) -> std::process::Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "rtp::tests::child_process_helper", "--nocapture", "--test-threads=1"])
        .env("RTP_TEST_CHILD", what)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(d) = dir {
        c.env("RTP_TEST_DIR", d);
    }
    let mut child = c.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut b = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("RTP-CHILD-READY") {
        let n = out.read(&mut b).unwrap();
        assert!(n > 0, "child exited early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&b[..n]);
    }
    child
}

#[test]
fn a_second_permission_group_is_a_conflicting_application() {
    if !have_root("a_second_permission_group_is_a_conflicting_application") {
        return;
    }
    // A group of our own (this process) is never listed.
    let m = TmpMount::new();
    let _rtp = Rtp::start(cfg(RtpMode::Block, &m), Arc::new(TestHost::new())).unwrap();
    let own = std::process::id() as i32;
    assert!(conflicting_processes().iter().all(|p| p.pid != own));
    let mut child = spawn_child("hold-group", None);
    let pid = child.id() as i32;
    let found = conflicting_processes();
    let apps = conflicting_applications();
    drop(child.stdin.take());
    let _ = child.wait();
    let me = found.iter().find(|p| p.pid == pid).unwrap_or_else(|| panic!("child {pid} not in {found:?}"));
    assert_eq!(me.class, "content");
    assert!(apps.iter().any(|a| a.contains(&format!("(pid {pid}"))), "{apps:?}");
    assert!(conflicting_processes().iter().all(|p| p.pid != pid));
}

#[test]
fn kill_9_of_a_stuck_listener_releases_the_opener() {
    if !have_root("kill_9_of_a_stuck_listener_releases_the_opener") {
        return;
    }
    let m = TmpMount::new();
    let f = m.file("f.txt", b"data");
    let mut child = spawn_child("stuck-listener", Some(&m.path));
    let t = Instant::now();
    let opener = Command::new("cat").arg(&f).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    let _ = child.wait();
    let out = opener.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"data");
    // Held by the stuck listener until the kill (300 ms), then released at once.
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn configuration_from_the_effective_settings() {
    use crate::config::{ConfigFile, EnforcementLevel as L, Effective};
    for (level, mode) in [(L::RealTime, RtpMode::Block), (L::Audit, RtpMode::Audit), (L::OnDemand, RtpMode::Off), (L::Passive, RtpMode::Off)] {
        assert_eq!(RtpMode::from_enforcement_level(level), mode, "{level:?}");
    }
    let local: ConfigFile = serde_json::from_str(
        r#"{"antivirusEngine": {"enforcementLevel": "audit", "nonExecMountPolicy": "mute", "unmonitoredFilesystems": ["nfs4"]}}"#,
    )
    .unwrap();
    let c = RtpConfig::from_effective(&Effective::merge(&ConfigFile::default(), &local), true);
    assert_eq!(c.mode, RtpMode::Audit);
    assert!(c.non_exec_mount_mute && c.statistics);
    assert_eq!(c.unmonitored_filesystems, ["nfs4"]);
    assert_eq!((c.mount_points, c.deadline), (None, DEFAULT_DEADLINE));
    let d = RtpConfig::from_effective(&Effective::merge(&ConfigFile::default(), &ConfigFile::default()), false);
    assert_eq!(d.unmonitored_filesystems, RtpConfig::default().unmonitored_filesystems);
    assert!(!d.non_exec_mount_mute);
}
