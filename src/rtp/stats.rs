//! Counters, the decision-latency histogram and per-process scan statistics.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (µs) of the latency buckets: 1-2-3-5-7 per decade from 1 µs to 10 s; the last
/// bucket holds everything slower.
const BOUNDS_US: [u64; 36] = [
    1, 2, 3, 5, 7, //
    10, 20, 30, 50, 70, //
    100, 200, 300, 500, 700, //
    1_000, 2_000, 3_000, 5_000, 7_000, //
    10_000, 20_000, 30_000, 50_000, 70_000, //
    100_000, 200_000, 300_000, 500_000, 700_000, //
    1_000_000, 2_000_000, 3_000_000, 5_000_000, 7_000_000, //
    10_000_000,
];

/// A fixed, lock-free histogram of durations.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    max_us: AtomicU64,
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { buckets: std::array::from_fn(|_| AtomicU64::new(0)), max_us: AtomicU64::new(0), sum_us: AtomicU64::new(0) }
    }
}

impl Histogram {
    pub(crate) fn record(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        let i = BOUNDS_US.partition_point(|&b| b < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Latency {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let max = self.max_us.load(Ordering::Relaxed);
        let pct = |p: f64| -> u64 {
            if total == 0 {
                return 0;
            }
            let rank = ((total as f64) * p).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return BOUNDS_US.get(i).copied().unwrap_or(max).min(max);
                }
            }
            max
        };
        Latency {
            count: total,
            p50_us: pct(0.50),
            p90_us: pct(0.90),
            p99_us: pct(0.99),
            max_us: max,
            mean_us: self.sum_us.load(Ordering::Relaxed).checked_div(total).unwrap_or(0),
        }
    }

    pub(crate) fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
        self.max_us.store(0, Ordering::Relaxed);
        self.sum_us.store(0, Ordering::Relaxed);
    }
}

/// Percentiles of the time from reading a permission event to writing its answer. They are
/// upper bounds of histogram buckets (1-2-3-5-7 steps per decade), never above the maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub mean_us: u64,
}

/// What real-time protection did for one process (by `comm` and executable).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProcessStats {
    /// The process name (`/proc/PID/comm`).
    pub name: String,
    /// The executable (`/proc/PID/exe`), empty when unknown.
    pub path: String,
    pub total_files_scanned: u64,
    /// Total time spent scanning its files, in microseconds.
    pub scan_time_us: u64,
    /// The slowest single scan, in microseconds.
    pub max_scan_time_us: u64,
}

/// A snapshot of real-time protection's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RtpStats {
    /// `off`, `block` or `audit`.
    pub mode: String,
    /// A fanotify group is open and listening.
    pub running: bool,
    /// Mount points through which a filesystem is marked (one per filesystem).
    pub filesystems: Vec<String>,
    /// Ignore marks are evictable (`FAN_MARK_EVICTABLE`, Linux 5.19+).
    pub evictable_marks: bool,
    /// Permission events read.
    pub events: u64,
    /// Events of our own process, allowed at once.
    pub self_allowed: u64,
    /// Answered from the user-space verdict cache.
    pub cache_hits: u64,
    /// Allowed without a scan because the path or the process is excluded.
    pub excluded: u64,
    /// Files scanned.
    pub scanned: u64,
    pub allowed: u64,
    pub denied: u64,
    pub detections: u64,
    /// Events allowed by the watchdog because no verdict came within the deadline.
    pub deadline_allows: u64,
    /// Kernel queue overflows (the kernel allowed the events it could not queue).
    pub queue_overflows: u64,
    /// Ignore marks placed after clean verdicts.
    pub ignore_marks: u64,
    /// Cache invalidations (definitions or exclusions changed).
    pub invalidations: u64,
    /// Detection reports dropped because the reporting queue was full.
    pub reports_dropped: u64,
    /// Failed fanotify calls (responses, marks).
    pub errors: u64,
    /// Events being decided right now (each holds one descriptor).
    pub pending: u64,
    /// Decision latency of answered events.
    pub latency: Latency,
    /// Per process, most scan time first (empty unless statistics are enabled).
    pub processes: Vec<ProcessStats>,
}

/// The live counters behind [`RtpStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub events: AtomicU64,
    pub self_allowed: AtomicU64,
    pub cache_hits: AtomicU64,
    pub excluded: AtomicU64,
    pub scanned: AtomicU64,
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
    pub detections: AtomicU64,
    pub deadline_allows: AtomicU64,
    pub queue_overflows: AtomicU64,
    pub ignore_marks: AtomicU64,
    pub invalidations: AtomicU64,
    pub reports_dropped: AtomicU64,
    pub errors: AtomicU64,
    pub latency: Histogram,
    pub per_process_enabled: AtomicBool,
    per_process: Mutex<HashMap<(String, String), ProcessStats>>,
}

/// At most this many processes are tracked; further ones are summed under `(other)`.
const MAX_PROCESSES: usize = 4096;

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn record_scan(&self, name: &str, exe: &str, took: Duration) {
        if !self.per_process_enabled.load(Ordering::Relaxed) {
            return;
        }
        let us = took.as_micros().min(u64::MAX as u128) as u64;
        let mut m = self.per_process.lock().unwrap_or_else(|e| e.into_inner());
        let key = (name.to_string(), exe.to_string());
        let key = if m.len() >= MAX_PROCESSES && !m.contains_key(&key) { ("(other)".to_string(), String::new()) } else { key };
        let e = m.entry(key).or_insert_with_key(|(n, p)| ProcessStats { name: n.clone(), path: p.clone(), ..Default::default() });
        e.total_files_scanned += 1;
        e.scan_time_us += us;
        e.max_scan_time_us = e.max_scan_time_us.max(us);
    }

    pub(crate) fn clear_processes(&self) {
        self.per_process.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub(crate) fn snapshot(&self) -> RtpStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut processes: Vec<ProcessStats> =
            self.per_process.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        processes.sort_by(|a, b| b.scan_time_us.cmp(&a.scan_time_us).then_with(|| a.name.cmp(&b.name)));
        RtpStats {
            events: l(&self.events),
            self_allowed: l(&self.self_allowed),
            cache_hits: l(&self.cache_hits),
            excluded: l(&self.excluded),
            scanned: l(&self.scanned),
            allowed: l(&self.allowed),
            denied: l(&self.denied),
            detections: l(&self.detections),
            deadline_allows: l(&self.deadline_allows),
            queue_overflows: l(&self.queue_overflows),
            ignore_marks: l(&self.ignore_marks),
            invalidations: l(&self.invalidations),
            reports_dropped: l(&self.reports_dropped),
            errors: l(&self.errors),
            latency: self.latency.snapshot(),
            processes,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_from_buckets() {
        let h = Histogram::default();
        assert_eq!(h.snapshot(), Latency::default());
        for _ in 0..98 {
            h.record(Duration::from_micros(40));
        }
        h.record(Duration::from_micros(900));
        h.record(Duration::from_millis(300));
        let s = h.snapshot();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_us, 50);
        assert_eq!(s.p90_us, 50);
        assert_eq!(s.p99_us, 1_000);
        assert_eq!(s.max_us, 300_000);
        // Slower than the last bound: the maximum.
        h.record(Duration::from_secs(20));
        assert_eq!(h.snapshot().max_us, 20_000_000);
    }

    #[test]
    fn per_process_only_when_enabled() {
        let c = Counters::default();
        c.record_scan("cat", "/usr/bin/cat", Duration::from_micros(10));
        assert!(c.snapshot().processes.is_empty());
        c.per_process_enabled.store(true, Ordering::Relaxed);
        c.record_scan("cat", "/usr/bin/cat", Duration::from_micros(10));
        c.record_scan("cat", "/usr/bin/cat", Duration::from_micros(30));
        c.record_scan("grep", "/usr/bin/grep", Duration::from_micros(100));
        let p = c.snapshot().processes;
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].name.as_str(), p[0].total_files_scanned, p[0].scan_time_us), ("grep", 1, 100));
        assert_eq!((p[1].name.as_str(), p[1].total_files_scanned, p[1].scan_time_us, p[1].max_scan_time_us), ("cat", 2, 40, 30));
    }
}
