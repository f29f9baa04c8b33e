//! A kill -9 in the middle of quarantining loses nothing and leaves nothing half-moved.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// Files per round and their size. Quarantining reads a file twice (hash, then obfuscated
/// copy) and fsyncs it, so even small files give a kill plenty of distinct moments to land
/// in; the sizes keep the whole test well under a minute in a debug build on two cores.
const FILES: usize = 6;
const SIZE: usize = 2 << 20;

/// When to kill, as fractions of the time an uninterrupted round takes (measured first), so
/// the kills spread over the whole quarantine phase whatever the machine's speed.
const KILL_AT: &[f64] = &[0.05, 0.25, 0.45, 0.65, 0.85];

fn content(i: usize) -> Vec<u8> {
    // EICAR at the start, so any engine detects the file without reading all of it.
    let mut v = EICAR.to_vec();
    v.extend_from_slice(&pseudo_random(1000 + i as u64, SIZE - EICAR.len()));
    v
}

/// A daemon in on_demand mode with the victim files in place.
fn setup(contents: &[Vec<u8>]) -> (TestDaemon, PathBuf, Vec<PathBuf>) {
    let d = TestDaemon::start();
    d.set_on_demand();
    let dir = d.data().join("big");
    let paths: Vec<PathBuf> = (0..contents.len()).map(|i| dir.join(format!("victim-{i}.bin"))).collect();
    for (p, c) in paths.iter().zip(contents) {
        write(p, c);
    }
    (d, dir, paths)
}

#[test]
fn kill_9_during_quarantine_loses_nothing() {
    let started = Instant::now();
    let contents: Vec<Vec<u8>> = (0..FILES).map(content).collect();

    // Calibration: an uninterrupted round quarantines every file.
    let (d, dir, paths) = setup(&contents);
    let t0 = Instant::now();
    let o = d.scan(&[&dir]).success();
    let full = t0.elapsed();
    assert_eq!(summary_lines(&o), expected_summary(FILES as u64, FILES as u64), "{}", o.describe());
    assert!(paths.iter().all(|p| !p.exists()), "calibration round did not quarantine every file");
    assert_eq!(d.quarantined().len(), FILES);
    drop(d);

    let mut moved_some = false;
    let mut kept_some = false;
    for &frac in KILL_AT {
        let delay = full.mul_f64(frac);
        let (mut d, dir, paths) = setup(&contents);
        // Scan in the background; the CLI fails when the daemon dies, which is fine.
        let mut scan = d.command();
        scan.args(["scan", "custom", "--path"]).arg(&dir);
        let scan = std::thread::spawn(move || run(scan));
        std::thread::sleep(delay);
        d.kill();
        let _ = scan.join();
        d.spawn();
        let delay = format!("{} ms ({frac} of {} ms)", delay.as_millis(), full.as_millis());

        let leftovers: Vec<PathBuf> =
            files_below(&d.quarantine_dir()).into_iter().filter(|p| p.extension().is_some_and(|e| e == "tmp")).collect();
        assert!(leftovers.is_empty(), "kill at {delay}: .tmp files left in quarantine after restart: {leftovers:?}");

        let threats = d.threats();
        for (p, c) in paths.iter().zip(&contents) {
            let mine: Vec<&Value> = threats.iter().filter(|t| t["path"] == path_string(p)).collect();
            let quarantined: Vec<&&Value> = mine.iter().filter(|t| t["state"] == "quarantined").collect();
            for t in &mine {
                assert_ne!(t["state"], "quarantining", "kill at {delay}: {} left half-moved after restart: {t}", p.display());
            }
            if p.exists() {
                kept_some = true;
                assert!(fs::read(p).unwrap() == *c, "kill at {delay}: {} is in place but its content changed", p.display());
                assert!(quarantined.is_empty(), "kill at {delay}: {} is both in place and quarantined: {mine:?}", p.display());
            } else {
                moved_some = true;
                assert_eq!(
                    quarantined.len(),
                    1,
                    "kill at {delay}: {} is gone but not exactly once in quarantine: {mine:?}\ndaemon stderr:\n{}",
                    p.display(),
                    d.daemon_stderr()
                );
                let id = quarantined[0]["id"].as_str().unwrap();
                d.ok(&["threat", "quarantine", "restore", "threat-id", "--id", id]);
                assert!(fs::read(p).unwrap() == *c, "kill at {delay}: restored {} differs from the original", p.display());
            }
        }
        // The daemon works normally after the crash.
        d.assert_alive();
        drop(d);
        assert!(started.elapsed() < Duration::from_secs(600), "crash test is far too slow: {:?}", started.elapsed());
    }
    eprintln!("crash test: an uninterrupted round takes {full:?}; whole test {:?}", started.elapsed());
    assert!(moved_some && kept_some, "the kills did not land during quarantine (moved some: {moved_some}, kept some: {kept_some})");
}

#[test]
fn kill_9_during_restore_loses_nothing() {
    const SIZE: usize = 4 << 20;
    let content = {
        let mut v = EICAR.to_vec();
        v.extend_from_slice(&pseudo_random(2000, SIZE - EICAR.len()));
        v
    };
    let setup = || {
        let d = TestDaemon::start();
        d.set_on_demand();
        let f = d.data().join("r/victim.bin");
        write(&f, &content);
        d.scan(&[&f]).success();
        assert!(!f.exists());
        let id = d.quarantined()[0]["id"].as_str().unwrap().to_string();
        (d, f, id)
    };
    // Calibration: how long an uninterrupted restore takes.
    let (d, f, id) = setup();
    let t0 = Instant::now();
    d.ok(&["threat", "quarantine", "restore", "threat-id", "--id", &id]);
    let full = t0.elapsed();
    assert!(fs::read(&f).unwrap() == content);
    drop(d);
    for frac in [0.1, 0.4, 0.7, 0.95] {
        let (mut d, f, id) = setup();
        let delay = full.mul_f64(frac);
        let mut c = d.command();
        c.args(["threat", "quarantine", "restore", "threat-id", "--id", &id]);
        let restore = std::thread::spawn(move || run(c));
        std::thread::sleep(delay);
        d.kill();
        let _ = restore.join();
        d.spawn();
        let at = format!("{} ms ({frac} of {} ms)", delay.as_millis(), full.as_millis());
        let dir = f.parent().unwrap();
        let others: Vec<_> = fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| *p != f).collect();
        assert!(others.is_empty(), "kill at {at}: restore left files next to the original: {others:?}");
        let t = d.json(&["threat", "get", "--id", &id]);
        if f.exists() {
            assert!(fs::read(&f).unwrap() == content, "kill at {at}: restored file differs");
        } else {
            assert_eq!(t["state"], "quarantined", "kill at {at}: not restored and not quarantined: {t}");
            d.ok(&["threat", "quarantine", "restore", "threat-id", "--id", &id]);
            assert!(fs::read(&f).unwrap() == content, "kill at {at}: restored file differs");
        }
        d.assert_alive();
    }
}
