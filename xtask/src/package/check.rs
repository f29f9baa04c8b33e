//! Checks of the built packages (`cargo xtask test`, step `package`): everything is read back
//! from the `.deb`/`.rpm` files in `target/dist/`, never from the staging trees.
//!
//! - lintian on each `.deb`: zero errors (overrides in `debian/mdatp.lintian-overrides`, each
//!   with its reason); rpmlint on each `.rpm`: zero errors (filters in `rpm/rpmlint.toml`).
//! - metadata: names, versions, architectures, dependencies, conffiles, payload compression
//!   and digest algorithm, every file's mode and owner that matters.
//! - the glibc floor over every ELF file extracted from each package, and agreement of the
//!   declared libc dependency with the highest `GLIBC_x.y` the packaged binaries need.
//! - maintainer scripts and scriptlets as extracted: `sh -n` and shellcheck (POSIX sh).
//! - the systemd unit: `systemd-analyze verify` against the package's own file tree.
//! - the SELinux module shipped in the RPM: linked into a copy of a real policy store.
//! - install, upgrade, remove, reinstall and purge of the amd64 `.deb` in a Debian 12 chroot.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use super::elf_files;
use crate::{
    cross::{Target, TARGETS},
    glibc, util,
};

/// Collects every failed assertion instead of stopping at the first.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }
    fn result(&mut self, what: &str, r: Result<()>) {
        if let Err(e) = r {
            self.0.push(format!("{what}: {e:#}"));
        }
    }
}

pub fn run() -> Result<()> {
    let version = super::version()?;
    let dist = util::target_dir().join("dist");
    let work = util::target_dir().join("package/check");
    if work.exists() {
        fs::remove_dir_all(&work)?;
    }
    fs::create_dir_all(&work)?;
    // mde-netfilter is a dependency of mdatp exactly when its package is built too.
    let netfilter_built = fs::read_dir(&dist)?
        .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("mde-netfilter")));
    let mut f = Failures::default();
    for t in TARGETS {
        let deb = dist.join(format!("mdatp_{version}_{}.deb", t.deb));
        let rpm = dist.join(format!("mdatp-{version}-1.{}.rpm", t.rpm));
        for p in [&deb, &rpm] {
            f.check(p.is_file(), || format!("{} was not built", p.display()));
        }
        if deb.is_file() {
            check_deb(
                &mut f,
                t,
                &deb,
                &version,
                netfilter_built,
                &work.join(format!("deb-{}", t.deb)),
            );
        }
        if rpm.is_file() {
            check_rpm(
                &mut f,
                t,
                &rpm,
                &version,
                netfilter_built,
                &work.join(format!("rpm-{}", t.rpm)),
            );
        }
    }
    // Install, upgrade, remove, reinstall, purge of the amd64 .deb in a Debian 12 chroot.
    let deb = dist.join(format!("mdatp_{version}_{}.deb", TARGETS[0].deb));
    if deb.is_file() {
        f.result("lifecycle (Debian 12 chroot)", super::lifecycle::run(&deb));
    }
    // The module as shipped (identical in both RPMs: it is architecture-independent).
    let pp = work.join(format!(
        "rpm-{}/root/opt/microsoft/mdatp/conf/selinux/mdatp.pp",
        TARGETS[0].rpm
    ));
    // (Its absence from the RPM is already a failure of check_rpm.)
    if pp.is_file() {
        f.result(
            "SELinux module: link into a copy of selinux-policy-default",
            super::selinux::link_test(&pp, &work),
        );
    }
    if !f.0.is_empty() {
        bail!(
            "{} package check(s) failed:\n- {}",
            f.0.len(),
            f.0.join("\n- ")
        );
    }
    eprintln!("package: all checks passed");
    Ok(())
}

/// Packages the same binaries a second time (`dist --no-build`, same `SOURCE_DATE_EPOCH`) and
/// requires byte-identical `.deb` and `.rpm` files. (Two full builds from scratch are not
/// compared here: that doubles a cold build's time.)
pub fn reproducible() -> Result<()> {
    let dist = util::target_dir().join("dist");
    let digests = || -> Result<BTreeMap<String, String>> {
        let mut files: Vec<PathBuf> = fs::read_dir(&dist)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "deb" || e == "rpm"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("no packages in {}", dist.display());
        }
        let out = util::output(Command::new("sha256sum").args(&files))?;
        Ok(out
            .lines()
            .filter_map(|l| {
                l.split_once("  ")
                    .map(|(h, f)| (f.to_owned(), h.to_owned()))
            })
            .collect())
    };
    let first = digests()?;
    crate::dist::assemble()?;
    let second = digests()?;
    let differ: Vec<&String> = first
        .keys()
        .filter(|f| first.get(*f) != second.get(*f))
        .collect();
    if !differ.is_empty() || first.len() != second.len() {
        bail!("packaging the same binaries twice gave different files: {differ:?}");
    }
    eprintln!(
        "package: {} packages byte-identical when made twice",
        first.len()
    );
    Ok(())
}

/// Glibc floor of every ELF file below `root`, and the highest version they need.
fn floor_of_tree(root: &Path) -> Result<glibc::Version> {
    let elfs = elf_files(root)?;
    if elfs.is_empty() {
        bail!("no ELF file in the package");
    }
    glibc::check_floor(&elfs.iter().map(PathBuf::as_path).collect::<Vec<_>>())
}

fn check_deb(
    f: &mut Failures,
    t: &Target,
    deb: &Path,
    version: &str,
    netfilter: bool,
    work: &Path,
) {
    let name = deb.display().to_string();
    let tree = work.join("root");
    let control = work.join("DEBIAN");
    let extracted = (|| -> Result<()> {
        fs::create_dir_all(&tree)?;
        util::output(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tree))?;
        util::output(Command::new("dpkg-deb").arg("-e").arg(deb).arg(&control))?;
        Ok(())
    })();
    if let Err(e) = extracted {
        f.0.push(format!("{name}: cannot extract: {e:#}"));
        return;
    }

    // Control fields.
    let fields = match util::output(Command::new("dpkg-deb").arg("-f").arg(deb)) {
        Ok(s) => parse_fields(&s),
        Err(e) => return f.0.push(format!("{name}: {e:#}")),
    };
    let field = |k: &str| fields.get(k).cloned().unwrap_or_default();
    f.check(field("Package") == "mdatp", || {
        format!("{name}: Package is {:?}", field("Package"))
    });
    f.check(field("Version") == version, || {
        format!("{name}: Version is {:?}, not {version}", field("Version"))
    });
    f.check(field("Architecture") == t.deb, || {
        format!("{name}: Architecture is {:?}", field("Architecture"))
    });
    f.check(
        field("Pre-Depends")
            .split(',')
            .any(|d| d.trim() == "adduser"),
        || {
            format!(
                "{name}: Pre-Depends {:?} lacks adduser (the preinst creates the user)",
                field("Pre-Depends")
            )
        },
    );
    let depends = field("Depends");
    match floor_of_tree(&tree) {
        Ok(max) => {
            let want = format!("libc6 (>= {max})");
            f.check(depends.split(',').any(|d| d.trim() == want), || {
                format!("{name}: Depends {depends:?} lacks {want:?}, derived from the packaged binaries")
            });
        }
        Err(e) => f.0.push(format!("{name}: {e:#}")),
    }
    f.check(depends.contains("mde-netfilter") == netfilter, || {
        format!("{name}: Depends {depends:?} must name mde-netfilter exactly when that package is built ({netfilter})")
    });
    let conffiles = fs::read_to_string(control.join("conffiles")).unwrap_or_default();
    f.check(
        conffiles.lines().collect::<Vec<_>>() == ["/etc/init.d/mdatp", "/etc/init/mdatp.conf"],
        || format!("{name}: conffiles are {conffiles:?}"),
    );

    // Files, modes, owners (`dpkg-deb -c`: mode owner/group size date time path [-> target]).
    let listing = util::output(Command::new("dpkg-deb").arg("-c").arg(deb)).unwrap_or_default();
    let mut entries = BTreeMap::new();
    for line in listing.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 6 {
            let path = cols[5]
                .trim_start_matches('.')
                .trim_end_matches('/')
                .to_owned();
            entries.insert(
                path,
                (
                    cols[0].to_owned(),
                    cols[1].to_owned(),
                    cols.get(7).map(|s| s.to_string()),
                ),
            );
        }
    }
    for (path, (_, owner, _)) in &entries {
        f.check(owner == "root/root", || {
            format!("{name}: {path} is owned by {owner}, not root/root")
        });
    }
    for (path, mode, target) in [
        ("/opt/microsoft/mdatp/sbin/wdavdaemon", "-rwxr-xr-x", None),
        (
            "/opt/microsoft/mdatp/sbin/wdavdaemonclient",
            "-rwxr-xr-x",
            None,
        ),
        (
            "/usr/bin/mdatp",
            "lrwxrwxrwx",
            Some("/opt/microsoft/mdatp/sbin/wdavdaemonclient"),
        ),
        (
            "/opt/microsoft/mdatp/resources/mdatp_completion.bash",
            "-rw-r--r--",
            None,
        ),
        ("/opt/microsoft/mdatp/resources/_mdatp", "-rw-r--r--", None),
        ("/usr/share/man/man1/mdatp.1.gz", "-rw-r--r--", None),
        ("/lib/systemd/system/mdatp.service", "-rw-r--r--", None),
        ("/etc/init.d/mdatp", "-rwxr-xr-x", None),
        ("/etc/init/mdatp.conf", "-rw-r--r--", None),
        ("/opt/microsoft/mdatp/definitions", "drwxr-xr-x", None),
        ("/etc/opt/microsoft/mdatp/managed", "drwxr-xr-x", None),
        ("/var/opt/microsoft/mdatp", "drwxr-xr-x", None),
        ("/var/log/microsoft/mdatp", "drwxr-xr-x", None),
        ("/usr/share/doc/mdatp/copyright", "-rw-r--r--", None),
    ] {
        match entries.get(path) {
            None => f.0.push(format!("{name}: {path} is missing")),
            Some((m, _, t)) => {
                f.check(m == mode, || {
                    format!("{name}: {path} has mode {m}, expected {mode}")
                });
                f.check(target.is_none() || t.as_deref() == target, || {
                    format!("{name}: {path} points to {t:?}, expected {target:?}")
                });
            }
        }
    }

    // Maintainer scripts as packaged.
    for s in ["preinst", "postinst", "prerm", "postrm"] {
        f.result(&format!("{name}: {s}"), lint_sh(&control.join(s)));
    }
    f.result(
        &format!("{name}: /etc/init.d/mdatp"),
        lint_sh(&tree.join("etc/init.d/mdatp")),
    );
    let preinst = fs::read_to_string(control.join("preinst")).unwrap_or_default();
    f.check(
        preinst.contains("adduser --quiet --system") && preinst.contains("getent passwd mdatp"),
        || format!("{name}: preinst does not create (or keep) the mdatp system user"),
    );
    let postrm = fs::read_to_string(control.join("postrm")).unwrap_or_default();
    f.check(
        !postrm.contains("deluser") && !postrm.contains("userdel"),
        || format!("{name}: postrm removes the user"),
    );

    f.result(
        &format!("{name}: systemd-analyze verify"),
        verify_unit(&tree, "lib/systemd/system/mdatp.service"),
    );
    f.result(&format!("{name}: lintian"), lintian(deb));
}

fn check_rpm(
    f: &mut Failures,
    t: &Target,
    rpm: &Path,
    version: &str,
    netfilter: bool,
    work: &Path,
) {
    let name = rpm.display().to_string();
    let q = |args: &[&str]| {
        util::output(
            Command::new("rpm")
                .args(["-qp", "--nosignature"])
                .args(args)
                .arg(rpm),
        )
    };

    let header = q(&[
        "--qf",
        "%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{PAYLOADCOMPRESSOR} %{FILEDIGESTALGO}",
    ]);
    let expected = format!("mdatp {version} 1 {} xz 8", t.rpm);
    f.check(header.as_deref().ok() == Some(expected.as_str()), || {
        format!("{name}: header is {header:?}, expected {expected:?} (name version release arch payload digest; 8 = SHA-256)")
    });

    let tree = work.join("root");
    let extracted = (|| -> Result<()> {
        fs::create_dir_all(&tree)?;
        util::output(
            Command::new("sh")
                .args([
                    "-c",
                    "rpm2cpio \"$1\" | cpio -idm --quiet --no-absolute-filenames",
                    "sh",
                ])
                .arg(rpm)
                .current_dir(&tree),
        )?;
        Ok(())
    })();
    if let Err(e) = extracted {
        return f.0.push(format!("{name}: cannot extract: {e:#}"));
    }
    let requires = q(&["--requires"]).unwrap_or_default();
    match floor_of_tree(&tree) {
        Ok(max) => {
            let top = requires
                .lines()
                .filter_map(|r| r.strip_prefix("libc.so.6(")?.split(')').next())
                .filter_map(glibc::Version::parse_glibc)
                .max();
            f.check(top == Some(max), || {
                format!("{name}: the highest libc.so.6(GLIBC_x.y) required is {top:?}, the packaged binaries need {max}")
            });
        }
        Err(e) => f.0.push(format!("{name}: {e:#}")),
    }
    for want in [
        "/usr/sbin/useradd",
        "/usr/sbin/groupadd",
        "libc.so.6()(64bit)",
    ] {
        f.check(requires.lines().any(|r| r.trim() == want), || {
            format!("{name}: requires lack {want}")
        });
    }
    f.check(requires.contains("mde-netfilter") == netfilter, || {
        format!("{name}: requires must name mde-netfilter exactly when that package is built ({netfilter})")
    });

    let files = q(&[
        "--qf",
        "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES} %{FILELINKTOS}\n]",
    ])
    .unwrap_or_default();
    let entries: BTreeMap<&str, Vec<&str>> = files
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .collect::<Vec<_>>()
                .get(3)
                .copied()
                .map(|p| (p, l.split_whitespace().collect()))
        })
        .collect();
    for (path, mode, group, target) in [
        (
            "/opt/microsoft/mdatp/sbin/wdavdaemon",
            "-rwxr-xr-x",
            "root",
            None,
        ),
        (
            "/opt/microsoft/mdatp/sbin/wdavdaemonclient",
            "-rwxr-xr-x",
            "root",
            None,
        ),
        (
            "/usr/bin/mdatp",
            "lrwxrwxrwx",
            "root",
            Some("/opt/microsoft/mdatp/sbin/wdavdaemonclient"),
        ),
        (
            "/usr/lib/systemd/system/mdatp.service",
            "-rw-r--r--",
            "root",
            None,
        ),
        ("/usr/share/man/man1/mdatp.1.gz", "-rw-r--r--", "root", None),
        (
            "/opt/microsoft/mdatp/resources/mdatp_completion.bash",
            "-rw-r--r--",
            "root",
            None,
        ),
        (
            "/etc/opt/microsoft/mdatp/managed",
            "drwxr-xr-x",
            "root",
            None,
        ),
        ("/var/opt/microsoft/mdatp", "drwxr-x---", "mdatp", None),
        ("/var/log/microsoft/mdatp", "drwxr-x---", "mdatp", None),
    ] {
        match entries.get(path) {
            None => f.0.push(format!("{name}: {path} is missing")),
            Some(cols) => {
                f.check(
                    cols[0] == mode && cols[1] == "root" && cols[2] == group,
                    || {
                        format!(
                            "{name}: {path} is {} {}:{}, expected {mode} root:{group}",
                            cols[0], cols[1], cols[2]
                        )
                    },
                );
                f.check(target.is_none() || cols.get(4).copied() == target, || {
                    format!("{name}: {path} points to {:?}", cols.get(4))
                });
            }
        }
    }

    let scripts = q(&["--scripts"]).unwrap_or_default();
    let parts = split_scriptlets(&scripts);
    for s in ["preinstall", "postinstall", "preuninstall", "postuninstall"] {
        match parts.get(s) {
            None => f.0.push(format!("{name}: no {s} scriptlet")),
            Some(body) => {
                let file = work.join(format!("{s}.sh"));
                f.result(
                    &format!("{name}: {s} scriptlet"),
                    fs::write(&file, body)
                        .map_err(Into::into)
                        .and_then(|()| lint_sh(&file)),
                );
            }
        }
    }
    let get = |s: &str| parts.get(s).map(String::as_str).unwrap_or("");
    f.check(get("preinstall").contains("useradd --system"), || {
        format!("{name}: %pre does not create the user")
    });
    // On upgrade the new %post runs before the old %preun/%postun: those act only on erase.
    f.check(get("preuninstall").contains("\"$1\" -eq 0"), || {
        format!("{name}: %preun does not test $1 = 0")
    });
    f.check(get("postuninstall").contains("\"$1\" -eq 0"), || {
        format!("{name}: %postun does not test $1 = 0")
    });
    f.check(
        !scripts.contains("userdel") && !scripts.contains("groupdel"),
        || format!("{name}: a scriptlet removes the user"),
    );
    // The SELinux module: shipped, installed on install/upgrade when enabled, removed on erase.
    f.check(
        entries.contains_key("/opt/microsoft/mdatp/conf/selinux/mdatp.pp"),
        || format!("{name}: no SELinux module"),
    );
    f.check(
        get("postinstall").contains("selinuxenabled") && get("postinstall").contains("semodule -i"),
        || format!("{name}: %post does not install the SELinux module"),
    );
    f.check(get("postuninstall").contains("semodule -r mdatp"), || {
        format!("{name}: %postun does not remove the SELinux module")
    });
    f.check(
        requires.lines().any(|r| r.starts_with("policycoreutils")),
        || format!("{name}: no policycoreutils requirement"),
    );

    f.result(
        &format!("{name}: systemd-analyze verify"),
        verify_unit(&tree, "usr/lib/systemd/system/mdatp.service"),
    );
    f.result(&format!("{name}: rpmlint"), rpmlint(rpm));
}

/// `Key: value` lines of a control file (continuation lines ignored).
fn parse_fields(s: &str) -> BTreeMap<String, String> {
    s.lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// `rpm --scripts` output split by scriptlet: "preinstall scriptlet (using /bin/sh):" headers.
fn split_scriptlets(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in s.lines() {
        if let Some(head) = line.strip_suffix(" scriptlet (using /bin/sh):") {
            current = Some(head.to_owned());
            out.insert(head.to_owned(), "#!/bin/sh\n".to_owned());
        } else if let Some(c) = &current {
            let body = out.get_mut(c).unwrap();
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// `sh -n` and `shellcheck -s sh` (POSIX sh).
pub fn lint_sh(path: &Path) -> Result<()> {
    util::output(Command::new("sh").arg("-n").arg(path))?;
    util::output(
        Command::new("shellcheck")
            .args(["-s", "sh", "-f", "gcc"])
            .arg(path),
    )
    .map(|_| ())
    .map_err(|e| anyhow::anyhow!("shellcheck: {e:#}"))
}

/// `systemd-analyze verify` of the unit as packaged. It checks that ExecStart= exists, so it
/// runs in a private mount namespace where the package's own `/opt` is bind-mounted over the
/// host's (needs root: unshare).
fn verify_unit(tree: &Path, unit: &str) -> Result<()> {
    if !util::is_root() {
        bail!("needs root (unshare -m) to bind the package's /opt over /opt");
    }
    let script = "mount --bind \"$1/opt\" /opt && MANPATH=\"$1/usr/share/man\" systemd-analyze verify \"$1/$2\"";
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(tree)
        .arg(unit)
        .output()
        .context("cannot run unshare")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || !text.trim().is_empty() {
        bail!("not clean ({}): {}", out.status, text.trim());
    }
    Ok(())
}

/// lintian with zero errors (warnings are printed, not fatal; every override has a reason in
/// debian/mdatp.lintian-overrides).
fn lintian(deb: &Path) -> Result<()> {
    let out = Command::new("lintian")
        .args([
            "--fail-on",
            "error",
            "--display-info",
            "--tag-display-limit",
            "0",
        ])
        .arg(deb)
        .output()
        .context("cannot run lintian")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.trim().is_empty() {
        eprintln!("lintian {}:\n{}", deb.display(), text.trim_end());
    }
    if !out.status.success() {
        bail!(
            "lintian reports errors ({}):\n{}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// rpmlint with zero errors, with the filters of rpm/rpmlint.toml (each justified there).
fn rpmlint(rpm: &Path) -> Result<()> {
    let out = Command::new("rpmlint")
        .arg("--config")
        .arg(util::project_root().join("rpm/rpmlint.toml"))
        .arg(rpm)
        .output()
        .context("cannot run rpmlint")?;
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("rpmlint {}:\n{}", rpm.display(), text.trim_end());
    // "1 packages and 0 specfiles checked; 0 errors, 3 warnings, 0 badness; has taken 0.4 s"
    let errors = text.lines().rev().find_map(|l| {
        l.split_once(" errors,")?
            .0
            .rsplit(' ')
            .next()?
            .parse::<u32>()
            .ok()
    });
    match errors {
        Some(0) => Ok(()),
        Some(n) => bail!("{n} error(s)"),
        None => bail!(
            "cannot find rpmlint's summary ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
