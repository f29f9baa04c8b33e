//! `.rpm`: rpmbuild (Debian's `rpm` package) with `rpm/mdatp.spec` over a staged tree.
//!
//! Not cargo-generate-rpm: since 0.15 it writes RPMv4-only packages with a zstd payload by
//! default that rpm 4.11 (EL7, Amazon Linux 2) and SLES 12 cannot read, has no scriptlet
//! helpers, and its auto-requires run `ldd`, which cannot read an aarch64 binary here.
//! rpmbuild with `--target` packs prebuilt binaries for any architecture, with the xz payload
//! and SHA-256 file digests the spec sets (docs/packaging.md).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use super::{install_file, Format, Inputs};
use crate::{cross::Target, glibc, util};

/// Builds `target/dist/mdatp-VERSION-1.ARCH.rpm` for `t` and returns its path.
pub fn build(
    t: &Target,
    inputs: &Inputs,
    selinux_pp: &Path,
    work: &Path,
    out_dir: &Path,
) -> Result<PathBuf> {
    let base = work.join(format!("rpm-{}", t.rpm));
    let root = base.join("root");
    super::stage_common(&root, t, inputs, Format::Rpm)?;
    let src = util::project_root();
    install_file(
        &src.join("init/systemd/mdatp.service"),
        &root.join("usr/lib/systemd/system/mdatp.service"),
        0o644,
    )?;
    install_file(
        selinux_pp,
        &root.join("opt/microsoft/mdatp/conf/selinux/mdatp.pp"),
        0o644,
    )?;
    for lic in ["LICENSE-APACHE", "LICENSE-MIT"] {
        install_file(
            &src.join(lic),
            &root.join("usr/share/licenses/mdatp").join(lic),
            0o644,
        )?;
    }
    let needs: Vec<glibc::Needs> = super::elf_files(&root)?
        .iter()
        .map(|p| glibc::read(p))
        .collect::<Result<_>>()?;
    let requires = super::rpm_requires(&needs)?;
    cross_check_elfdeps(&root, &requires)?;
    super::clamp_mtimes(&root, &inputs.epoch)?;

    let top = base.join("top");
    if top.exists() {
        fs::remove_dir_all(&top)?;
    }
    fs::create_dir_all(&top)?;
    let define = |k: &str, v: &str| ["--define".to_owned(), format!("{k} {v}")];
    let mut cmd = Command::new("rpmbuild");
    cmd.arg("-bb")
        .arg("--quiet")
        .arg("--target")
        .arg(format!("{}-linux", t.rpm));
    for (k, v) in [
        ("_topdir", top.display().to_string()),
        ("mdatp_version", inputs.version.clone()),
        ("mdatp_stage", root.display().to_string()),
        ("mdatp_requires", requires.join(", ")),
        ("mdatp_date", changelog_date(&inputs.epoch)?),
        ("with_selinux", "1".to_owned()),
        ("mdatp_packager", super::deb::maintainer()),
    ] {
        cmd.args(define(k, &v));
    }
    cmd.arg(src.join("rpm/mdatp.spec"))
        .env("SOURCE_DATE_EPOCH", &inputs.epoch);
    util::run(&mut cmd)?;
    let name = format!("mdatp-{}-1.{}.rpm", inputs.version, t.rpm);
    let built = top.join("RPMS").join(t.rpm).join(&name);
    if !built.is_file() {
        bail!("rpmbuild did not write {}", built.display());
    }
    let out = out_dir.join(&name);
    fs::copy(&built, &out).with_context(|| out.display().to_string())?;
    Ok(out)
}

/// rpm's own dependency generator (`elfdeps`, which reads ELF files itself and so works for a
/// foreign architecture) must find exactly what we computed.
fn cross_check_elfdeps(root: &Path, ours: &[String]) -> Result<()> {
    let elfdeps = Path::new("/usr/lib/rpm/elfdeps");
    if !elfdeps.is_file() {
        eprintln!("rpm: /usr/lib/rpm/elfdeps not found: requires not cross-checked");
        return Ok(());
    }
    let files: String = super::elf_files(root)?
        .iter()
        .map(|p| format!("{}\n", p.display()))
        .collect();
    let mut child = Command::new(elfdeps)
        .arg("--requires")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot run elfdeps")?;
    use std::io::Write;
    child.stdin.take().unwrap().write_all(files.as_bytes())?;
    let out = child.wait_with_output()?;
    let mut theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    theirs.sort();
    theirs.dedup();
    if theirs != ours {
        bail!(
            "rpm's elfdeps says the binaries require\n  {}\nbut we computed\n  {}",
            theirs.join("\n  "),
            ours.join("\n  ")
        );
    }
    Ok(())
}

/// `Thu Dec 03 2026`: the %changelog date of the build's SOURCE_DATE_EPOCH.
fn changelog_date(epoch: &str) -> Result<String> {
    Ok(util::output(
        Command::new("date")
            .args(["-u", "+%a %b %d %Y", "-d"])
            .arg(format!("@{epoch}")),
    )?
    .trim()
    .to_owned())
}
