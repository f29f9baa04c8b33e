//! Install, upgrade, remove, reinstall and purge of the amd64 `.deb` in a Debian 12 chroot
//! (`debian/tests/lifecycle` holds the steps and assertions).
//!
//! The chroot runs in its own mount and PID namespaces (`unshare -m -p -f`) with its own
//! `/proc` and `/run`, so the daemon the package starts dies with the test. No init system
//! runs there: the maintainer scripts take the SysV path, with a policy-rc.d that allows
//! starts. The systemd path needs a container booted with systemd (the next step, issue 6).
//! The Debian root is made once with debootstrap (minbase + adduser) and cached in
//! `target/package/rootfs-bookworm`; each run works on a fresh copy.

use std::{fs, path::Path, process::Command};

use anyhow::{bail, Context, Result};

use crate::util;

pub fn run(deb: &Path) -> Result<()> {
    if !util::is_root() {
        bail!("needs root (debootstrap, chroot, unshare)");
    }
    let work = util::target_dir().join("package");
    let base = work.join("rootfs-bookworm");
    if !base.join("usr/sbin/adduser").exists() {
        let tmp = work.join("rootfs-bookworm.tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        let mirror = std::env::var("MDATP_DEBIAN_MIRROR")
            .unwrap_or_else(|_| "http://deb.debian.org/debian".into());
        util::run(
            Command::new("debootstrap")
                .args(["--variant=minbase", "--include=adduser", "bookworm"])
                .arg(&tmp)
                .arg(mirror),
        )
        .context("debootstrap of the Debian 12 test root")?;
        if base.exists() {
            fs::remove_dir_all(&base)?;
        }
        fs::rename(&tmp, &base)?;
    }
    let root = work.join("lifecycle-root");
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    util::output(Command::new("cp").arg("-a").arg(&base).arg(&root))?;
    let policy = root.join("usr/sbin/policy-rc.d");
    fs::write(
        &policy,
        "#!/bin/sh\n# test root: let invoke-rc.d start services\nexit 0\n",
    )?;
    util::output(Command::new("chmod").arg("755").arg(&policy))?;
    fs::copy(deb, root.join("tmp/mdatp.deb"))?;
    fs::copy(
        util::project_root().join("debian/tests/lifecycle"),
        root.join("tmp/lifecycle"),
    )?;
    util::output(
        Command::new("chmod")
            .arg("755")
            .arg(root.join("tmp/lifecycle")),
    )?;
    let script = "mount -t proc proc \"$1/proc\" && mount -t tmpfs tmpfs \"$1/run\" && exec chroot \"$1\" /tmp/lifecycle /tmp/mdatp.deb";
    let out = Command::new("unshare")
        .args(["-m", "-p", "-f", "sh", "-c", script, "sh"])
        .arg(&root)
        .output()
        .context("cannot run unshare")?;
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "lifecycle of {} (Debian 12 chroot, SysV path):\n{}",
        deb.display(),
        text.trim_end()
    );
    if !out.status.success() {
        bail!(
            "lifecycle test failed ({}): {}{}",
            out.status,
            text.lines()
                .filter(|l| l.starts_with("FAIL"))
                .collect::<Vec<_>>()
                .join("; "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs::remove_dir_all(&root)?;
    Ok(())
}
