//! The `.deb` and `.rpm` packages: one staged file tree per package (the layout of the
//! reference product), dependencies derived from the ELF files, then `dpkg-deb` / `rpmbuild`.
//!
//! Packaging sources are plain files beside the code: `init/` (systemd unit, SysV script,
//! Upstart job), `debian/` (maintainer scripts, lintian overrides), `rpm/mdatp.spec`.
//! See `docs/packaging.md` for every choice and its reason.

pub mod check;
pub mod deb;
pub mod lifecycle;
pub mod rpm;
pub mod selinux;

use std::{
    fs,
    os::unix::fs::{symlink, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::{
    cross::{Target, TARGETS},
    dist::BINARIES,
    glibc, util,
};

/// The package's version: the root crate's (`Cargo.toml`).
pub fn version() -> Result<String> {
    let toml = fs::read_to_string(util::project_root().join("Cargo.toml"))?;
    let mut in_package = false;
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some(v) = line
                .strip_prefix("version")
                .map(str::trim)
                .and_then(|r| r.strip_prefix('='))
            {
                return Ok(v.trim().trim_matches('"').to_owned());
            }
        }
    }
    bail!("no version in the [package] section of Cargo.toml")
}

/// `SOURCE_DATE_EPOCH`, or the time of the last commit: every file in a package gets this
/// mtime, so two builds of the same commit give the same packages.
pub fn source_date_epoch() -> Result<String> {
    if let Ok(e) = std::env::var("SOURCE_DATE_EPOCH") {
        if !e.is_empty() {
            return Ok(e);
        }
    }
    let out = util::output(
        Command::new("git")
            .arg("-C")
            .arg(util::project_root())
            .args(["log", "-1", "--format=%ct"]),
    );
    Ok(out
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "0".into()))
}

/// The inputs every package is built from, produced by `dist` before packaging.
pub struct Inputs {
    pub version: String,
    pub epoch: String,
    /// `target/dist/completions/{mdatp.bash,_mdatp}` and `target/dist/man/mdatp.1`.
    pub dist: PathBuf,
}

/// Builds every package into `out_dir` (old `.deb`/`.rpm` files there are removed first) and
/// checks the glibc floor of every ELF file packaged. Returns the packages' paths.
pub fn build_all(inputs: &Inputs, out_dir: &Path) -> Result<Vec<PathBuf>> {
    for entry in fs::read_dir(out_dir)? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "deb" || e == "rpm") {
            fs::remove_file(&p)?;
        }
    }
    let work = util::target_dir().join("package");
    fs::create_dir_all(&work)?;
    let pp = selinux::build(&work)?;
    let mut built = Vec::new();
    for t in TARGETS {
        built.push(deb::build(t, inputs, &work, out_dir)?);
        built.push(rpm::build(t, inputs, &pp, &work, out_dir)?);
    }
    let mut elfs = Vec::new();
    for t in TARGETS {
        elfs.extend(elf_files(&work.join(format!("deb-{}", t.deb)))?);
        elfs.extend(elf_files(&work.join(format!("rpm-{}/root", t.rpm)))?);
    }
    let refs: Vec<&Path> = elfs.iter().map(PathBuf::as_path).collect();
    glibc::check_floor(&refs)?;
    Ok(built)
}

/// Where a format's specific files go.
pub enum Format {
    Deb,
    Rpm,
}

/// Builds the package-independent part of the tree below `root` (emptied first) for `t`:
/// binaries, the `/usr/bin/mdatp` link, completions, man page, configuration, state and log
/// directories. Format-specific files (units, scripts, docs) are added by deb.rs / rpm.rs.
pub fn stage_common(root: &Path, t: &Target, inputs: &Inputs, format: Format) -> Result<()> {
    if root.exists() {
        fs::remove_dir_all(root).with_context(|| root.display().to_string())?;
    }
    let install = root.join("opt/microsoft/mdatp");
    for dir in [
        "opt/microsoft/mdatp/sbin",
        "opt/microsoft/mdatp/definitions",
        "opt/microsoft/mdatp/resources",
        "opt/microsoft/mdatp/conf",
        "usr/bin",
        "usr/share/man/man1",
        "usr/share/bash-completion/completions",
        "etc/opt/microsoft/mdatp/managed",
        "var/opt/microsoft/mdatp",
        "var/log/microsoft/mdatp",
    ] {
        mkdir(&root.join(dir))?;
    }
    // The CLI is installed as wdavdaemonclient, like the reference, and linked as mdatp.
    for (bin, name) in BINARIES.iter().zip(["wdavdaemon", "wdavdaemonclient"]) {
        debug_assert!(*bin == "wdavdaemon" || *bin == "mdatp");
        let to = install.join("sbin").join(name);
        strip_debug(t, &t.binary(bin), &to)?;
        fs::set_permissions(&to, fs::Permissions::from_mode(0o755))?;
    }
    symlink(
        "/opt/microsoft/mdatp/sbin/wdavdaemonclient",
        root.join("usr/bin/mdatp"),
    )?;
    // Completions where the reference has them (resources/), linked where shells look.
    install_file(
        &inputs.dist.join("completions/mdatp.bash"),
        &install.join("resources/mdatp_completion.bash"),
        0o644,
    )?;
    install_file(
        &inputs.dist.join("completions/_mdatp"),
        &install.join("resources/_mdatp"),
        0o644,
    )?;
    symlink(
        "/opt/microsoft/mdatp/resources/mdatp_completion.bash",
        root.join("usr/share/bash-completion/completions/mdatp"),
    )?;
    let zsh = match format {
        Format::Deb => "usr/share/zsh/vendor-completions",
        Format::Rpm => "usr/share/zsh/site-functions",
    };
    mkdir(&root.join(zsh))?;
    symlink(
        "/opt/microsoft/mdatp/resources/_mdatp",
        root.join(zsh).join("_mdatp"),
    )?;
    gzip(
        &inputs.dist.join("man/mdatp.1"),
        &root.join("usr/share/man/man1/mdatp.1.gz"),
    )?;
    // The init files for systems without systemd are kept in conf/ as well, for admins who
    // need them on a system where the package does not install them (docs/packaging.md).
    let init = util::project_root().join("init");
    install_file(
        &init.join("sysv/mdatp"),
        &install.join("conf/mdatp.init"),
        0o755,
    )?;
    install_file(
        &init.join("upstart/mdatp.conf"),
        &install.join("conf/mdatp.upstart"),
        0o644,
    )?;
    Ok(())
}

/// Sets every mtime below `root` (symlinks included) to `epoch`, for reproducible archives.
pub fn clamp_mtimes(root: &Path, epoch: &str) -> Result<()> {
    util::output(
        Command::new("find")
            .arg(root)
            .args(["-exec", "touch", "-h", "-d"])
            .arg(format!("@{epoch}"))
            .args(["{}", "+"]),
    )?;
    Ok(())
}

pub fn mkdir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .with_context(|| dir.display().to_string())
}

pub fn install_file(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(parent) = to.parent() {
        mkdir(parent)?;
    }
    fs::copy(from, to).with_context(|| format!("copy {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
        .with_context(|| to.display().to_string())
}

/// Copies an ELF file stripped of debug sections and symbol table, as Debian's dh_strip does
/// (the release profile keeps line tables for development backtraces; the unstripped binary
/// stays in target/<triple>/release for debugging), with the target's objcopy: Debian's
/// binutils only know x86, and `zig objcopy` cannot strip yet.
fn strip_debug(t: &Target, from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        mkdir(parent)?;
    }
    util::output(
        Command::new(t.objcopy)
            .args(["--strip-all", "--remove-section=.comment"])
            .arg(from)
            .arg(to),
    )
    .with_context(|| format!("cannot strip {}", from.display()))?;
    Ok(())
}

/// `gzip -9n`: no name and no timestamp in the header, so the output is reproducible.
fn gzip(from: &Path, to: &Path) -> Result<()> {
    let out = Command::new("gzip")
        .args(["-9n", "-c"])
        .arg(from)
        .output()
        .context("cannot run gzip")?;
    if !out.status.success() {
        bail!(
            "gzip {} failed: {}",
            from.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs::write(to, out.stdout)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Every ELF file below `root`, sorted.
pub fn elf_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
            let entry = entry?;
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() && glibc::is_elf(&entry.path()) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Which Debian package provides a shared library (by soname) that a binary needs. Only what
/// our binaries link; an unknown soname fails the build instead of being left out.
pub fn deb_package_of(soname: &str) -> Option<&'static str> {
    Some(match soname {
        "libc.so.6"
        | "libm.so.6"
        | "libpthread.so.0"
        | "libdl.so.2"
        | "librt.so.1"
        | "libutil.so.1"
        | "ld-linux-x86-64.so.2"
        | "ld-linux-aarch64.so.1" => "libc6",
        "libgcc_s.so.1" => "libgcc-s1",
        _ => return None,
    })
}

/// `GCC_4.2.0` -> (4, 2); None when not a GCC version.
fn gcc_version(tag: &str) -> Option<(u32, u32)> {
    let mut it = tag.strip_prefix("GCC_")?.split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// The Debian `Depends` of a set of ELF files, from their own needs: `libc6 (>= X)` with X the
/// highest `GLIBC_X` any of them needs, and `libgcc-s1 (>= Y) | libgcc1 (>= 1:Y)` when
/// libgcc_s is linked (libgcc1 is its name before Debian 11 / Ubuntu 20.04). Fails when a
/// library has no known package or nothing at all is derived: an empty Depends never ships.
pub fn deb_depends(needs: &[glibc::Needs]) -> Result<Vec<String>> {
    let mut libc: Option<glibc::Version> = None;
    let mut gcc: Option<(u32, u32)> = None;
    let mut other = Vec::new();
    for n in needs {
        for lib in &n.libraries {
            match deb_package_of(lib) {
                Some("libc6") => {
                    let max = n
                        .versions_of(lib)
                        .iter()
                        .filter_map(|v| glibc::Version::parse_glibc(v))
                        .max()
                        .unwrap_or(glibc::Version(2, 0, 0));
                    libc = Some(libc.map_or(max, |l| l.max(max)));
                }
                Some("libgcc-s1") => {
                    let max = n.versions_of(lib).iter().filter_map(|v| gcc_version(v)).max().unwrap_or((3, 0));
                    gcc = Some(gcc.map_or(max, |g| g.max(max)));
                }
                Some(p) => other.push(p.to_owned()),
                None => bail!(
                    "a packaged binary needs {lib}, and no Debian package is known for it: add it to \
                     package::deb_package_of (and the RPM side is derived from the soname itself)"
                ),
            }
        }
    }
    let mut deps = Vec::new();
    match libc {
        Some(v) => deps.push(format!("libc6 (>= {v})")),
        None => bail!("no libc6 dependency derived from the binaries: refusing to build a package without one"),
    }
    if let Some((a, b)) = gcc {
        deps.push(format!("libgcc-s1 (>= {a}.{b}) | libgcc1 (>= 1:{a}.{b})"));
    }
    other.sort();
    other.dedup();
    deps.extend(other);
    Ok(deps)
}

/// RPM requires in rpm's own `elfdeps` form, computed from the ELF files: `soname()(64bit)`
/// for each DT_NEEDED, `soname(VERSION)(64bit)` for each needed symbol version, and
/// `rtld(GNU_HASH)` for a binary with only GNU hash tables. Both our targets are 64-bit.
pub fn rpm_requires(needs: &[glibc::Needs]) -> Result<Vec<String>> {
    let mut reqs = std::collections::BTreeSet::new();
    for n in needs {
        for lib in &n.libraries {
            reqs.insert(format!("{lib}()(64bit)"));
        }
        for v in &n.versions {
            reqs.insert(format!("{}({})(64bit)", v.file, v.version));
        }
        if n.gnu_hash_only {
            reqs.insert("rtld(GNU_HASH)".to_owned());
        }
    }
    if !reqs.iter().any(|r| r.starts_with("libc.so.6(GLIBC_")) {
        bail!("no libc.so.6(GLIBC_x.y) requirement derived from the binaries: refusing to build the RPM");
    }
    Ok(reqs.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glibc::{Machine, Needed, Needs};

    fn needs(libs: &[&str], versions: &[(&str, &str)]) -> Needs {
        Needs {
            machine: Machine::Aarch64,
            libraries: libs.iter().map(|s| s.to_string()).collect(),
            versions: versions
                .iter()
                .map(|(f, v)| Needed {
                    file: f.to_string(),
                    version: v.to_string(),
                })
                .collect(),
            symbols: Vec::new(),
            gnu_hash_only: true,
        }
    }

    #[test]
    fn deb_depends_take_the_highest_version_over_all_binaries() {
        let a = needs(
            &["libc.so.6", "libgcc_s.so.1"],
            &[("libc.so.6", "GLIBC_2.2.5"), ("libgcc_s.so.1", "GCC_3.0")],
        );
        let b = needs(
            &["libc.so.6", "libpthread.so.0", "libgcc_s.so.1"],
            &[
                ("libc.so.6", "GLIBC_2.17"),
                ("libpthread.so.0", "GLIBC_2.3.4"),
                ("libgcc_s.so.1", "GCC_4.2.0"),
            ],
        );
        assert_eq!(
            deb_depends(&[a, b]).unwrap(),
            ["libc6 (>= 2.17)", "libgcc-s1 (>= 4.2) | libgcc1 (>= 1:4.2)"]
        );
    }

    #[test]
    fn deb_depends_refuse_unknown_libraries_and_empty_results() {
        let e = deb_depends(&[needs(
            &["libc.so.6", "libssl.so.3"],
            &[("libc.so.6", "GLIBC_2.17")],
        )])
        .unwrap_err();
        assert!(format!("{e}").contains("libssl.so.3"), "{e}");
        assert!(deb_depends(&[needs(&[], &[])]).is_err());
    }

    #[test]
    fn rpm_requires_are_in_elfdeps_form() {
        let n = needs(
            &["libc.so.6"],
            &[("libc.so.6", "GLIBC_2.17"), ("libc.so.6", "GLIBC_2.2.5")],
        );
        assert_eq!(
            rpm_requires(&[n]).unwrap(),
            [
                "libc.so.6()(64bit)",
                "libc.so.6(GLIBC_2.17)(64bit)",
                "libc.so.6(GLIBC_2.2.5)(64bit)",
                "rtld(GNU_HASH)"
            ]
        );
        assert!(rpm_requires(&[needs(&["libgcc_s.so.1"], &[])]).is_err());
    }
}
