//! Caller credentials: root may do everything, members of group `mdatp` may only read,
//! everyone else is refused with "permission denied".

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

const NOBODY: u32 = 65534;

/// True when the test can run; otherwise fails under CI and prints a skip line elsewhere.
fn need_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{test} needs root and CI=true: run the integration tests as root");
    }
    eprintln!("SKIPPED {test}: needs root (run the integration tests as root; CI does)");
    false
}

/// The gid of group `mdatp`, created as a system group if missing.
fn mdatp_gid() -> u32 {
    if nix::unistd::Group::from_name("mdatp").ok().flatten().is_none() {
        let st = Command::new("groupadd").args(["--system", "mdatp"]).status().expect("groupadd");
        // Another test process may have created it meanwhile.
        assert!(st.success() || nix::unistd::Group::from_name("mdatp").ok().flatten().is_some(), "groupadd --system mdatp failed");
    }
    nix::unistd::Group::from_name("mdatp").unwrap().unwrap().gid.as_raw()
}

/// Opens the path to the socket for other users, and copies `mdatp` where they can run it.
fn open_up(d: &TestDaemon) -> PathBuf {
    let mut p: &Path = d.root();
    loop {
        let m = fs::metadata(p).unwrap().permissions().mode();
        if m & 0o005 != 0o005 {
            fs::set_permissions(p, fs::Permissions::from_mode(m | 0o005)).unwrap();
        }
        match p.parent() {
            Some(q) if q != Path::new("/") => p = q,
            _ => break,
        }
    }
    let bin_dir = d.root().join("bin");
    fs::create_dir_all(&bin_dir).unwrap();
    fs::set_permissions(&bin_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let bin = bin_dir.join("mdatp");
    fs::copy(MDATP, &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn as_user(d: &TestDaemon, bin: &Path, uid: u32, gid: u32, args: &[&str]) -> Out {
    let mut c = Command::new(bin);
    c.env("MDATP_ROOT", d.root()).current_dir("/").args(args).uid(uid).gid(gid);
    run(c)
}

const READ_ONLY: &[&[&str]] = &[
    &["health"],
    &["health", "--field", "healthy"],
    &["threat", "list"],
    &["scan", "list"],
    &["exclusion", "list"],
    &["threat", "allowed", "list"],
    &["threat", "quarantine", "list"],
];

#[test]
fn other_users_are_refused() {
    if !need_root("permissions::other_users_are_refused") {
        return;
    }
    let d = TestDaemon::start();
    let bin = open_up(&d);
    for args in READ_ONLY.iter().chain(&[&["config", "passive-mode", "--value", "disabled"][..], &["scan", "custom", "--path", "/tmp"]]) {
        let o = as_user(&d, &bin, NOBODY, NOBODY, args).failure();
        assert!(o.stderr.to_lowercase().contains("permission denied"), "`mdatp {}` as nobody: {}", args.join(" "), o.describe());
        assert_eq!(o.stderr.trim().lines().count(), 1, "{}", o.describe());
    }
    // Nothing changed.
    assert_eq!(d.health_field("passive_mode_enabled"), "true");
}

#[test]
fn mdatp_group_members_may_only_read() {
    if !need_root("permissions::mdatp_group_members_may_only_read") {
        return;
    }
    let gid = mdatp_gid();
    let d = TestDaemon::start();
    let bin = open_up(&d);
    // Something to list.
    let f = d.data().join("eicar.com");
    write_eicar(&f);
    d.scan(&[&f]).success();
    for args in READ_ONLY {
        let o = as_user(&d, &bin, NOBODY, gid, args);
        assert!(o.ok(), "read-only `mdatp {}` refused for a member of group mdatp: {}", args.join(" "), o.describe());
    }
    let threats = as_user(&d, &bin, NOBODY, gid, &["threat", "list", "--output", "json"]).json();
    assert_eq!(threats.as_array().map(|a| a.len()), Some(1), "{threats}");
    let data = d.data();
    for args in [
        &["config", "passive-mode", "--value", "disabled"][..],
        &["config", "real-time-protection", "--value", "enabled"],
        &["scan", "custom", "--path", data.to_str().unwrap()],
        &["scan", "cancel"],
        &["threat", "allowed", "add", "--name", "X"],
        &["exclusion", "folder", "add", "--path", "/srv"],
        &["threat", "quarantine", "remove-all"],
        &["log", "level", "set", "--level", "debug"],
        &["definitions", "update"],
    ] {
        let o = as_user(&d, &bin, NOBODY, gid, args).failure();
        assert!(o.stderr.to_lowercase().contains("permission denied"), "`mdatp {}` as a member of mdatp: {}", args.join(" "), o.describe());
    }
    assert_eq!(d.health_field("passive_mode_enabled"), "true");
    assert_eq!(d.ok(&["exclusion", "list", "--output", "json"]).json().as_array().map(|a| a.len()), Some(0));
}
