//! The SELinux module (`selinux/mdatp.{te,fc,if}`): built with the reference policy's
//! development Makefile (Debian's `selinux-policy-dev`) into `mdatp.pp`, shipped in the RPM and
//! installed by its `%post` when SELinux is enabled. The test links it into a copy of a real
//! policy store (Debian's `selinux-policy-default`) with `semodule -n -i`, which resolves every
//! type, attribute and interface it uses, without touching the build machine's own store.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::util;

const MAKEFILE: &str = "/usr/share/selinux/devel/Makefile";

/// Builds `mdatp.pp` in `work/selinux/` and returns its path.
pub fn build(work: &Path) -> Result<PathBuf> {
    if !Path::new(MAKEFILE).is_file() {
        bail!("{MAKEFILE} is missing: install selinux-policy-dev");
    }
    let dir = work.join("selinux");
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    for ext in ["te", "fc", "if"] {
        let from = util::project_root()
            .join("selinux")
            .join(format!("mdatp.{ext}"));
        fs::copy(&from, dir.join(format!("mdatp.{ext}")))
            .with_context(|| from.display().to_string())?;
    }
    util::output(
        Command::new("make")
            .arg("-f")
            .arg(MAKEFILE)
            .arg("mdatp.pp")
            .current_dir(&dir),
    )
    .context("building the SELinux module")?;
    Ok(dir.join("mdatp.pp"))
}

/// Links `pp` into a copy of the `default` policy store of this machine
/// (`semodule -p COPY -n -i`) and checks that it is listed afterwards.
pub fn link_test(pp: &Path, work: &Path) -> Result<()> {
    let store = Path::new("/var/lib/selinux/default");
    if !store.is_dir() {
        bail!(
            "no policy store at {}: install selinux-policy-default",
            store.display()
        );
    }
    let root = work.join("selinux-root");
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    fs::create_dir_all(root.join("var/lib/selinux"))?;
    fs::create_dir_all(root.join("etc/selinux"))?;
    util::output(
        Command::new("cp")
            .arg("-a")
            .arg(store)
            .arg(root.join("var/lib/selinux/")),
    )?;
    util::output(
        Command::new("cp")
            .arg("-a")
            .args(["/etc/selinux/default", "/etc/selinux/config"])
            .arg(root.join("etc/selinux/")),
    )?;
    util::output(
        Command::new("semodule")
            .arg("-p")
            .arg(&root)
            .args(["-s", "default", "-n", "-i"])
            .arg(pp),
    )
    .context("semodule -n -i (linking the module into a copy of selinux-policy-default)")?;
    let list = util::output(
        Command::new("semodule")
            .arg("-p")
            .arg(&root)
            .args(["-s", "default", "-l"]),
    )?;
    if !list
        .lines()
        .any(|l| l.split_whitespace().next() == Some("mdatp"))
    {
        bail!("mdatp is not listed by semodule -l after installing it");
    }
    fs::remove_dir_all(&root)?;
    Ok(())
}
