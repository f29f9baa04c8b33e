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
];

/// A Debian package and a command that shows it is usable.
#[derive(Clone, Copy)]
pub struct Package {
    pub name: &'static str,
    pub command: &'static str,
}

pub fn run() -> Result<()> {
    ensure(&[BUILD, TEST].concat())?;
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
        .filter(|p| !installed.contains(&p.name) || util::which(p.command).is_none())
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
