//! Real-time protection: a fanotify permission-event listener that scans files as they are
//! opened or executed, blocks (or reports) malicious ones, and never hangs the machine.
//!
//! The daemon owns one [`Rtp`] and talks to it through a narrow API: [`Rtp::start`] and
//! [`Rtp::reconfigure`] with an [`RtpConfig`], [`Rtp::invalidate`] when definitions or
//! exclusions change, [`Rtp::stats`], and an [`RtpHost`] it implements (scan, exclusions,
//! detection handling).
//!
//! # How an open is decided
//! 1. The kernel queues a `FAN_OPEN_PERM` / `FAN_OPEN_EXEC_PERM` event on our content-class group
//!    (one `FAN_MARK_FILESYSTEM` mark per watched filesystem, see `rtp::mounts`) and the opener
//!    waits for our answer.
//! 2. The reader thread reads it; an event of our own process (any thread) is allowed at once.
//! 3. A worker answers from the user-space verdict cache (key: device, inode, size, mtime,
//!    ctime, cache epoch, host generation) if it can; otherwise asks [`RtpHost::is_excluded`]
//!    with the file's path (`/proc/self/fd/N`), the process's executable (`/proc/PID/exe`) and
//!    name (`/proc/PID/comm`): excluded opens are allowed without a scan. Otherwise it scans
//!    through [`RtpHost::scan`] on the event's own descriptor (reading it raises no events).
//! 4. Clean: an ignore mark for the permission events goes on the inode (evictable where the
//!    kernel has `FAN_MARK_EVICTABLE`, 5.19+, so it never pins the inode; never
//!    `SURV_MODIFY`, so the kernel drops it when the file is modified) and the file goes into
//!    the user-space cache, then the open is allowed. Later opens of the same unchanged inode
//!    never reach user space.
//! 5. Detected: `Block` denies (the opener gets EPERM), `Audit` allows. The answer is written
//!    first; then [`RtpHost::on_detection`] is called from a reporting thread (the daemon logs,
//!    records and quarantines there).
//!
//! # Never hang
//! - Every event has a deadline ([`RtpConfig::deadline`], 250 ms by default): a watchdog thread
//!   allows whatever is still undecided at the deadline and counts it (`deadline_allows`); a late
//!   verdict is dropped, and a late detection is still reported (`blocked: false`).
//! - Answers are written before anything is logged; the answering threads (reader, watchdog,
//!   workers) never log, never wait on the host's detection handling, never open files on
//!   watched filesystems.
//! - Our own process is answered without a scan, so the daemon's file accesses never wait on
//!   itself.
//! - At most `MAX_PENDING` (1024) event descriptors are open at once, from the read to the
//!   close; the rest wait in the kernel's bounded queue. No `FAN_UNLIMITED_QUEUE`: past
//!   `max_queued_events` (16384 by default) the kernel allows the events it cannot queue
//!   (fail-open) and reports an overflow (counted in `queue_overflows`). Memory and
//!   descriptors therefore stay bounded under any load.
//! - Should the reader ever stop reading (it must not block, but if it did, events still in the
//!   kernel queue would wait forever), the watchdog notices its missing heartbeat after the
//!   deadline and reads and allows the queued events itself. [`Rtp::is_alive`] tells the
//!   daemon's systemd watchdog whether both threads are making progress.
//! - If the daemon dies, the kernel allows every pending event when the group closes.
//!
//! # Invalidation
//! [`Rtp::invalidate`] (and any change of [`RtpHost::generation`], noticed at the next event)
//! flushes every inode mark of the group (`FAN_MARK_FLUSH` without `FAN_MARK_FILESYSTEM`: the
//! ignore marks are the group's only inode marks, the filesystem marks stay) and empties the
//! user-space cache. A scan that started before the invalidation does not cache its verdict.
//!
//! # Known limits
//! - Writes through a shared writable `mmap` raise no modify event: the kernel keeps the ignore
//!   mark. A change made between the scan and the placing of the mark is caught by comparing
//!   size/mtime/ctime before and after (timestamps are as fine as the filesystem keeps them).
//! - Paths come from `/proc/self/fd` and processes from `/proc/PID` (the process may be gone:
//!   its executable is then empty).
//! - Only `FAN_OPEN_PERM`/`FAN_OPEN_EXEC_PERM`: a file opened before it became malicious is not
//!   re-checked on read.
//! - The deadline runs from the moment an event is read. With more than `MAX_PENDING`
//!   simultaneous opens the excess waits in the kernel queue for a slot first (the watchdog
//!   frees all slots every deadline, so that wait is a few deadlines at most).
//! - A deadline allow is fail-open by design: scans slower than the deadline (huge files, a
//!   stalled disk) let the open through unscanned; the verdict still comes and is reported.
//! - The user-space cache trusts size + mtime + ctime: on kernels without multigrain
//!   timestamps (before 6.13) a same-size rewrite within one timestamp tick of our scan could
//!   keep a stale clean verdict (the kernel ignore mark itself is cleared by any write).
//! - Concurrent events for one inode share one scan (the others wait for it, up to their
//!   deadline).

#![forbid(unsafe_code)]

mod conflicts;
mod listener;
mod mounts;
mod stats;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use conflicts::{conflicting_applications, conflicting_processes, ConflictingProcess};
pub use stats::{Latency, ProcessStats, RtpStats};

use crate::engine::Detection;
use stats::Counters;

/// What real-time protection does with a detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtpMode {
    /// No fanotify group and no marks at all (`on_demand`, `passive`).
    #[default]
    Off,
    /// Deny the open (EPERM) and report (`real_time`).
    Block,
    /// Allow the open and report (`audit`).
    Audit,
}

impl RtpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RtpMode::Off => "off",
            RtpMode::Block => "block",
            RtpMode::Audit => "audit",
        }
    }
}

/// The default decision deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(250);

/// How real-time protection runs; the daemon derives it from the effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpConfig {
    pub mode: RtpMode,
    /// Longest time an open waits for a verdict (clamped to 1 ms ..= 60 s).
    pub deadline: Duration,
    /// `None`: every mounted filesystem of the real-time types (followed as mounts come and
    /// go). `Some(roots)`: only the filesystems of these paths (whatever their type) and the
    /// real-time-type mounts below them (tests, benchmarks).
    pub mount_points: Option<Vec<PathBuf>>,
    /// `unmonitoredFilesystems`: filesystem types never marked (`fuse` also covers `fuse.*`).
    pub unmonitored_filesystems: Vec<String>,
    /// `nonExecMountPolicy: mute`: a filesystem all of whose mounts are `noexec` is not marked.
    pub non_exec_mount_mute: bool,
    /// Per-process statistics (`real-time-protection-statistics`).
    pub statistics: bool,
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            mode: RtpMode::Off,
            deadline: DEFAULT_DEADLINE,
            mount_points: None,
            unmonitored_filesystems: crate::config::DEFAULT_UNMONITORED_FILESYSTEMS.iter().map(|s| s.to_string()).collect(),
            non_exec_mount_mute: false,
            statistics: false,
        }
    }
}

impl RtpMode {
    /// The mode an enforcement level asks for: `real_time` blocks, `audit` reports,
    /// `on_demand` and `passive` place no marks at all.
    pub fn from_enforcement_level(level: crate::config::EnforcementLevel) -> RtpMode {
        use crate::config::EnforcementLevel as L;
        match level {
            L::RealTime => RtpMode::Block,
            L::Audit => RtpMode::Audit,
            L::OnDemand | L::Passive => RtpMode::Off,
        }
    }
}

impl RtpConfig {
    /// The configuration the effective settings ask for (mode, `unmonitoredFilesystems`,
    /// `nonExecMountPolicy`), with every mounted filesystem watched, the default deadline and
    /// the given statistics switch. The daemon adjusts the rest (test mount points, deadline).
    pub fn from_effective(eff: &crate::config::Effective, statistics: bool) -> RtpConfig {
        RtpConfig {
            mode: RtpMode::from_enforcement_level(eff.enforcement_level.value),
            deadline: DEFAULT_DEADLINE,
            mount_points: None,
            unmonitored_filesystems: eff.unmonitored_filesystems.value.clone(),
            non_exec_mount_mute: eff.non_exec_mount_policy.value == crate::config::NonExecMountPolicy::Mute,
            statistics,
        }
    }
}

/// What real-time protection needs from the daemon. Called from several threads at once;
/// none of these may open files on watched filesystems *in another process* and wait for it.
pub trait RtpHost: Send + Sync {
    /// Scans an opened file (read it from the start through `file`; `path` is for names and
    /// archive paths only). `None` = clean.
    fn scan(&self, file: &std::fs::File, path: &Path) -> Option<Detection>;
    /// True when the open must not be scanned: `path` is excluded (epp or global scope), or
    /// the process is (by executable path `exe`, empty when unknown, or by name `comm`).
    fn is_excluded(&self, path: &Path, exe: &Path, comm: &str) -> bool;
    /// A detection, after the open was answered (`blocked`: the open was denied). Called from
    /// one reporting thread, in order; may take its time (logging, recording, quarantine).
    fn on_detection(&self, path: &Path, det: &Detection, blocked: bool);
    /// Changes whenever definitions or exclusions change: cached verdicts of another
    /// generation are not used.
    fn generation(&self) -> u64;
}

/// Real-time protection: owns the fanotify group while a mode other than `Off` is in force.
pub struct Rtp {
    host: Arc<dyn RtpHost>,
    counters: Arc<Counters>,
    state: Mutex<State>,
    reconfiguring: Mutex<()>,
}

struct State {
    cfg: RtpConfig,
    running: Option<listener::Running>,
}

impl std::fmt::Debug for Rtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("Rtp").field("cfg", &st.cfg).field("running", &st.running.is_some()).finish()
    }
}

impl Rtp {
    /// Whether this kernel and these privileges allow real-time protection: a content-class
    /// fanotify group can be created. `Err` says why not.
    pub fn available() -> Result<(), String> {
        match crate::sys::fanotify::Group::new_content() {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                Err("fanotify permission events need CAP_SYS_ADMIN (run wdavdaemon as root)".into())
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Err("the kernel has no fanotify".into()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                Err("the kernel has no fanotify permission events (CONFIG_FANOTIFY_ACCESS_PERMISSIONS)".into())
            }
            Err(e) => Err(format!("fanotify_init: {e}")),
        }
    }

    /// Starts in `cfg.mode` (nothing runs in `Off`). Fails when the group cannot be created.
    pub fn start(cfg: RtpConfig, host: Arc<dyn RtpHost>) -> io::Result<Rtp> {
        let rtp = Rtp {
            host,
            counters: Arc::new(Counters::default()),
            state: Mutex::new(State { cfg: RtpConfig::default(), running: None }),
            reconfiguring: Mutex::new(()),
        };
        rtp.reconfigure(cfg)?;
        Ok(rtp)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a new configuration live: `Off` removes every mark and closes the group;
    /// `Block`/`Audit` (re)open it; the other fields apply at once (the marks follow a changed
    /// mount policy). When the group cannot be started the error is returned and real-time
    /// protection stays off (`config().mode` is then `Off`).
    pub fn reconfigure(&self, cfg: RtpConfig) -> io::Result<()> {
        // One reconfiguration at a time; the state lock itself is never held while threads are
        // started or joined (a host callback may ask for `stats` meanwhile).
        let _one = self.reconfiguring.lock().unwrap_or_else(|e| e.into_inner());
        self.counters.per_process_enabled.store(cfg.statistics, std::sync::atomic::Ordering::Relaxed);
        if !cfg.statistics {
            self.counters.clear_processes();
        }
        if cfg.mode == RtpMode::Off {
            let old = {
                let mut st = self.lock();
                st.cfg = cfg;
                st.running.take()
            };
            if let Some(r) = old {
                r.stop();
            }
            return Ok(());
        }
        {
            let mut st = self.lock();
            if let Some(r) = &st.running {
                r.apply(&cfg);
                st.cfg = cfg;
                return Ok(());
            }
        }
        match listener::Running::start(&cfg, self.host.clone(), self.counters.clone()) {
            Ok(r) => {
                let mut st = self.lock();
                st.running = Some(r);
                st.cfg = cfg;
                Ok(())
            }
            Err(e) => {
                self.lock().cfg = RtpConfig { mode: RtpMode::Off, ..cfg };
                Err(e)
            }
        }
    }

    /// Flushes both verdict caches (kernel ignore marks and user-space entries): call after a
    /// definitions update or an exclusion change.
    pub fn invalidate(&self) {
        if let Some(r) = &self.lock().running {
            r.shared().invalidate();
        }
    }

    /// True while a fanotify group is open (mode `Block` or `Audit`).
    pub fn is_running(&self) -> bool {
        self.lock().running.is_some()
    }

    /// For the daemon's systemd watchdog (`WATCHDOG=1` only while this holds): true when
    /// real-time protection is off, or its reader and deadline watchdog threads have both
    /// made progress within the last 2 s.
    pub fn is_alive(&self) -> bool {
        self.lock().running.as_ref().map_or(true, |r| r.alive())
    }

    /// Test hook: makes the reader thread stop reading (as if it were stuck).
    #[cfg(test)]
    pub(crate) fn pause_reader(&self, on: bool) {
        if let Some(r) = &self.lock().running {
            r.shared().pause_reader.store(on, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> RtpConfig {
        self.lock().cfg.clone()
    }

    /// Counters, latency percentiles and (when enabled) per-process statistics.
    pub fn stats(&self) -> RtpStats {
        let st = self.lock();
        let mut s = self.counters.snapshot();
        s.mode = st.cfg.mode.as_str().to_string();
        if let Some(r) = &st.running {
            s.running = true;
            s.filesystems = r.marked();
            s.evictable_marks = r.evictable();
            s.pending = r.pending() as u64;
        }
        s
    }

    /// Zeroes the latency histogram and the per-process statistics.
    pub fn reset_statistics(&self) {
        self.counters.latency.reset();
        self.counters.clear_processes();
    }

    /// Removes every mark, allows every pending event and stops the threads.
    pub fn stop(self) {
        drop(self)
    }
}

impl Drop for Rtp {
    fn drop(&mut self) {
        let running = self.lock().running.take();
        if let Some(r) = running {
            r.stop();
        }
    }
}
