//! `.deb`: a staged tree with a generated `DEBIAN/` directory, built by `dpkg-deb --build`.
//!
//! Not cargo-deb: its `$auto` depends run dpkg-shlibdeps against the build host's symbols
//! files (which answer `libc6 (>= 2.34)` for our 2.17-floor binaries) and ship an empty
//! Depends when that fails; we derive Depends from the ELF files ourselves, so what cargo-deb
//! would add is a second staging step. `dpkg-deb` is in every Debian system (docs/packaging.md).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use super::{install_file, mkdir, Format, Inputs};
use crate::{cross::Target, glibc, util};

/// `$MDATP_MAINTAINER`, or a placeholder in the reserved `.invalid` domain: the project has
/// no published contact address yet, and a package must not invent one.
pub fn maintainer() -> String {
    std::env::var("MDATP_MAINTAINER")
        .ok()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| "mdatp packagers <packaging@mdatp.invalid>".to_owned())
}
const DESCRIPTION: &str = "\
Open endpoint-protection agent compatible with Microsoft Defender for Endpoint
 wdavdaemon and the mdatp command line: an open, drop-in compatible
 implementation of the Microsoft Defender for Endpoint on Linux agent
 (on-demand scans, quarantine, exclusions, managed configuration), with the
 reference product's commands, paths and configuration keys.";

/// Files under /etc: dpkg keeps an admin's edits to them across upgrades.
const CONFFILES: &[&str] = &["/etc/init.d/mdatp", "/etc/init/mdatp.conf"];

/// Builds `target/dist/mdatp_VERSION_ARCH.deb` for `t` and returns its path.
pub fn build(t: &Target, inputs: &Inputs, work: &Path, out_dir: &Path) -> Result<PathBuf> {
    let root = work.join(format!("deb-{}", t.deb));
    super::stage_common(&root, t, inputs, Format::Deb)?;
    let src = util::project_root();
    install_file(
        &src.join("init/systemd/mdatp.service"),
        &root.join("lib/systemd/system/mdatp.service"),
        0o644,
    )?;
    install_file(
        &src.join("init/sysv/mdatp"),
        &root.join("etc/init.d/mdatp"),
        0o755,
    )?;
    install_file(
        &src.join("init/upstart/mdatp.conf"),
        &root.join("etc/init/mdatp.conf"),
        0o644,
    )?;
    let doc = root.join("usr/share/doc/mdatp");
    mkdir(&doc)?;
    fs::write(doc.join("copyright"), copyright()?)?;
    let changelog = doc.join("changelog");
    fs::write(&changelog, changelog_text(&inputs.version, &inputs.epoch)?)?;
    util::output(Command::new("gzip").args(["-9nf"]).arg(&changelog))?;
    install_file(
        &src.join("debian/mdatp.lintian-overrides"),
        &root.join("usr/share/lintian/overrides/mdatp"),
        0o644,
    )?;

    // Depends from the binaries themselves.
    let elfs = super::elf_files(&root)?;
    let needs: Vec<glibc::Needs> = elfs.iter().map(|p| glibc::read(p)).collect::<Result<_>>()?;
    let depends = super::deb_depends(&needs)?;
    cross_check_shlibdeps(t, &elfs, &depends, work)?;

    let control_dir = root.join("DEBIAN");
    mkdir(&control_dir)?;
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        install_file(
            &src.join("debian").join(script),
            &control_dir.join(script),
            0o755,
        )?;
    }
    fs::write(
        control_dir.join("conffiles"),
        CONFFILES
            .iter()
            .map(|c| format!("{c}\n"))
            .collect::<String>(),
    )?;
    fs::write(control_dir.join("md5sums"), md5sums(&root)?)?;
    let control = format!(
        "Package: mdatp\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: {maintainer}\n\
         Installed-Size: {size}\n\
         Pre-Depends: adduser\n\
         Depends: {depends}\n\
         Section: admin\n\
         Priority: optional\n\
         Description: {DESCRIPTION}\n",
        version = inputs.version,
        arch = t.deb,
        maintainer = maintainer(),
        size = installed_size_kib(&root)?,
        depends = depends.join(", "),
    );
    fs::write(control_dir.join("control"), control)?;
    super::clamp_mtimes(&root, &inputs.epoch)?;

    let out = out_dir.join(format!("mdatp_{}_{}.deb", inputs.version, t.deb));
    util::run(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "-z6", "--build"])
            .arg(&root)
            .arg(&out)
            .env("SOURCE_DATE_EPOCH", &inputs.epoch),
    )?;
    Ok(out)
}

/// Runs dpkg-shlibdeps (when the target's libc6 is installed, so it can resolve the symbols)
/// and checks its answer against ours: the same packages, and a libc6 version not lower than
/// ours. It usually says `libc6 (>= 2.34)` on Debian 12, because its symbols file maps
/// symbols that moved into libc.so.6 in 2.34 to 2.34; the binaries' own version needs (what
/// the dynamic linker checks) are the truth, so that answer is reported and corrected.
fn cross_check_shlibdeps(t: &Target, elfs: &[PathBuf], ours: &[String], work: &Path) -> Result<()> {
    let installed = util::output(
        Command::new("dpkg-query")
            .args(["-W", "-f=${db:Status-Status}"])
            .arg(format!("libc6:{}", t.deb)),
    )
    .unwrap_or_default();
    if installed != "installed" || util::which("dpkg-shlibdeps").is_none() {
        eprintln!(
            "deb: dpkg-shlibdeps cross-check for {} not run (needs dpkg-dev and libc6:{}); Depends comes \
             from the ELF files alone: {}",
            t.deb,
            t.deb,
            ours.join(", ")
        );
        return Ok(());
    }
    let dir = work.join("shlibdeps");
    fs::create_dir_all(dir.join("debian"))?;
    fs::write(
        dir.join("debian/control"),
        "Source: mdatp\n\nPackage: mdatp\nArchitecture: any\n",
    )?;
    let mut cmd = Command::new("dpkg-shlibdeps");
    cmd.current_dir(&dir).arg("-O").arg("--ignore-missing-info");
    for e in elfs {
        cmd.arg(format!("-e{}", e.display()));
    }
    let out = util::output(&mut cmd)?;
    let theirs = out
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .with_context(|| format!("dpkg-shlibdeps printed no shlibs:Depends: {out}"))?;
    let names = |deps: &mut dyn Iterator<Item = &str>| -> Vec<String> {
        let mut v: Vec<String> = deps
            .map(|d| d.trim().split([' ', '(']).next().unwrap_or("").to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        v.sort();
        v
    };
    let (their_names, our_names) = (
        names(&mut theirs.split(',')),
        names(&mut ours.iter().map(String::as_str)),
    );
    if their_names != our_names {
        bail!(
            "dpkg-shlibdeps ({theirs}) and the ELF files ({}) disagree on which packages the {} binaries \
             need: package::deb_package_of is missing a library",
            ours.join(", "),
            t.deb
        );
    }
    let libc = |s: &str| -> Option<glibc::Version> {
        let v = s.split("libc6 (>= ").nth(1)?.split(')').next()?;
        glibc::Version::parse_glibc(&format!("GLIBC_{v}"))
    };
    let ours_joined = ours.join(", ");
    match (libc(theirs), libc(&ours_joined)) {
        (Some(a), Some(b)) if a < b => {
            bail!("dpkg-shlibdeps says libc6 (>= {a}) but the {} binaries need GLIBC_{b}: the ELF parse is wrong", t.deb)
        }
        (Some(a), Some(b)) if a > b => eprintln!(
            "deb: dpkg-shlibdeps says libc6 (>= {a}) for {} (from this host's glibc symbols file); the binaries \
             need at most GLIBC_{b}: using libc6 (>= {b})",
            t.deb
        ),
        _ => eprintln!("deb: dpkg-shlibdeps agrees for {}: {theirs}", t.deb),
    }
    Ok(())
}

/// `md5sums`: one line per regular file, paths relative to the root, sorted.
fn md5sums(root: &Path) -> Result<String> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            let rel = entry.path().strip_prefix(root)?.to_path_buf();
            if rel.starts_with("DEBIAN") {
                continue;
            }
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() {
                files.push(rel);
            }
        }
    }
    files.sort();
    let out = util::output(Command::new("md5sum").current_dir(root).args(&files))?;
    Ok(out)
}

/// Installed-Size in KiB, as dpkg-gencontrol counts it: each file rounded up to 1 KiB, 1 KiB
/// for each directory and symlink.
fn installed_size_kib(root: &Path) -> Result<u64> {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = fs::symlink_metadata(entry.path())?;
            if entry.path().strip_prefix(root)?.starts_with("DEBIAN") {
                continue;
            }
            if meta.is_dir() {
                stack.push(entry.path());
                total += 1;
            } else if meta.is_file() {
                total += meta.len().div_ceil(1024);
            } else {
                total += 1;
            }
        }
    }
    Ok(total)
}

/// `debian/copyright` in the machine-readable format, with the MIT text and a pointer to
/// Debian's copy of the Apache licence.
fn copyright() -> Result<String> {
    let mit =
        fs::read_to_string(util::project_root().join("LICENSE-MIT")).context("LICENSE-MIT")?;
    let mit: String = mit
        .lines()
        .map(|l| {
            if l.trim().is_empty() {
                " .\n".to_owned()
            } else {
                format!(" {l}\n")
            }
        })
        .collect();
    Ok(format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: mdatp\n\
         \n\
         Files: *\n\
         Copyright: mdatp developers\n\
         License: Apache-2.0 or MIT\n\
         \n\
         License: Apache-2.0\n \
         On Debian systems, the full text of the Apache License 2.0 is in\n \
         /usr/share/common-licenses/Apache-2.0.\n\
         \n\
         License: MIT\n{mit}"
    ))
}

/// A one-entry Debian changelog (the package is native: its version has no Debian revision).
fn changelog_text(version: &str, epoch: &str) -> Result<String> {
    let date = util::output(
        Command::new("date")
            .args(["-u", "-R", "-d"])
            .arg(format!("@{epoch}")),
    )?;
    Ok(format!(
        "mdatp ({version}) stable; urgency=medium\n\n  * Release {version}.\n\n -- {}  {}\n",
        maintainer(),
        date.trim()
    ))
}
