//! `cargo xtask deps`: installs the missing build and test tools, idempotently.
//!
//! Only Debian packages for now (apt-get, as root). A second run costs one `dpkg-query`: nothing
//! is updated or installed when everything is there.

use std::process::Command;

use anyhow::{bail, Result};

use crate::util;

/// What building the release binaries needs: a C compiler and linker (bundled SQLite,
/// libfuzzer-sys) and pkg-config for `-sys` crates.
pub const BUILD: &[Package] = &[
    Package {
        name: "build-essential",
        command: "cc",
    },
    Package {
        name: "pkg-config",
        command: "pkg-config",
    },
];

/// What building the packages needs: dpkg-shlibdeps (cross-check of the derived Depends),
/// rpmbuild, objcopy for each architecture (stripping), the reference policy's development
/// files (SELinux module). dpkg-deb is part of dpkg itself.
pub const PACKAGING: &[Package] = &[
    Package {
        name: "dpkg-dev",
        command: "dpkg-shlibdeps",
    },
    Package {
        name: "rpm",
        command: "rpmbuild",
    },
    Package {
        name: "binutils",
        command: "objcopy",
    },
    Package {
        name: "binutils-aarch64-linux-gnu",
        command: "aarch64-linux-gnu-objcopy",
    },
    Package {
        name: "selinux-policy-dev",
        command: "checkmodule",
    },
];

/// What checking the packages needs (`cargo xtask test`, step `package`).
pub const PACKAGE_TEST: &[Package] = &[
    Package {
        name: "lintian",
        command: "lintian",
    },
    Package {
        name: "rpmlint",
        command: "rpmlint",
    },
    Package {
        name: "shellcheck",
        command: "shellcheck",
    },
    Package {
        name: "systemd",
        command: "systemd-analyze",
    },
    Package {
        name: "cpio",
        command: "cpio",
    },
    Package {
        name: "selinux-policy-default",
        command: "semodule",
    },
];

/// The real peers the tests and benchmarks compare against.
pub const TEST: &[Package] = &[
    Package {
        name: "clamav",
        command: "clamscan",
    },
    Package {
        name: "yara",
        command: "yara",
    },
    // Archives carrying ClamAV's test payload, walked by the archive tests.
    Package {
        name: "clamav-testfiles",
        command: "",
    },
];

/// A Debian package and a command that shows it is usable.
#[derive(Clone, Copy)]
pub struct Package {
    pub name: &'static str,
    /// A command the package puts on `$PATH`; empty for data-only packages.
    pub command: &'static str,
}

pub fn run() -> Result<()> {
    ensure(&[BUILD, PACKAGING, TEST, PACKAGE_TEST].concat())?;
    eprintln!("deps: all build and test tools are installed");
    Ok(())
}

/// Installs whichever of `packages` are missing; fails with the exact command to run when it
/// cannot (not root, no apt).
pub fn ensure(packages: &[Package]) -> Result<()> {
    let absent = missing(packages);
    if absent.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = absent.iter().map(|p| p.name).collect();
    let install = format!(
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {}",
        names.join(" ")
    );
    if util::which("apt-get").is_none() {
        bail!(
            "missing tools: {}; this is not a Debian-like system, install them by hand",
            names.join(", ")
        );
    }
    if !util::is_root() {
        bail!(
            "missing Debian packages: {}; run as root: {install}",
            names.join(" ")
        );
    }
    eprintln!("deps: installing {}", names.join(" "));
    util::run(
        Command::new("apt-get")
            .arg("update")
            .arg("-q")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    util::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&names)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    let still = missing(packages);
    if !still.is_empty() {
        let names: Vec<&str> = still.iter().map(|p| p.name).collect();
        bail!("still missing after apt-get install: {}", names.join(" "));
    }
    Ok(())
}

/// The packages not installed (per dpkg) or whose command is not on `$PATH`.
fn missing(packages: &[Package]) -> Vec<Package> {
    let installed = dpkg_installed(packages);
    packages
        .iter()
        .filter(|p| !installed.contains(&p.name) || (!p.command.is_empty() && util::which(p.command).is_none()))
        .copied()
        .collect()
}

/// One `dpkg-query` for all packages (it exits non-zero when one is unknown, but still prints
/// the others, so its status is not checked).
fn dpkg_installed(packages: &[Package]) -> Vec<&'static str> {
    let Ok(out) = Command::new("dpkg-query")
        .arg("-W")
        .arg("-f=${Package} ${db:Status-Status}\n")
        .args(packages.iter().map(|p| p.name))
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    let out = String::from_utf8_lossy(&out.stdout);
    packages
        .iter()
        .map(|p| p.name)
        .filter(|name| {
            out.lines()
                .any(|l| l.split_once(' ') == Some((name, "installed")))
        })
        .collect()
}
