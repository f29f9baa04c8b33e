//! Logging: the daemon's log file and `mdatp log level set`.

use std::fs;

use crate::util::*;

#[test]
fn daemon_writes_its_log_file() {
    let d = TestDaemon::start();
    let log = d.log_dir().join("microsoft_defender_core.log");
    // Scan something so there is a line to find.
    let f = d.data().join("logme/eicar.com");
    write_eicar(&f);
    d.scan(&[&f]).success();
    let text = wait_until(CHANGE_TIMEOUT, "the log to mention the detection", || {
        let t = fs::read_to_string(&log).ok()?;
        t.contains("eicar.com").then_some(t)
    });
    assert!(!text.is_empty());
    assert!(!text.contains("\x1b["), "colour codes in the log file");
}

#[test]
fn log_level_set_shows_in_health() {
    let d = TestDaemon::start();
    assert_eq!(d.health_field("log_level"), "\"info\"");
    let o = d.ok(&["log", "level", "set", "--level", "debug"]);
    assert!(!o.stdout.trim().is_empty(), "{}", o.describe());
    assert_eq!(d.health_field("log_level"), "\"debug\"");
    let text = d.ok(&["health"]).stdout;
    assert!(text.lines().any(|l| l.starts_with("log_level") && l.trim_end().ends_with(": \"debug\"")), "{text}");
    d.ok(&["log", "level", "set", "--level", "warning"]);
    assert_eq!(d.health_field("log_level"), "\"warning\"");
    d.mdatp(&["log", "level", "set", "--level", "loud"]).failure();
    // The level survives a restart.
    let mut d = d;
    d.restart();
    assert_eq!(d.health_field("log_level"), "\"warning\"");
}

#[test]
fn debug_level_logs_more() {
    let d = TestDaemon::start();
    let log = d.log_dir().join("microsoft_defender_core.log");
    d.ok(&["log", "level", "set", "--level", "error"]);
    let before = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let clean = d.data().join("quiet/clean.txt");
    write(&clean, b"clean");
    d.scan(&[clean.parent().unwrap()]).success();
    let after_error = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    assert_eq!(before, after_error, "a clean scan logged at level error:\n{}", fs::read_to_string(&log).unwrap_or_default());
    d.ok(&["log", "level", "set", "--level", "debug"]);
    d.scan(&[clean.parent().unwrap()]).success();
    wait_until(CHANGE_TIMEOUT, "the scan to be logged at level debug", || {
        (fs::metadata(&log).map(|m| m.len()).unwrap_or(0) > after_error).then_some(())
    });
}

#[test]
fn file_names_cannot_forge_log_lines() {
    let d = TestDaemon::start();
    let log = d.log_dir().join("microsoft_defender_core.log");
    let dir = d.data().join("forge");
    // A hostile name that tries to start a log line of its own.
    write_eicar(&dir.join("x.com\n2026-01-01T00:00:00Z  INFO FORGED all clear"));
    d.scan(&[&dir]).success();
    let text = wait_until(CHANGE_TIMEOUT, "the detection in the log", || {
        let t = fs::read_to_string(&log).ok()?;
        t.contains("forge").then_some(t)
    });
    let forged: Vec<&str> = text.lines().filter(|l| l.starts_with("2026-01-01T00:00:00Z")).collect();
    assert!(forged.is_empty(), "a file name wrote its own line into the log: {forged:?}");
}
