//! Cross-compilation of the release binaries for every packaged architecture, against glibc
//! 2.17 symbol versions, with cargo-zigbuild (zig as the C compiler and linker).
//!
//! `cargo zigbuild --target x86_64-unknown-linux-gnu.2.17` links against zig's glibc 2.17
//! stubs, so the binaries run on every glibc >= 2.17 (EL7 onwards); the bundled SQLite C code
//! is compiled by `zig cc` for the same target. Outputs land in
//! `target/<triple>/release/` (cargo-zigbuild drops the `.2.17` suffix), so a second run is
//! incremental like any cargo build. The tools are installed only when missing: zig from PyPI
//! (`ziglang`, found by cargo-zigbuild as `python3 -m ziglang`), cargo-zigbuild from crates.io,
//! the Rust targets with rustup.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};

use crate::{dist::BINARIES, glibc, util};

/// One packaged architecture and its names in each world.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// Rust target triple (and cargo's output directory).
    pub triple: &'static str,
    /// Debian architecture.
    pub deb: &'static str,
    /// RPM architecture.
    pub rpm: &'static str,
    pub machine: glibc::Machine,
    /// binutils' objcopy for this architecture (Debian: binutils, binutils-aarch64-linux-gnu).
    pub objcopy: &'static str,
}

pub const TARGETS: &[Target] = &[
    Target {
        triple: "x86_64-unknown-linux-gnu",
        deb: "amd64",
        rpm: "x86_64",
        machine: glibc::Machine::X86_64,
        objcopy: "objcopy",
    },
    Target {
        triple: "aarch64-unknown-linux-gnu",
        deb: "arm64",
        rpm: "aarch64",
        machine: glibc::Machine::Aarch64,
        objcopy: "aarch64-linux-gnu-objcopy",
    },
];

impl Target {
    /// The cargo-zigbuild target: the triple with the glibc version to link against.
    pub fn zig_target(&self) -> String {
        format!("{}.{}", self.triple, glibc::FLOOR)
    }

    /// Where cargo puts this target's release binaries.
    pub fn release_dir(&self) -> PathBuf {
        util::target_dir().join(self.triple).join("release")
    }

    pub fn binary(&self, name: &str) -> PathBuf {
        self.release_dir().join(name)
    }
}

/// Installs what is missing: the rustup targets, zig, cargo-zigbuild. A second run only looks.
pub fn ensure_tools() -> Result<()> {
    if util::which("rustup").is_some() {
        let installed =
            util::output(Command::new("rustup").args(["target", "list", "--installed"]))?;
        let missing: Vec<&str> = TARGETS
            .iter()
            .map(|t| t.triple)
            .filter(|t| !installed.lines().any(|l| l.trim() == *t))
            .collect();
        if !missing.is_empty() {
            util::run(
                Command::new("rustup")
                    .args(["target", "add"])
                    .args(&missing),
            )?;
        }
    } else {
        eprintln!(
            "cross: no rustup; assuming the standard libraries of {} are installed",
            triples()
        );
    }
    if !zig_available() {
        let python = python()
            .context("zig is missing and there is no python3 to install it from PyPI (ziglang)")?;
        util::run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "ziglang"]))?;
        if !zig_available() {
            bail!("`pip install ziglang` ran but `{python} -m ziglang version` still fails");
        }
    }
    if util::which("cargo-zigbuild").is_none() && !cargo_bin("cargo-zigbuild").is_file() {
        util::run(util::cargo().args(["install", "--locked", "cargo-zigbuild"]))?;
    }
    Ok(())
}

/// `cargo zigbuild --release` of both binaries for every target, in one cargo invocation (one
/// dependency graph, one lock). Returns nothing: the outputs are at [`Target::binary`].
pub fn build() -> Result<()> {
    ensure_tools()?;
    let mut cmd = util::cargo();
    cmd.args(["zigbuild", "--release", "--package", "mdatp"]);
    for bin in BINARIES {
        cmd.args(["--bin", bin]);
    }
    for t in TARGETS {
        cmd.arg("--target").arg(t.zig_target());
    }
    // cargo-zigbuild is found next to cargo (or on PATH) as a cargo subcommand.
    let mut path =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect::<Vec<_>>();
    path.push(cargo_bin(""));
    cmd.env("PATH", std::env::join_paths(path)?);
    util::run(&mut cmd)?;
    for t in TARGETS {
        for bin in BINARIES {
            let p = t.binary(bin);
            let needs = glibc::read(&p)?;
            if needs.machine != t.machine {
                bail!(
                    "{} is built for {:?}, expected {:?}",
                    p.display(),
                    needs.machine,
                    t.machine
                );
            }
        }
    }
    Ok(())
}

fn triples() -> String {
    TARGETS
        .iter()
        .map(|t| t.triple)
        .collect::<Vec<_>>()
        .join(", ")
}

fn python() -> Option<String> {
    ["python3", "python"]
        .into_iter()
        .find(|p| util::which(p).is_some())
        .map(str::to_owned)
}

/// zig on PATH, or the PyPI `ziglang` module (what cargo-zigbuild falls back to).
fn zig_available() -> bool {
    let ok = |cmd: &mut Command| {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if std::env::var_os("ZIG").is_some() || util::which("zig").is_some() {
        return true;
    }
    python().is_some_and(|py| ok(Command::new(py).args(["-m", "ziglang", "version"])))
}

/// `$CARGO_HOME/bin/NAME` (default `~/.cargo/bin`), where `cargo install` puts binaries.
fn cargo_bin(name: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        });
    home.join("bin").join(name)
}
