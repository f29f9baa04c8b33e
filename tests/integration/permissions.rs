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

#[test]
fn supplementary_group_membership_counts() {
    // How admins grant access: `usermod -aG mdatp alice` makes mdatp a supplementary group,
    // not the primary one.
    if !need_root("permissions::supplementary_group_membership_counts") {
        return;
    }
    let gid = mdatp_gid();
    let d = TestDaemon::start();
    let bin = open_up(&d);
    let run_as = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.env("MDATP_ROOT", d.root()).current_dir("/").args(args);
        // SAFETY: the closure runs in the forked child before exec and only makes the
        // async-signal-safe system calls setgroups, setgid and setuid, touching no memory
        // but its captured integers.
        unsafe {
            c.pre_exec(move || {
                let groups = [gid as libc::gid_t];
                if libc::setgroups(1, groups.as_ptr()) != 0
                    || libc::setgid(NOBODY) != 0
                    || libc::setuid(NOBODY) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        run(c)
    };
    let o = run_as(&["health", "--field", "healthy"]);
    assert!(o.ok(), "a user whose supplementary groups include mdatp was refused a read-only command: {}", o.describe());
    let o = run_as(&["config", "passive-mode", "--value", "disabled"]).failure();
    assert!(o.stderr.to_lowercase().contains("permission denied"), "{}", o.describe());
}

#[test]
fn hostile_clients_do_not_stop_the_daemon() {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    let mut d = TestDaemon::start();
    let sock = d.p("/run/mdatp/wdavdaemon.sock");
    // Garbage, an endless line, a half request and a request with missing fields.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(b"this is not json\n").unwrap();
    let mut s2 = UnixStream::connect(&sock).unwrap();
    let _ = s2.write_all(&vec![b'x'; 4 << 20]);
    let mut s3 = UnixStream::connect(&sock).unwrap();
    s3.write_all(br#"{"cmd": "scan", "kind": "custom", "paths": ["/"#).unwrap();
    let mut s4 = UnixStream::connect(&sock).unwrap();
    s4.write_all(br#"{"cmd": "scan", "kind": "custom", "paths": [], "ignore_exclusions": false}"#).unwrap();
    s4.write_all(b"\n").unwrap();
    let mut s5 = UnixStream::connect(&sock).unwrap();
    s5.write_all(b"{\"cmd\": \"health\", \"extra\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}\n").unwrap();
    d.assert_alive();
    drop((s, s2, s3, s4, s5));
    d.assert_alive();
}

/// Helper run as `nobody` by [`idle_connections_of_another_user_do_not_lock_out_root`]: opens
/// many connections to the socket named by `MDATP_IT_IDLE_SOCKET`, says so, and holds them.
/// A no-op in a normal test run.
#[test]
fn idle_connections_helper() {
    let Some(sock) = std::env::var_os("MDATP_IT_IDLE_SOCKET") else { return };
    let conns: Vec<std::os::unix::net::UnixStream> =
        (0..400).filter_map(|_| std::os::unix::net::UnixStream::connect(&sock).ok()).collect();
    println!("HELD {}", conns.len());
    std::thread::sleep(std::time::Duration::from_secs(8));
    drop(conns);
}

#[test]
fn idle_connections_of_another_user_do_not_lock_out_root() {
    use std::io::BufRead;
    if !need_root("permissions::idle_connections_of_another_user_do_not_lock_out_root") {
        return;
    }
    let mut d = TestDaemon::start();
    let _ = open_up(&d);
    let helper = d.root().join("bin/it-helper");
    fs::copy(std::env::current_exe().unwrap(), &helper).unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    // Any local user may connect (the socket is 0666): `nobody` opens 400 idle connections.
    let mut cmd = Command::new(&helper);
    cmd.args(["--exact", "permissions::idle_connections_helper", "--nocapture", "--test-threads", "1"])
        .env("MDATP_IT_IDLE_SOCKET", d.p("/run/mdatp/wdavdaemon.sock"))
        .current_dir("/")
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = wait_until(std::time::Duration::from_secs(10), "the copied helper to be runnable", || match cmd.spawn() {
        Ok(c) => Some(c),
        Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => None,
        Err(e) => panic!("cannot run the helper: {e}"),
    });
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 && !line.contains("HELD") {
        line.clear();
    }
    assert!(line.contains("HELD"), "the helper did not connect");
    // Root must still be able to run its commands while they are held.
    let o = d.mdatp(&["health", "--field", "healthy"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(o.ok(), "an unprivileged user's idle connections ({}) lock root out of mdatp: {}", line.trim(), o.describe());
    d.assert_alive();
}
