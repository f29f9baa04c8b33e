//! A kill -9 in the middle of quarantining loses nothing and leaves nothing half-moved.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// Files per round and their size: big enough that quarantining takes a while, small enough
/// that the whole test stays well under a minute on a loaded two-core machine.
const FILES: usize = 8;
const SIZE: usize = 16 << 20;

/// Kill delays after the scan starts, spread over the whole quarantine phase.
const DELAYS_MS: &[u64] = &[50, 200, 400, 800, 1500];

fn content(i: usize) -> Vec<u8> {
    // EICAR at the start, so any engine detects the file without reading all of it.
    let mut v = EICAR.to_vec();
    v.extend_from_slice(&pseudo_random(1000 + i as u64, SIZE - EICAR.len()));
    v
}

#[test]
fn kill_9_during_quarantine_loses_nothing() {
    let started = Instant::now();
    let contents: Vec<Vec<u8>> = (0..FILES).map(content).collect();
    let mut moved_some = false;
    for &delay in DELAYS_MS {
        let mut d = TestDaemon::start();
        d.set_on_demand();
        let dir = d.data().join("big");
        let paths: Vec<PathBuf> = (0..FILES).map(|i| dir.join(format!("victim-{i}.bin"))).collect();
        for (p, c) in paths.iter().zip(&contents) {
            write(p, c);
        }
        // Scan in the background; the CLI dies with the daemon, which is fine.
        let mut scan = d.command();
        scan.args(["scan", "custom", "--path"]).arg(&dir);
        let scan = std::thread::spawn(move || run(scan));
        std::thread::sleep(Duration::from_millis(delay));
        d.kill();
        let _ = scan.join();
        d.spawn();

        let leftovers: Vec<PathBuf> =
            files_below(&d.quarantine_dir()).into_iter().filter(|p| p.extension().is_some_and(|e| e == "tmp")).collect();
        assert!(leftovers.is_empty(), "delay {delay} ms: .tmp files left in quarantine after restart: {leftovers:?}");

        let threats = d.threats();
        for (p, c) in paths.iter().zip(&contents) {
            let mine: Vec<&Value> = threats.iter().filter(|t| t["path"] == path_string(p)).collect();
            let quarantined: Vec<&&Value> = mine.iter().filter(|t| t["state"] == "quarantined").collect();
            for t in &mine {
                assert_ne!(t["state"], "quarantining", "delay {delay} ms: {} left half-moved after restart: {t}", p.display());
            }
            if p.exists() {
                assert!(fs::read(p).unwrap() == *c, "delay {delay} ms: {} is in place but its content changed", p.display());
                assert!(quarantined.is_empty(), "delay {delay} ms: {} is both in place and quarantined: {mine:?}", p.display());
            } else {
                moved_some = true;
                assert_eq!(
                    quarantined.len(),
                    1,
                    "delay {delay} ms: {} is gone but not exactly once in quarantine: {mine:?}\ndaemon stderr:\n{}",
                    p.display(),
                    d.daemon_stderr()
                );
                let id = quarantined[0]["id"].as_str().unwrap();
                d.ok(&["threat", "quarantine", "restore", "threat-id", "--id", id]);
                assert!(fs::read(p).unwrap() == *c, "delay {delay} ms: restored {} differs from the original", p.display());
            }
        }
        // The daemon works normally after the crash.
        d.assert_alive();
        drop(d);
        assert!(started.elapsed() < Duration::from_secs(300), "crash test is far too slow: {:?}", started.elapsed());
    }
    assert!(moved_some, "no round killed the daemon after it had quarantined a file: the delays are too short");
}
