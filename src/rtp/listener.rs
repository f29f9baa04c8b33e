//! The running listener: one fanotify group and its threads.
//!
//! ```text
//!  kernel queue ──read (≤ MAX_PENDING descriptors open)──▶ reader ──▶ pending table + work queue
//!                    own pid: answered ALLOW at once ◀──┘                │
//!  watchdog: answers ALLOW for events past the deadline ◀── pending ──▶ workers: cache? excluded?
//!                                                                        scan, answer, then report
//!  reporter: RtpHost::on_detection and logging (never on the answering path)
//!  mounts: marks new filesystems, unmarks gone or unwanted ones
//! ```
//!
//! **Exactly one answer per event.** Whoever removes an event from the pending table (a worker
//! with a verdict, the watchdog at the deadline, `stop`) answers it; the others find it gone.
//! The event's descriptor is closed only when the last holder drops it, after the answer, so a
//! descriptor number is never reused while an answer for it may still be written.
//!
//! **Bounded descriptors.** Every event descriptor is counted from the `read` that opens it
//! to its close (whoever holds it: the pending table, a worker, the watchdog), and the reader
//! reads no more events than keep that count at or below [`MAX_PENDING`]; the rest wait in the
//! kernel's bounded queue (`max_queued_events`), which holds no descriptors. (The watchdog's
//! emergency reads, when the reader is stuck, and the final drain on stop answer and close a
//! batch at a time.) When the kernel queue overflows, the kernel allows the permission events
//! it cannot queue (fail-open) and queues one `FAN_Q_OVERFLOW`, counted.

#![forbid(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::mounts::{self, Marks, MountPolicy, MountWatch};
use super::stats::{inc, Counters};
use super::{RtpConfig, RtpHost, RtpMode};
use crate::engine::Detection;
use crate::sys::fanotify::{evictable_supported, Event, Group, EVENT_METADATA_LEN};

/// Events read from the kernel and not yet answered, at most (each holds a descriptor).
pub(crate) const MAX_PENDING: usize = 1024;
/// Events read in one `read(2)`, at most.
const READ_BATCH: usize = 256;
/// Entries of the user-space verdict cache before it is emptied.
const CACHE_MAX: usize = 1 << 17;
/// Detections and notices waiting for the reporter.
const REPORT_QUEUE: usize = 4096;
/// How often threads look at the stop flag when idle.
const IDLE: Duration = Duration::from_millis(100);
/// A full mount resync at least this often, whatever `POLLPRI` says.
const MOUNT_RESYNC: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A permission event being decided.
struct InFlight {
    file: File,
    pid: i32,
    received: Instant,
    /// The count of event descriptors open, decremented when this one closes.
    open: Arc<AtomicUsize>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Pending {
    map: HashMap<u64, Arc<InFlight>>,
    /// Ids in arrival order with their arrival time (the watchdog's view).
    fifo: VecDeque<(u64, Instant)>,
    next_id: u64,
}

/// What identifies a file's content for the user-space verdict cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileKey {
    fn of(m: &std::fs::Metadata) -> FileKey {
        FileKey {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// Clean verdicts: (dev, ino) -> (key, cache epoch, host generation).
#[derive(Default)]
struct VerdictCache {
    map: HashMap<(u64, u64), (FileKey, u64, u64)>,
}

/// A verdict: `Ok(None)` clean, `Ok(Some(_))` detected, `Err(())` the scan panicked.
type Verdict = Result<Option<Detection>, ()>;

/// A scan in progress, that workers holding other events for the same inode wait on.
#[derive(Default)]
struct ScanSlot {
    /// The content scanned and its verdict.
    result: Mutex<Option<(FileKey, Verdict)>>,
    done: Condvar,
}

/// The registration of a worker as the one scanning an inode; releases the waiters with a
/// failed verdict if dropped without `finish` (a panic).
struct SlotRelease<'a> {
    shared: &'a Shared,
    key: FileKey,
    armed: bool,
}

impl SlotRelease<'_> {
    fn finish(&mut self, v: Verdict) {
        self.armed = false;
        self.shared.finish_shared_scan(self.key, v);
    }
}

impl Drop for SlotRelease<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.finish_shared_scan(self.key, Err(()));
        }
    }
}

/// What `shared_scan` found.
enum SharedScan {
    /// Nobody else is scanning this inode: scan it here.
    Mine,
    /// The verdict on this content.
    Verdict(Option<Detection>),
    /// No verdict by the deadline: the watchdog answers this event.
    GaveUp,
}

enum Report {
    Detection { path: PathBuf, det: Detection, blocked: bool },
    DeadlineAllow { path: PathBuf, pid: i32, waited: Duration },
}

pub(crate) struct Shared {
    group: Group,
    host: Arc<dyn RtpHost>,
    counters: Arc<Counters>,
    /// 1 = block, 2 = audit.
    mode: AtomicU8,
    deadline_us: AtomicU64,
    stop: AtomicBool,
    own_pid: i32,
    evictable: bool,
    pending: Mutex<Pending>,
    /// Event descriptors the reader has taken in and that are not closed yet (pending ones,
    /// ones a worker or the watchdog still holds, the batch being accepted).
    open_events: Arc<AtomicUsize>,
    work: Mutex<VecDeque<u64>>,
    work_cv: Condvar,
    cache: Mutex<VerdictCache>,
    /// Inodes being scanned right now: concurrent events for the same inode share one scan.
    scanning: Mutex<HashMap<(u64, u64), Arc<ScanSlot>>>,
    /// Bumped by every invalidation; ignore marks and cache entries are only added under the
    /// read lock and for the epoch the scan started in.
    epoch: RwLock<u64>,
    /// The host generation the caches were built for.
    host_gen: AtomicU64,
    marks: Mutex<Marks>,
    policy: Mutex<MountPolicy>,
    reports: SyncSender<Report>,
    /// When the listener started; the beats below are microseconds since then.
    epoch_start: Instant,
    reader_beat: AtomicU64,
    watchdog_beat: AtomicU64,
    #[cfg(test)]
    pub(crate) pause_reader: AtomicBool,
}

fn mode_code(m: RtpMode) -> u8 {
    match m {
        RtpMode::Off => 0,
        RtpMode::Block => 1,
        RtpMode::Audit => 2,
    }
}

pub(crate) fn policy_of(cfg: &RtpConfig) -> MountPolicy {
    MountPolicy {
        roots: cfg.mount_points.clone(),
        unmonitored: cfg.unmonitored_filesystems.clone(),
        noexec_mute: cfg.non_exec_mount_mute,
    }
}

/// The path an open descriptor of ours names (`/proc/self/fd/N`; ` (deleted)` when unlinked).
fn fd_path(f: &File) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).unwrap_or_default()
}

/// The executable and `comm` of a process; empty when it is gone.
fn process_info(pid: i32) -> (PathBuf, String) {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim_end_matches('\n').to_string()).unwrap_or_default();
    (exe, comm)
}

impl Shared {
    fn deadline(&self) -> Duration {
        Duration::from_micros(self.deadline_us.load(Ordering::Relaxed))
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn now_us(&self) -> u64 {
        self.epoch_start.elapsed().as_micros() as u64
    }

    fn beat(&self, b: &AtomicU64) {
        b.store(self.now_us(), Ordering::Relaxed);
    }

    fn beat_age(&self, b: &AtomicU64) -> Duration {
        Duration::from_micros(self.now_us().saturating_sub(b.load(Ordering::Relaxed)))
    }

    /// The reader and the watchdog have both been seen working recently.
    pub(crate) fn alive(&self) -> bool {
        let limit = Duration::from_secs(2);
        self.beat_age(&self.reader_beat) < limit && self.beat_age(&self.watchdog_beat) < limit
    }

    /// Answers an event unless someone already has; true when this call answered it.
    fn answer(&self, id: u64, inf: &InFlight, allow: bool) -> bool {
        if lock(&self.pending).map.remove(&id).is_none() {
            return false;
        }
        self.respond(inf, allow);
        true
    }

    /// Writes the answer. The counters move just before (a few atomic adds), so that whoever
    /// sees the open return also sees them.
    fn respond(&self, inf: &InFlight, allow: bool) {
        inc(if allow { &self.counters.allowed } else { &self.counters.denied });
        self.counters.latency.record(inf.received.elapsed());
        if self.group.respond(&inf.file, allow).is_err() {
            inc(&self.counters.errors);
        }
    }

    fn report(&self, r: Report) {
        match self.reports.try_send(r) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => inc(&self.counters.reports_dropped),
        }
    }

    /// Flushes both verdict caches: every inode mark of the group (the ignore marks; the
    /// filesystem marks are not inode marks and stay) and the user-space cache.
    pub(crate) fn invalidate(&self) {
        let mut epoch = self.epoch.write().unwrap_or_else(|e| e.into_inner());
        *epoch += 1;
        if self.group.flush_inodes().is_err() {
            inc(&self.counters.errors);
        }
        lock(&self.cache).map.clear();
        inc(&self.counters.invalidations);
    }

    fn check_host_generation(&self) -> u64 {
        let g = self.host.generation();
        if self.host_gen.swap(g, Ordering::AcqRel) != g {
            self.invalidate();
        }
        g
    }

    // ---- reader ----

    fn reader(&self) {
        let mut buf = vec![0u8; READ_BATCH * EVENT_METADATA_LEN];
        let mut events: Vec<Event> = Vec::with_capacity(READ_BATCH);
        while !self.stopping() {
            #[cfg(test)]
            while self.pause_reader.load(Ordering::SeqCst) && !self.stopping() {
                std::thread::sleep(Duration::from_millis(10));
            }
            self.beat(&self.reader_beat);
            let room = MAX_PENDING.saturating_sub(self.open_events.load(Ordering::Relaxed));
            if room == 0 {
                // Every slot holds an event being decided; the watchdog frees them by the
                // deadline at the latest. Unread events wait in the kernel (no descriptor yet).
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            match self.group.wait_readable(IDLE) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => {
                    inc(&self.counters.errors);
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
            #[cfg(test)]
            if self.pause_reader.load(Ordering::SeqCst) {
                continue;
            }
            let want = room.min(READ_BATCH) * EVENT_METADATA_LEN;
            if self.group.read_events(&mut buf[..want], &mut events).is_err() {
                inc(&self.counters.errors);
                continue;
            }
            let with_fd = events.iter().filter(|e| e.file.is_some()).count();
            self.open_events.fetch_add(with_fd, Ordering::Relaxed);
            let mut queued = 0;
            for ev in events.drain(..) {
                if let Some(id) = self.accept(ev) {
                    lock(&self.work).push_back(id);
                    queued += 1;
                }
            }
            match queued {
                0 => {}
                1 => self.work_cv.notify_one(),
                _ => self.work_cv.notify_all(),
            }
        }
        // Stopping: the marks are gone; allow whatever is still queued in the kernel.
        loop {
            match self.group.read_events(&mut buf, &mut events) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    for ev in events.drain(..) {
                        if let (true, Some(file)) = (ev.is_perm(), ev.file.as_ref()) {
                            let _ = self.group.respond(file, true);
                            inc(&self.counters.allowed);
                        }
                    }
                }
            }
        }
    }

    /// Takes one event in: answers our own at once, queues the others. Returns the id queued.
    fn accept(&self, ev: Event) -> Option<u64> {
        if ev.is_overflow() {
            inc(&self.counters.queue_overflows);
            return None;
        }
        let is_perm = ev.is_perm();
        let file = ev.file?;
        if !is_perm {
            drop(file);
            self.open_events.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        inc(&self.counters.events);
        let inf = InFlight { file, pid: ev.pid, received: Instant::now(), open: self.open_events.clone() };
        if ev.pid == self.own_pid {
            // Our own accesses (quarantine, logging, definitions) never wait on ourselves.
            inc(&self.counters.self_allowed);
            self.respond(&inf, true);
            return None;
        }
        let mut p = lock(&self.pending);
        let id = p.next_id;
        p.next_id += 1;
        let received = inf.received;
        p.map.insert(id, Arc::new(inf));
        p.fifo.push_back((id, received));
        Some(id)
    }

    // ---- watchdog ----

    fn watchdog(&self) {
        let mut buf = vec![0u8; READ_BATCH * EVENT_METADATA_LEN];
        let mut events: Vec<Event> = Vec::new();
        while !self.stopping() {
            self.beat(&self.watchdog_beat);
            let deadline = self.deadline();
            let tick = (deadline / 10).clamp(Duration::from_millis(1), Duration::from_millis(20));
            std::thread::sleep(tick);
            // The reader wakes at least every IDLE; if it has not for longer than the deadline
            // it is stuck (it must never block, but if it did, events still in the kernel queue
            // would wait forever): read and allow them here.
            if self.beat_age(&self.reader_beat) > deadline.max(IDLE * 3) {
                // A bounded number of batches per tick, so the watchdog's own duty goes on.
                for _ in 0..16 {
                    match self.group.read_events(&mut buf, &mut events) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    for ev in events.drain(..) {
                        if let (true, Some(file)) = (ev.is_perm(), ev.file.as_ref()) {
                            inc(&self.counters.deadline_allows);
                            inc(&self.counters.allowed);
                            if self.group.respond(file, true).is_err() {
                                inc(&self.counters.errors);
                            }
                        }
                    }
                }
            }
            let now = Instant::now();
            let mut expired = Vec::new();
            {
                let mut p = lock(&self.pending);
                while let Some(&(id, at)) = p.fifo.front() {
                    if at + deadline > now {
                        break;
                    }
                    p.fifo.pop_front();
                    if let Some(inf) = p.map.remove(&id) {
                        expired.push(inf);
                    }
                }
            }
            // Answer first, then anything else.
            for inf in &expired {
                inc(&self.counters.deadline_allows);
                self.respond(inf, true);
            }
            for inf in expired {
                let path = fd_path(&inf.file);
                self.report(Report::DeadlineAllow { path, pid: inf.pid, waited: inf.received.elapsed() });
            }
        }
    }

    // ---- workers ----

    fn next_work(&self) -> Option<u64> {
        let mut q = lock(&self.work);
        loop {
            if self.stopping() {
                return None;
            }
            if let Some(id) = q.pop_front() {
                return Some(id);
            }
            q = self.work_cv.wait_timeout(q, IDLE).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn worker(&self) {
        while let Some(id) = self.next_work() {
            let Some(inf) = lock(&self.pending).map.get(&id).cloned() else { continue };
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| self.decide(id, &inf)));
            if r.is_err() {
                // A panicking host must not leave the opener waiting for the deadline.
                inc(&self.counters.errors);
                self.answer(id, &inf, true);
            }
        }
    }

    fn decide(&self, id: u64, inf: &InFlight) {
        let host_gen = self.check_host_generation();
        let epoch = *self.epoch.read().unwrap_or_else(|e| e.into_inner());
        let key = match inf.file.metadata() {
            Ok(m) if m.is_file() => FileKey::of(&m),
            // Not a regular file (or unreadable): nothing to scan.
            _ => {
                self.answer(id, inf, true);
                return;
            }
        };
        let cached = lock(&self.cache).map.get(&(key.dev, key.ino)).is_some_and(|e| *e == (key, epoch, host_gen));
        if cached {
            inc(&self.counters.cache_hits);
            // The kernel mark was evicted or dropped by a modification that changed nothing
            // the key sees (or it could not be placed): place it again.
            self.remember_clean(inf, key, epoch, host_gen);
            self.answer(id, inf, true);
            return;
        }
        let path = fd_path(&inf.file);
        let (exe, comm) = process_info(inf.pid);
        if self.host.is_excluded(&path, &exe, &comm) {
            inc(&self.counters.excluded);
            self.answer(id, inf, true);
            return;
        }
        let mine = match self.shared_scan(inf, key) {
            SharedScan::Verdict(found) => {
                self.conclude(id, inf, key, epoch, host_gen, path, found);
                return;
            }
            SharedScan::GaveUp => return,
            SharedScan::Mine => true,
        };
        debug_assert!(mine);
        // Whatever happens below (a panicking host included), the waiters are released.
        let mut slot = SlotRelease { shared: self, key, armed: true };
        let started = Instant::now();
        let found = self.host.scan(&inf.file, &path);
        let took = started.elapsed();
        inc(&self.counters.scanned);
        self.counters.record_scan(&comm, &exe.to_string_lossy(), took);
        // Release the waiters only once a clean verdict is cached, so that an event for this
        // inode arriving meanwhile finds either the slot or the cache entry.
        if found.is_none() {
            self.remember_clean(inf, key, epoch, host_gen);
            slot.finish(Ok(None));
            self.answer(id, inf, true);
        } else {
            slot.finish(Ok(found.clone()));
            self.conclude(id, inf, key, epoch, host_gen, path, found);
        }
    }

    /// Answers with a verdict, then reports a detection.
    #[allow(clippy::too_many_arguments)]
    fn conclude(&self, id: u64, inf: &InFlight, key: FileKey, epoch: u64, host_gen: u64, path: PathBuf, found: Option<Detection>) {
        match found {
            None => {
                // Cached before answering, so the opener's next event (exec, then open) is not
                // scanned again.
                self.remember_clean(inf, key, epoch, host_gen);
                self.answer(id, inf, true);
            }
            Some(det) => {
                let block = self.mode.load(Ordering::Relaxed) == mode_code(RtpMode::Block);
                inc(&self.counters.detections);
                let in_time = self.answer(id, inf, !block);
                self.report(Report::Detection { path, det, blocked: block && in_time });
            }
        }
    }

    /// If another worker is scanning the same inode, waits for its verdict (until this
    /// event's deadline) and takes it when it was for the same content. `Mine`: scan it here;
    /// this worker is then registered as the one scanning and must call `finish_shared_scan`.
    fn shared_scan(&self, inf: &InFlight, key: FileKey) -> SharedScan {
        let slot = {
            let mut m = lock(&self.scanning);
            match m.get(&(key.dev, key.ino)) {
                Some(s) => s.clone(),
                None => {
                    m.insert((key.dev, key.ino), Arc::new(ScanSlot::default()));
                    return SharedScan::Mine;
                }
            }
        };
        let until = inf.received + self.deadline();
        let mut r = lock(&slot.result);
        while r.is_none() {
            let now = Instant::now();
            if now >= until {
                return SharedScan::GaveUp;
            }
            r = slot.done.wait_timeout(r, until - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        match r.as_ref() {
            Some((k, Ok(found))) if *k == key => SharedScan::Verdict(found.clone()),
            // The file changed meanwhile, or that scan failed: scan this content here.
            _ => {
                drop(r);
                let found = self.host.scan(&inf.file, &fd_path(&inf.file));
                inc(&self.counters.scanned);
                SharedScan::Verdict(found)
            }
        }
    }

    fn finish_shared_scan(&self, key: FileKey, found: Verdict) {
        if let Some(slot) = lock(&self.scanning).remove(&(key.dev, key.ino)) {
            *lock(&slot.result) = Some((key, found));
            slot.done.notify_all();
        }
    }

    /// After a clean verdict for content `key`: the kernel ignore mark and the user-space entry,
    /// unless the caches were invalidated since the scan started or the file changed meanwhile.
    fn remember_clean(&self, inf: &InFlight, key: FileKey, epoch: u64, host_gen: u64) {
        let current = self.epoch.read().unwrap_or_else(|e| e.into_inner());
        if *current != epoch || self.host.generation() != host_gen {
            return;
        }
        match self.group.ignore_inode(&inf.file, self.evictable) {
            Ok(()) => inc(&self.counters.ignore_marks),
            Err(_) => inc(&self.counters.errors),
        }
        // A change between the scan and the mark left no modify event to clear the mark: undo.
        let now = inf.file.metadata().map(|m| FileKey::of(&m)).ok();
        if now != Some(key) {
            let _ = self.group.unignore_inode(&inf.file);
            return;
        }
        let mut c = lock(&self.cache);
        if c.map.len() >= CACHE_MAX {
            c.map.clear();
        }
        c.map.insert((key.dev, key.ino), (key, epoch, host_gen));
    }

    // ---- reporter ----

    fn reporter(&self, rx: Receiver<Report>) {
        let mut window = Instant::now();
        let mut logged = 0u32;
        let mut suppressed = 0u64;
        let mut handle = |r: Report| match r {
            Report::Detection { path, det, blocked } => {
                let host = self.host.clone();
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| host.on_detection(&path, &det, blocked)));
            }
            Report::DeadlineAllow { path, pid, waited } => {
                if window.elapsed() > Duration::from_secs(10) {
                    if suppressed > 0 {
                        tracing::warn!("real-time protection: {suppressed} more opens allowed at the deadline");
                    }
                    window = Instant::now();
                    logged = 0;
                    suppressed = 0;
                }
                if logged < 10 {
                    logged += 1;
                    tracing::warn!(
                        "real-time protection: allowed {} (pid {pid}) unscanned: no verdict within the deadline (waited {} ms)",
                        path.display(),
                        waited.as_millis()
                    );
                } else {
                    suppressed += 1;
                }
            }
        };
        loop {
            match rx.recv_timeout(IDLE) {
                Ok(r) => handle(r),
                Err(RecvTimeoutError::Timeout) if self.stopping() => break,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        while let Ok(r) = rx.try_recv() {
            handle(r);
        }
    }

    // ---- mounts ----

    pub(crate) fn sync_mounts(&self, table: &mounts::MountTable) {
        let policy = lock(&self.policy).clone();
        let failures = lock(&self.marks).sync(&self.group, table, &policy);
        for _ in 0..failures {
            inc(&self.counters.errors);
        }
    }

    fn mount_follower(&self) {
        let mut watch = match MountWatch::open() {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("real-time protection: cannot follow mounts: {e}");
                return;
            }
        };
        let mut last = Instant::now();
        // The first read arms the notification.
        let _ = watch.read();
        while !self.stopping() {
            let changed = watch.wait(IDLE);
            if changed || last.elapsed() >= MOUNT_RESYNC {
                let table = watch.read();
                if !self.stopping() {
                    self.sync_mounts(&table);
                }
                last = Instant::now();
            }
        }
    }
}

/// A started listener.
pub(crate) struct Running {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl Running {
    pub(crate) fn start(cfg: &RtpConfig, host: Arc<dyn RtpHost>, counters: Arc<Counters>) -> std::io::Result<Running> {
        let group = Group::new_content()?;
        let (tx, rx) = std::sync::mpsc::sync_channel(REPORT_QUEUE);
        let shared = Arc::new(Shared {
            group,
            host_gen: AtomicU64::new(host.generation()),
            host,
            counters,
            mode: AtomicU8::new(mode_code(cfg.mode)),
            deadline_us: AtomicU64::new(cfg.deadline.as_micros().clamp(1_000, 60_000_000) as u64),
            stop: AtomicBool::new(false),
            own_pid: std::process::id() as i32,
            evictable: evictable_supported(),
            pending: Mutex::new(Pending::default()),
            open_events: Arc::new(AtomicUsize::new(0)),
            work: Mutex::new(VecDeque::new()),
            work_cv: Condvar::new(),
            cache: Mutex::new(VerdictCache::default()),
            scanning: Mutex::new(HashMap::new()),
            epoch: RwLock::new(0),
            marks: Mutex::new(Marks::default()),
            policy: Mutex::new(policy_of(cfg)),
            reports: tx,
            epoch_start: Instant::now(),
            reader_beat: AtomicU64::new(0),
            watchdog_beat: AtomicU64::new(0),
            #[cfg(test)]
            pause_reader: AtomicBool::new(false),
        });
        shared.counters.per_process_enabled.store(cfg.statistics, Ordering::Relaxed);
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| std::thread::Builder::new().name(name.to_string()).spawn(f);
        let mut running = Running { shared: shared.clone(), threads: Vec::new(), workers: Vec::new() };
        // Answering threads first, so that marks never exist without a reader. On an error
        // `running` drops, which stops what was started.
        let s = shared.clone();
        running.threads.push(spawn("rtp-reader", Box::new(move || s.reader()))?);
        let s = shared.clone();
        running.threads.push(spawn("rtp-watchdog", Box::new(move || s.watchdog()))?);
        let s = shared.clone();
        running.threads.push(spawn("rtp-report", Box::new(move || s.reporter(rx)))?);
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(2, 8) + 2;
        for i in 0..n {
            let s = shared.clone();
            running.workers.push(spawn(&format!("rtp-worker-{i}"), Box::new(move || s.worker()))?);
        }
        running.shared.sync_mounts(&mounts::current_table());
        let s = running.shared.clone();
        // On an error `running` drops, which stops what was started.
        running.threads.push(spawn("rtp-mounts", Box::new(move || s.mount_follower()))?);
        Ok(running)
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Applies a new configuration (mode stays Block or Audit).
    pub(crate) fn apply(&self, cfg: &RtpConfig) {
        let s = &self.shared;
        s.mode.store(mode_code(cfg.mode), Ordering::Relaxed);
        s.deadline_us.store(cfg.deadline.as_micros().clamp(1_000, 60_000_000) as u64, Ordering::Relaxed);
        s.counters.per_process_enabled.store(cfg.statistics, Ordering::Relaxed);
        let policy = policy_of(cfg);
        let changed = {
            let mut p = lock(&s.policy);
            let changed = *p != policy;
            *p = policy;
            changed
        };
        if changed {
            s.sync_mounts(&mounts::current_table());
        }
    }

    pub(crate) fn marked(&self) -> Vec<String> {
        lock(&self.shared.marks).mount_points()
    }

    pub(crate) fn evictable(&self) -> bool {
        self.shared.evictable
    }

    pub(crate) fn alive(&self) -> bool {
        self.shared.alive()
    }

    pub(crate) fn pending(&self) -> usize {
        lock(&self.shared.pending).map.len()
    }

    /// Removes every mark, allows every pending event, and ends the threads. Workers busy in a
    /// scan finish it on their own (their late verdicts are dropped); the group closes (and the
    /// kernel allows anything still queued) when the last of them is done.
    pub(crate) fn stop(self) {
        drop(self)
    }

    fn allow_all_pending(&self) {
        let s = &self.shared;
        let pending: Vec<Arc<InFlight>> = {
            let mut p = lock(&s.pending);
            p.fifo.clear();
            p.map.drain().map(|(_, v)| v).collect()
        };
        for inf in &pending {
            s.respond(inf, true);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let s = self.shared.clone();
        s.stop.store(true, Ordering::SeqCst);
        if s.group.flush_filesystems().is_err() {
            inc(&s.counters.errors);
        }
        let _ = s.group.flush_inodes();
        lock(&s.marks).clear();
        self.allow_all_pending();
        s.work_cv.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // The reader may have queued a last batch before it saw the flag.
        self.allow_all_pending();
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until && !self.workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(5));
        }
        for w in self.workers.drain(..) {
            if w.is_finished() {
                let _ = w.join();
            }
        }
    }
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("threads", &self.threads.len()).field("workers", &self.workers.len()).finish()
    }
}
