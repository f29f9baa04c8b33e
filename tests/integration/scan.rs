//! On-demand scans: detections, output, modes, history, cancel, hostile input, signatures and
//! archives.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn eicar_in_a_plain_file_is_detected_and_clean_files_are_not() {
    let d = TestDaemon::start();
    let dir = d.data().join("tree");
    write_eicar(&dir.join("eicar.com"));
    write(&dir.join("clean.txt"), b"hello, nothing to see here\n");
    write(&dir.join("sub/clean2.bin"), &pseudo_random(1, 10_000));
    let o = d.scan(&[&dir]).success();
    assert_eq!(summary_lines(&o), expected_summary(3, 1), "{}", o.describe());
    let threats = d.threats();
    assert_eq!(threats.len(), 1, "{threats:?}");
    assert_eq!(threats[0]["name"], EICAR_NAME);
    assert_eq!(threats[0]["path"], path_string(&dir.join("eicar.com")));

    let clean = d.data().join("clean");
    write(&clean.join("a.txt"), b"just text");
    write(&clean.join("b.txt"), b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FIL");
    let o = d.scan(&[&clean]).success();
    assert_eq!(summary_lines(&o), expected_summary(2, 0), "{}", o.describe());

    // A single file as --path.
    let o = d.scan(&[&dir.join("eicar.com")]).success();
    assert_eq!(summary_lines(&o), expected_summary(1, 1), "{}", o.describe());
}

#[test]
fn relative_path_is_taken_from_the_current_directory() {
    let d = TestDaemon::start();
    write_eicar(&d.data().join("rel/sub/e.com"));
    let mut c = d.command();
    c.current_dir(d.data().join("rel")).args(["scan", "custom", "--path", "sub", "--output", "json"]);
    let o = run(c).success();
    assert_eq!(o.json()["threats_detected"], 1, "{}", o.describe());
    assert_eq!(d.threat_paths(), vec![path_string(&d.data().join("rel/sub/e.com"))]);
}

#[test]
fn several_paths_in_one_scan() {
    let d = TestDaemon::start();
    let a = d.data().join("m1/a.com");
    let b = d.data().join("m2/b.com");
    write_eicar(&a);
    write_eicar(&b);
    write(&d.data().join("m3/c.com"), b"clean");
    let o = d.scan(&[a.parent().unwrap(), &b]).success();
    assert_eq!(summary_lines(&o), expected_summary(2, 2), "{}", o.describe());
}

#[test]
fn passive_rescan_does_not_duplicate_threats() {
    let d = TestDaemon::start();
    let f = d.data().join("twice/e.com");
    write_eicar(&f);
    d.scan(&[&f]).success();
    d.scan(&[&f]).success();
    assert_eq!(d.threats_for(&f).len(), 1, "the same file in place is one threat: {:?}", d.threats());
}

#[test]
fn json_output_has_the_counts() {
    let d = TestDaemon::start();
    let dir = d.data().join("j");
    write_eicar(&dir.join("e1"));
    write_eicar(&dir.join("deeper/e2"));
    write(&dir.join("c"), b"clean");
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["files_scanned"], 3, "{j}");
    assert_eq!(j["threats_detected"], 2, "{j}");
}

#[test]
fn passive_mode_reports_without_moving() {
    let d = TestDaemon::start();
    assert_eq!(d.health_field("passive_mode_enabled"), "true", "the default is passive");
    let f = d.data().join("p/eicar.com");
    write_eicar(&f);
    let o = d.scan(&[f.parent().unwrap()]).success();
    assert_eq!(summary_lines(&o), expected_summary(1, 1), "{}", o.describe());
    assert_eq!(fs::read(&f).expect("the file must stay in passive mode"), EICAR);
    let t = d.threats_for(&f);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0]["state"], "detected");
    assert!(d.quarantined().is_empty());
    assert!(files_below(&d.quarantine_dir()).is_empty(), "passive mode wrote to quarantine");
}

#[test]
fn real_time_mode_quarantines() {
    let d = TestDaemon::start();
    d.ok(&["config", "real-time-protection", "--value", "enabled"]);
    assert_eq!(d.health_field("antivirus_enforcement_level"), "\"real_time\"");
    let f = d.data().join("rt/eicar.com");
    write_eicar(&f);
    let o = d.scan(&[&f]).success();
    assert_eq!(summary_lines(&o), expected_summary(1, 1), "{}", o.describe());
    assert!(!f.exists(), "detected file was not moved");
    let q = d.quarantined();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["path"], path_string(&f));
    assert_eq!(q[0]["state"], "quarantined");
}

#[test]
fn on_demand_mode_quarantines() {
    let d = TestDaemon::start();
    d.set_on_demand();
    let f = d.data().join("od/eicar.com");
    write_eicar(&f);
    write(&d.data().join("od/clean"), b"clean");
    d.scan(&[f.parent().unwrap()]).success();
    assert!(!f.exists(), "detected file was not moved");
    assert!(d.data().join("od/clean").exists(), "clean file moved");
    let q = d.quarantined();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["path"], path_string(&f));
}

#[test]
fn scan_list_keeps_history() {
    let d = TestDaemon::start();
    let a = d.data().join("a");
    let b = d.data().join("b");
    write_eicar(&a.join("x"));
    write(&b.join("y"), b"clean");
    write(&b.join("z"), b"clean");
    let ja = d.scan_json(&a, &[]);
    let jb = d.scan_json(&b, &[]);
    let list = d.json(&["scan", "list"]);
    let list = list.as_array().expect("scan list is an array");
    assert!(list.len() >= 2, "{list:?}");
    for (j, files, threats) in [(&ja, 1, 1), (&jb, 2, 0)] {
        let r = list.iter().find(|r| r["id"] == j["id"]).unwrap_or_else(|| panic!("scan {} missing from history: {list:?}", j["id"]));
        assert_eq!(r["files_scanned"], files, "{r}");
        assert_eq!(r["threats_detected"], threats, "{r}");
        assert_eq!(r["state"], "completed", "{r}");
        assert_eq!(r["type"], "custom", "{r}");
    }
    // Text form lists both, and the history survives a restart.
    let mut d = d;
    d.restart();
    let text = d.ok(&["scan", "list"]).stdout;
    for j in [&ja, &jb] {
        assert!(text.contains(j["id"].as_str().unwrap()), "scan {} missing after restart:\n{text}", j["id"]);
    }
}

#[test]
fn scan_cancel_stops_a_long_scan() {
    let d = TestDaemon::start();
    let big = fast_tempdir();
    let tree = big.path().join("big");
    const TOTAL: u64 = 50_000;
    let body = vec![b'x'; 512];
    for i in 0..TOTAL {
        let sub = tree.join(format!("d{:03}", i % 500));
        if i < 500 {
            fs::create_dir_all(&sub).unwrap();
        }
        fs::write(sub.join(format!("f{i}")), &body).unwrap();
    }
    let root = d.root().to_path_buf();
    let tree2 = tree.clone();
    let scan = std::thread::spawn(move || {
        let mut c = mdatp_command(&root);
        c.arg("scan").arg("custom").arg("--path").arg(&tree2);
        let t = Instant::now();
        (run(c), t.elapsed())
    });
    // While it runs, a second scan is refused with a message (one scan at a time).
    wait_until(Duration::from_secs(30), "the scan to show as running in `scan list`", || {
        let l = d.json(&["scan", "list"]);
        l.as_array().unwrap().iter().any(|r| r["state"] == "running").then_some(())
    });
    let other = d.data().join("other");
    write(&other.join("f"), b"x");
    let o = d.scan(&[&other]);
    if !scan.is_finished() {
        assert!(o.code != 0 && o.text_lower().contains("already running"), "second scan during a scan: {}", o.describe());
    }
    // Cancel as soon as the daemon has a scan to cancel.
    let cancelled = wait_until(Duration::from_secs(30), "a running scan to cancel", || {
        let o = d.mdatp(&["scan", "cancel"]);
        if o.ok() {
            Some(o)
        } else if scan.is_finished() {
            panic!("the scan finished before it could be cancelled");
        } else {
            None
        }
    });
    let (o, _elapsed) = scan.join().unwrap();
    assert!(!cancelled.stdout.trim().is_empty(), "scan cancel printed nothing: {}", cancelled.describe());
    assert_ne!(o.code, 0, "a cancelled scan must not exit 0: {}", o.describe());
    assert!(o.text_lower().contains("cancel"), "no cancel message: {}", o.describe());
    // "Scan was cancelled: N file(s) scanned, ..."
    let n: u64 = o
        .stderr
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[1] == "file(s)")
        .and_then(|w| w[0].parse().ok())
        .unwrap_or_else(|| panic!("no file count in the cancel message: {}", o.describe()));
    assert!(n < TOTAL, "cancelled scan scanned everything ({n})");
    let list = d.json(&["scan", "list"]);
    let rec = list.as_array().unwrap().iter().find(|r| r["state"] == "cancelled");
    assert!(rec.is_some(), "no cancelled scan in history: {list}");
    // Nothing to cancel now.
    d.mdatp(&["scan", "cancel"]).failure();
    // The daemon can scan again.
    let small = d.data().join("small");
    write_eicar(&small.join("e"));
    assert_eq!(summary_lines(&d.scan(&[&small]).success()), expected_summary(1, 1));
}

/// Scans `path` and asserts the daemon survived.
#[track_caller]
fn scan_survives(d: &mut TestDaemon, path: &Path) -> Out {
    let o = d.scan(&[path]);
    d.assert_alive();
    assert!(o.code == 0 || o.code == 1, "scan crashed the CLI: {}", o.describe());
    o
}

#[test]
fn fifo_is_skipped() {
    let mut d = TestDaemon::start();
    let dir = d.data().join("fifo");
    fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    write_eicar(&dir.join("eicar.com"));
    // A FIFO nobody writes to would block a naive open() forever.
    let o = scan_survives(&mut d, &dir).success();
    assert_eq!(summary_lines(&o), expected_summary(1, 1), "the FIFO is not a file to scan: {}", o.describe());
    let o = scan_survives(&mut d, &fifo);
    assert_eq!(o.code, 0, "{}", o.describe());
}

#[test]
fn dev_null_and_symlinks_to_devices_are_skipped() {
    let mut d = TestDaemon::start();
    let o = scan_survives(&mut d, Path::new("/dev/null"));
    assert_eq!(o.code, 0, "scanning a device must finish cleanly: {}", o.describe());
    assert!(summary_lines(&o).contains(&"0 threat(s) detected".to_string()), "{}", o.describe());
    let dir = d.data().join("dev");
    fs::create_dir_all(&dir).unwrap();
    symlink("/dev/null", dir.join("null")).unwrap();
    symlink("/dev/zero", dir.join("zero")).unwrap();
    symlink("/dev/urandom", dir.join("urandom")).unwrap();
    write_eicar(&dir.join("eicar.com"));
    let o = scan_survives(&mut d, &dir).success();
    assert_eq!(summary_lines(&o), expected_summary(1, 1), "{}", o.describe());
}

#[test]
fn symlink_loops_terminate() {
    let mut d = TestDaemon::start();
    let dir = d.data().join("loop");
    fs::create_dir_all(dir.join("a/b")).unwrap();
    symlink(&dir, dir.join("a/b/up")).unwrap();
    symlink("self", dir.join("self")).unwrap();
    symlink("ping", dir.join("pong")).unwrap();
    symlink("pong", dir.join("ping")).unwrap();
    write_eicar(&dir.join("a/b/eicar.com"));
    let o = scan_survives(&mut d, &dir).success();
    assert_eq!(summary_lines(&o), expected_summary(1, 1), "{}", o.describe());
    // A symlink given as --path is not a file to scan either way; the daemon stays up.
    scan_survives(&mut d, &dir.join("self"));
}

#[test]
fn unreadable_and_empty_files() {
    let mut d = TestDaemon::start();
    let dir = d.data().join("unreadable");
    write(&dir.join("secret"), b"cannot read me");
    fs::set_permissions(dir.join("secret"), fs::Permissions::from_mode(0o000)).unwrap();
    let locked = dir.join("locked");
    write_eicar(&locked.join("inside.com"));
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    write(&dir.join("empty"), b"");
    write_eicar(&dir.join("eicar.com"));
    // A Unix socket is a special file too.
    let _sock = std::os::unix::net::UnixListener::bind(dir.join("sock")).unwrap();
    let o = scan_survives(&mut d, &dir);
    assert!(o.stdout.contains("Scan has finished"), "{}", o.describe());
    assert!(summary_lines(&o).iter().any(|l| l.ends_with("threat(s) detected") && !l.starts_with('0')), "{}", o.describe());
    let o = scan_survives(&mut d, &dir.join("empty")).success();
    assert_eq!(summary_lines(&o), expected_summary(1, 0), "{}", o.describe());
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn names_that_are_not_utf8_or_hold_a_newline_or_backslash() {
    let mut d = TestDaemon::start();
    let dir = d.data().join("names");
    fs::create_dir_all(&dir).unwrap();
    let bad = dir.join(std::ffi::OsStr::from_bytes(b"bad-\xff\xfe-name.com"));
    let nl = dir.join("new\nline.com");
    let bs = dir.join("back\\x41slash.com");
    let baddir = dir.join(std::ffi::OsStr::from_bytes(b"dir-\xc3\x28"));
    for p in [&bad, &nl, &bs] {
        write_eicar(p);
    }
    write_eicar(&baddir.join("inner.com"));
    let o = scan_survives(&mut d, &dir).success();
    assert_eq!(summary_lines(&o), expected_summary(4, 4), "{}", o.describe());
    let paths = d.threat_paths();
    for p in [&bad, &nl, &bs, &baddir.join("inner.com")] {
        assert!(paths.contains(&path_string(p)), "{} not recorded as {}: {paths:?}", p.display(), path_string(p));
    }
    // One line per threat field even with a newline in the name.
    let text = d.ok(&["threat", "list"]).stdout;
    assert!(!text.lines().any(|l| l == "line.com\""), "raw newline in threat list:\n{text}");
    // And after quarantine, the file comes back under its real name.
    d.set_on_demand();
    d.scan(&[&dir]).success();
    for p in [&nl, &bs, &bad] {
        assert!(!p.exists(), "{:?} not quarantined; threats: {:?}\ndaemon stderr (tail): {}", p, d.threats_for(p), {
            let s = d.daemon_stderr();
            s[s.len().saturating_sub(1500)..].to_string()
        });
    }
    let o = d.mdatp_os(&[
        std::ffi::OsStr::new("threat"),
        "quarantine".as_ref(),
        "restore".as_ref(),
        "threat-path".as_ref(),
        "--path".as_ref(),
        bad.as_os_str(),
    ]);
    assert!(o.ok(), "{}", o.describe());
    assert_eq!(fs::read(&bad).unwrap(), EICAR);
}

#[test]
fn non_utf8_path_argument() {
    let mut d = TestDaemon::start();
    let bad = d.data().join(std::ffi::OsStr::from_bytes(b"raw-\xff\xfe-name.com"));
    write_eicar(&bad);
    // The exact non-UTF-8 path as --path, as an admin passes it from a shell
    // (`mdatp scan custom --path $'raw-\xff\xfe-name.com'`).
    let o = d.scan(&[&bad]);
    d.assert_alive();
    assert!(o.ok(), "a non-UTF-8 --path must be accepted: {}", o.describe());
    assert_eq!(summary_lines(&o), expected_summary(1, 1), "{}", o.describe());
    assert_eq!(d.threat_paths(), vec![path_string(&bad)]);
}

#[test]
fn corrupt_archives_and_empty_files() {
    let mut d = TestDaemon::start();
    let dir = d.data().join("corrupt");
    let zip = zip_stored(&[("a.txt", &pseudo_random(2, 5000)), ("b.txt", b"hello")]);
    write(&dir.join("truncated.zip"), &zip[..zip.len() / 2]);
    let mut bad_cd = zip.clone();
    let n = bad_cd.len();
    bad_cd[n - 6..n - 2].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes()); // central directory offset
    write(&dir.join("bad-offset.zip"), &bad_cd);
    let gz = gzip(&pseudo_random(3, 100_000));
    write(&dir.join("truncated.gz"), &gz[..gz.len() / 3]);
    let mut flipped = gz.clone();
    for b in flipped[20..200].iter_mut() {
        *b ^= 0x5a;
    }
    write(&dir.join("corrupt.gz"), &flipped);
    write(&dir.join("only-magic.gz"), &[0x1f, 0x8b]);
    write(&dir.join("only-magic.zip"), b"PK\x03\x04");
    write(&dir.join("empty.zip"), b"");
    write(&dir.join("empty"), b"");
    let t = tar(&[("x", b"data")]);
    write(&dir.join("truncated.tar"), &t[..700]);
    write(&dir.join("truncated.tar.gz"), &gzip(&t)[..30]);
    d.ok(&["config", "scan-archives", "--value", "enabled"]);
    let o = scan_survives(&mut d, &dir).success();
    let lines = summary_lines(&o);
    assert_eq!(lines[0], "Scan has finished", "{}", o.describe());
    assert_eq!(lines[1], "10 file(s) scanned", "{}", o.describe());
}

#[test]
fn huge_sparse_file_is_bounded() {
    let mut d = TestDaemon::start();
    d.ok(&["config", "scan-archives", "--value", "enabled"]);
    let f = d.data().join("sparse/huge.bin");
    write(&f, EICAR);
    // 64 GiB that take no disk space: a scanner that reads everything never finishes.
    fs::OpenOptions::new().write(true).open(&f).unwrap().set_len(64 << 30).unwrap();
    // A sparse file that looks like a gzip stream too.
    let g = d.data().join("sparse/huge.gz");
    write(&g, &gzip(b"header"));
    fs::OpenOptions::new().write(true).open(&g).unwrap().set_len(64 << 30).unwrap();
    let root = d.root().to_path_buf();
    let dir = f.parent().unwrap().to_path_buf();
    let scan = std::thread::spawn(move || {
        let mut c = mdatp_command(&root);
        c.args(["scan", "custom", "--path"]).arg(&dir);
        run(c)
    });
    let start = Instant::now();
    while !scan.is_finished() && start.elapsed() < Duration::from_secs(180) {
        std::thread::sleep(Duration::from_millis(200));
    }
    if !scan.is_finished() {
        let _ = d.mdatp(&["scan", "cancel"]);
        panic!("scanning a 64 GiB sparse file did not finish within 180 s");
    }
    let o = scan.join().unwrap().success();
    assert_eq!(summary_lines(&o), expected_summary(2, 1), "{}", o.describe());
    d.assert_alive();
}

#[test]
fn scan_cancel_is_prompt_inside_big_files() {
    let d = TestDaemon::start();
    let dir = d.data().join("slow");
    // Files that each take seconds to read (sparse, 64 GiB): a cancel that is only looked at
    // between files waits for the whole file.
    for i in 0..6 {
        let f = dir.join(format!("huge{i}.bin"));
        write(&f, b"start");
        fs::OpenOptions::new().write(true).open(&f).unwrap().set_len(64 << 30).unwrap();
    }
    let root = d.root().to_path_buf();
    let dir2 = dir.clone();
    let scan = std::thread::spawn(move || {
        let mut c = mdatp_command(&root);
        c.args(["scan", "custom", "--path"]).arg(&dir2);
        run(c)
    });
    wait_until(Duration::from_secs(30), "the scan to show as running in `scan list`", || {
        let l = d.json(&["scan", "list"]);
        l.as_array().unwrap().iter().any(|r| r["state"] == "running").then_some(())
    });
    // Give the scanner time to be inside a file, then cancel and time it.
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    d.ok(&["scan", "cancel"]);
    while !scan.is_finished() && t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = t.elapsed();
    let o = scan.join().unwrap();
    assert!(o.text_lower().contains("cancel"), "{}", o.describe());
    assert!(took < Duration::from_secs(3), "scan cancel took {took:?} to stop a scan inside a big file");
}

#[test]
fn thread_count_does_not_change_results() {
    let d = TestDaemon::start();
    let dir = d.data().join("threads");
    for i in 0..400 {
        let p = dir.join(format!("d{}/f{i}", i % 17));
        if i % 50 == 7 {
            write(&p, &eicar_with(&pseudo_random(i, 100)));
        } else {
            write(&p, &pseudo_random(i, 2000));
        }
    }
    for n in ["1", "2", "8"] {
        d.ok(&["config", "maximum-on-demand-scan-threads", "--value", n]);
        let j = d.scan_json(&dir, &[]);
        assert_eq!((j["files_scanned"].as_u64(), j["threats_detected"].as_u64()), (Some(400), Some(8)), "with {n} thread(s): {j}");
    }
}

#[test]
fn quick_scan_runs() {
    // A quick scan covers the real machine's /tmp, home directories, ... so how long it takes
    // depends on the host: start one, and cancel it unless it finished within 5 s.
    let mut d = TestDaemon::start();
    // Passive mode: a quick scan of the real machine reports, never moves anything.
    assert_eq!(d.health_field("passive_mode_enabled"), "true");
    let root = d.root().to_path_buf();
    let scan = std::thread::spawn(move || {
        let mut c = mdatp_command(&root);
        c.args(["scan", "quick"]);
        run(c)
    });
    let start = Instant::now();
    while !scan.is_finished() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut cancel_took = Duration::ZERO;
    if !scan.is_finished() {
        let t = Instant::now();
        d.ok(&["scan", "cancel"]);
        while !scan.is_finished() {
            std::thread::sleep(Duration::from_millis(20));
        }
        cancel_took = t.elapsed();
    }
    let o = scan.join().unwrap();
    let list = d.json(&["scan", "list"]);
    assert_eq!(list[0]["type"], "quick", "{list}");
    eprintln!("quick scan: cancel took {cancel_took:?}");
    if o.ok() {
        let lines = summary_lines(&o);
        assert_eq!(lines.len(), 3, "{}", o.describe());
        assert_eq!(lines[0], "Scan has finished");
        assert!(lines[1].ends_with(" file(s) scanned") && lines[2].ends_with(" threat(s) detected"), "{}", o.describe());
        assert_eq!(list[0]["state"], "completed", "{list}");
    } else {
        assert!(o.text_lower().contains("cancel"), "{}", o.describe());
        assert_eq!(list[0]["state"], "cancelled", "{list}");
    }
    d.assert_alive();
}

#[test]
fn files_vanishing_mid_scan() {
    let mut d = TestDaemon::start();
    let dir = d.data().join("vanish");
    for i in 0..2000u64 {
        write(&dir.join(format!("d{}/f{i}", i % 40)), &pseudo_random(i, 1000));
    }
    write_eicar(&dir.join("d0/eicar.com"));
    let root = d.root().to_path_buf();
    let dir2 = dir.clone();
    let scan = std::thread::spawn(move || {
        let mut c = mdatp_command(&root);
        c.args(["scan", "custom", "--path"]).arg(&dir2);
        run(c)
    });
    // Delete and recreate parts of the tree while it is being scanned.
    for round in 0..3 {
        for i in (round..40).step_by(3) {
            let _ = fs::remove_dir_all(dir.join(format!("d{i}")));
        }
        for i in 0..200u64 {
            let _ = fs::create_dir_all(dir.join(format!("new{round}")));
            let _ = fs::write(dir.join(format!("new{round}/n{i}")), b"x");
        }
    }
    let o = scan.join().unwrap();
    d.assert_alive();
    assert!(o.ok(), "vanishing files must not fail the scan: {}", o.describe());
}

#[test]
fn own_definitions_are_not_detected() {
    let d = TestDaemon::start();
    let rule = "rule Own_Rule_Marker { strings: $a = \"own-rule-marker-4411\" condition: $a }\n";
    write_atomic(&d.definitions_dir().join("own.yar"), rule.as_bytes());
    let packaged = d.p("/opt/microsoft/mdatp/definitions");
    write(&packaged.join("own2.yar"), rule.replace("Own_Rule_Marker", "Own_Rule_Marker2").as_bytes());
    d.ok(&["definitions", "update"]);
    d.set_on_demand();
    let victim = d.data().join("own/victim.txt");
    write(&victim, b"... own-rule-marker-4411 ...");
    // A scan of everything below the root: the agent's own state and definitions included.
    let j = d.scan_json(d.root(), &[]);
    assert!(!victim.exists(), "the real match was not quarantined: {j}");
    assert!(d.definitions_dir().join("own.yar").exists(), "the agent quarantined its own definitions: {:?}", d.threat_paths());
    assert!(packaged.join("own2.yar").exists(), "the agent quarantined its packaged definitions: {:?}", d.threat_paths());
    assert_eq!(d.threat_paths(), vec![path_string(&victim)], "{j}");
}

#[test]
fn pseudo_filesystems_do_not_hang_the_scan() {
    let mut d = TestDaemon::start();
    // /proc has files that block when read (/proc/kmsg) or never end; /dev has devices.
    for p in ["/proc", "/dev"] {
        let o = scan_survives(&mut d, Path::new(p));
        assert!(o.ok(), "scan of {p}: {}", o.describe());
    }
}

#[test]
fn nonexistent_path_is_a_clear_error() {
    let mut d = TestDaemon::start();
    let missing = d.data().join("does/not/exist");
    let o = d.scan(&[&missing]).failure();
    assert!(o.stderr.contains(&missing.display().to_string()), "error does not name the path: {}", o.describe());
    assert!(o.text_lower().contains("not exist") || o.text_lower().contains("no such"), "{}", o.describe());
    assert_eq!(o.stderr.trim().lines().count(), 1, "{}", o.describe());
    d.assert_alive();
}

// ---------------------------------------------------------------------------------------------
// Signatures (need the real engine: .hdb/.hsb/.ndb/.yar)
// ---------------------------------------------------------------------------------------------

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Drops a definitions file and runs `mdatp definitions update`; returns the new version.
#[track_caller]
fn add_definitions(d: &TestDaemon, name: &str, text: &str) -> String {
    write_atomic(&d.definitions_dir().join(name), text.as_bytes());
    let o = d.ok(&["definitions", "update"]);
    assert!(o.code == 0, "{}", o.describe());
    d.health_field("definitions_version")
}

#[test]
fn hdb_md5_signature() {
    let d = TestDaemon::start();
    let bad = pseudo_random(10, 4096);
    let near = pseudo_random(11, 4096);
    let dir = d.data().join("hdb");
    write(&dir.join("bad.bin"), &bad);
    write(&dir.join("near.bin"), &near);
    assert_eq!(d.scan_json(&dir, &[])["threats_detected"], 0);
    let v0 = d.health_field("definitions_version");
    let v1 = add_definitions(&d, "test.hdb", &format!("{}:{}:Test.Hdb.Md5\n", md5_hex(&bad), bad.len()));
    assert_ne!(v0, v1, "definitions_version did not change");
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 1, "{j}");
    let t = d.threats_for(&dir.join("bad.bin"));
    assert_eq!(t.len(), 1, "{:?}", d.threats());
    assert!(t[0]["name"].as_str().unwrap().contains("Test.Hdb.Md5"), "{t:?}");
    // The size is part of the signature: the right hash with a wrong size matches nothing.
    let other = pseudo_random(12, 5000);
    write(&dir.join("other.bin"), &other);
    add_definitions(&d, "size.hdb", &format!("{}:{}:Test.Hdb.WrongSize\n", md5_hex(&other), other.len() + 1));
    let j = d.scan_json(&dir.join("other.bin"), &[]);
    assert_eq!(j["threats_detected"], 0, "{j}");
}

#[test]
fn hsb_sha256_signature_with_any_size() {
    let d = TestDaemon::start();
    let bad = pseudo_random(20, 10_000);
    let dir = d.data().join("hsb");
    write(&dir.join("bad.bin"), &bad);
    write(&dir.join("other.bin"), &pseudo_random(21, 10_000));
    let v0 = d.health_field("definitions_version");
    let v1 = add_definitions(&d, "test.hsb", &format!("{}:*:Test.Hsb.Sha256\n", sha256_hex(&bad)));
    assert_ne!(v0, v1);
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 1, "{j}");
    let t = d.threats_for(&dir.join("bad.bin"));
    assert!(t.iter().any(|t| t["name"].as_str().unwrap().contains("Test.Hsb.Sha256")), "{:?}", d.threats());
}

#[test]
fn ndb_body_signature_with_wildcards() {
    let d = TestDaemon::start();
    // Signature: "MDATP-NDB" ?? "+" {2-4} "ww" (61|62)  anywhere in any file type.
    let sig = format!("{}??2b{{2-4}}7777(61|62)", hex("MDATP-NDB"));
    add_definitions(&d, "test.ndb", &format!("Test.Ndb.Wild:0:*:{sig}\n"));
    let dir = d.data().join("ndb");
    let mut hit1 = pseudo_random(30, 3000);
    hit1.extend_from_slice(b"MDATP-NDB!+12wwa");
    hit1.extend_from_slice(&pseudo_random(31, 3000));
    let mut hit2 = b"MDATP-NDBZ+1234wwb".to_vec();
    hit2.extend_from_slice(&pseudo_random(32, 100));
    let mut miss_gap = pseudo_random(33, 100);
    miss_gap.extend_from_slice(b"MDATP-NDB!+12345wwa"); // gap of 5 > 4
    let mut miss_alt = pseudo_random(34, 100);
    miss_alt.extend_from_slice(b"MDATP-NDB!+12wwc"); // c is not an alternative
    write(&dir.join("hit1"), &hit1);
    write(&dir.join("hit2"), &hit2);
    write(&dir.join("miss_gap"), &miss_gap);
    write(&dir.join("miss_alt"), &miss_alt);
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 2, "{j}; threats: {:?}", d.threats());
    let mut paths = d.threat_paths();
    paths.sort();
    assert_eq!(paths, vec![path_string(&dir.join("hit1")), path_string(&dir.join("hit2"))]);
    assert!(d.threats().iter().all(|t| t["name"].as_str().unwrap().contains("Test.Ndb.Wild")));
}

#[test]
fn ndb_absolute_offset() {
    let d = TestDaemon::start();
    add_definitions(&d, "off.ndb", &format!("Test.Ndb.Offset:0:10:{}\n", hex("OFFSET-MARK")));
    let dir = d.data().join("off");
    write(&dir.join("at10"), b"0123456789OFFSET-MARK tail");
    write(&dir.join("at11"), b"0123456789xOFFSET-MARK tail");
    write(&dir.join("at0"), b"OFFSET-MARK tail");
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 1, "{j}");
    assert_eq!(d.threat_paths(), vec![path_string(&dir.join("at10"))]);
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn yara_rule_in_the_definitions_dir() {
    let d = TestDaemon::start();
    let v0 = d.health_field("definitions_version");
    let rule = r#"
rule Test_Yara_Marker
{
    strings:
        $a = "mdatp-yara-marker-7d1f"
        $b = { 4D 44 41 54 50 ?? 59 }
    condition:
        $a and $b
}
"#;
    let v1 = add_definitions(&d, "test.yar", rule);
    assert_ne!(v0, v1, "definitions_version did not change");
    let dir = d.data().join("yar");
    write(&dir.join("both"), b"xx mdatp-yara-marker-7d1f yy MDATP-Y zz");
    write(&dir.join("only_a"), b"xx mdatp-yara-marker-7d1f yy");
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 1, "{j}");
    let t = d.threats_for(&dir.join("both"));
    assert_eq!(t.len(), 1, "{:?}", d.threats());
    assert!(t[0]["name"].as_str().unwrap().contains("Test_Yara_Marker"), "{t:?}");
}

#[test]
fn malformed_ndb_line_fails_update_and_keeps_the_old_version() {
    let d = TestDaemon::start();
    let good = pseudo_random(40, 2000);
    let v1 = add_definitions(&d, "good.hdb", &format!("{}:{}:Test.Good\n", md5_hex(&good), good.len()));
    let dir = d.data().join("keep");
    write(&dir.join("good"), &good);
    write_atomic(
        &d.definitions_dir().join("bad.ndb"),
        format!("Test.Ndb.Ok:0:*:{}\nTest.Ndb.Broken:0:*:4142zz43\n", hex("fine-sig")).as_bytes(),
    );
    let o = d.mdatp(&["definitions", "update"]).failure();
    assert!(o.stderr.contains("bad.ndb"), "error does not name the file: {}", o.describe());
    assert!(o.stderr.contains("bad.ndb:2"), "error does not name the line (file:2): {}", o.describe());
    assert_eq!(d.health_field("definitions_version"), v1, "a rejected update changed the version");
    let issues = d.health_field("health_issues");
    assert!(issues.contains("bad.ndb"), "health_issues does not mention the rejected file: {issues}");
    // The old definitions stay in force.
    assert_eq!(d.scan_json(&dir, &[])["threats_detected"], 1);
    // Removing the bad file clears the issue.
    fs::remove_file(d.definitions_dir().join("bad.ndb")).unwrap();
    d.ok(&["definitions", "update"]);
    let issues = d.health_field("health_issues");
    assert!(!issues.contains("bad.ndb"), "{issues}");
}

// ---------------------------------------------------------------------------------------------
// Archives (need the archive walker)
// ---------------------------------------------------------------------------------------------

/// EICAR in a zip in a tar.gz, written to `dir/nested.tar.gz`.
fn nested_archive(dir: &Path) -> PathBuf {
    let zip = zip_stored(&[("readme.txt", b"nothing"), ("eicar.com", EICAR)]);
    let t = tar(&[("docs/notes.txt", b"notes"), ("docs/inner.zip", &zip)]);
    let gz = gzip(&t);
    assert!(!contains(&gz, EICAR), "the test archive must not show EICAR in its raw bytes");
    let p = dir.join("nested.tar.gz");
    write(&p, &gz);
    p
}

#[test]
fn eicar_in_zip_in_tar_gz_when_scan_archives_is_enabled() {
    let d = TestDaemon::start();
    let dir = d.data().join("arch");
    let p = nested_archive(&dir);
    d.ok(&["config", "scan-archives", "--value", "disabled"]);
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 0, "scan-archives disabled: archives must not be opened: {j}");
    d.ok(&["config", "scan-archives", "--value", "enabled"]);
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 1, "EICAR inside zip inside tar.gz missed: {j}");
    let t = d.threats_for(&p);
    assert_eq!(t.len(), 1, "{:?}", d.threats());
    assert_eq!(t[0]["name"], EICAR_NAME);
    let inner = t[0]["inner"].as_str().unwrap_or_default();
    assert!(inner.contains("inner.zip") && inner.contains("eicar.com"), "inner path not recorded: {t:?}");
}

#[test]
fn gzip_bomb_is_an_archive_bomb() {
    let d = TestDaemon::start();
    d.ok(&["config", "scan-archives", "--value", "enabled"]);
    let dir = d.data().join("bomb");
    // 16 MiB of zeros in ~16 KiB: a compression ratio around 1000.
    let bomb = gzip(&vec![0u8; 16 << 20]);
    write(&dir.join("zeros.gz"), &bomb);
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 1, "gzip bomb not reported: {j}");
    let t = d.threats_for(&dir.join("zeros.gz"));
    assert_eq!(t.len(), 1, "{:?}", d.threats());
    assert_eq!(t[0]["type"], "archive_bomb", "{t:?}");
}

#[test]
fn zip_bomb_is_an_archive_bomb() {
    let d = TestDaemon::start();
    d.ok(&["config", "scan-archives", "--value", "enabled"]);
    let dir = d.data().join("zbomb");
    // Nesting deeper than any sane limit: zip in zip in zip ... (depth 40).
    let mut inner = b"bottom".to_vec();
    for i in 0..40 {
        inner = zip_stored(&[(&format!("level{i}.zip"), &inner)]);
    }
    write(&dir.join("deep.zip"), &inner);
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 1, "zip nested 40 deep not reported: {j}");
    let t = d.threats_for(&dir.join("deep.zip"));
    assert_eq!(t.len(), 1, "{:?}", d.threats());
    assert_eq!(t[0]["type"], "archive_bomb", "{t:?}");
}
