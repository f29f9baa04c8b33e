//! `cargo xtask test`: every test, then a short summary; non-zero exit if anything failed.
//!
//! Steps: install tools (`deps`), `cargo test --workspace` (unit and integration tests; the
//! integration tests start the real daemon), `bench scan --quick` (detections of ours, clamscan
//! and yara must agree with the planted files), and a build of the fuzz crate when `fuzz/` exists.
//! Then `cargo xtask dist` (cross build, incremental) and the `package` checks of its output:
//! lintian, rpmlint, metadata, scripts, unit and the glibc floor (`package::check`).
//! Every step runs even when an earlier one failed. Under `CI=true` a missing real component
//! (clamscan, yara) is a failure; without CI it is reported as "not run", never silently skipped.

use anyhow::{bail, Result};

use crate::{bench, deps, dist, package, util};

enum Outcome {
    Ok,
    Failed(String),
    NotRun(String),
}

pub fn run() -> Result<()> {
    let ci = util::is_ci();
    let mut results: Vec<(&str, Outcome)> = Vec::new();

    let build = deps::ensure(deps::BUILD);
    let peers = deps::ensure(deps::TEST);
    results.push((
        "deps",
        match (build, peers) {
            (Err(e), _) => Outcome::Failed(format!("{e:#}")),
            (Ok(()), Err(e)) if ci => Outcome::Failed(format!("{e:#}")),
            (Ok(()), Err(e)) => Outcome::NotRun(format!(
                "peers not installed ({e:#}); tests that need them say so"
            )),
            (Ok(()), Ok(())) => Outcome::Ok,
        },
    ));

    results.push((
        "cargo test --workspace",
        step(util::run(util::cargo().args(["test", "--workspace"]))),
    ));

    let opts = bench::scan::Options {
        quick: true,
        ..Default::default()
    };
    results.push((
        "bench scan --quick",
        match bench::scan::bench(&opts) {
            Ok(not_run) if not_run.is_empty() => Outcome::Ok,
            Ok(not_run) => Outcome::NotRun(format!("partly: {}", not_run.join("; "))),
            Err(e) => Outcome::Failed(format!("{e:#}")),
        },
    ));

    let fuzz = util::project_root().join("fuzz/Cargo.toml");
    results.push((
        "fuzz crate build",
        if fuzz.is_file() {
            // The fuzz crate is its own workspace. Seeding its lock file from the main one keeps
            // the same dependency versions, so with the shared target dir it reuses what
            // `cargo test` just built instead of resolving (and compiling) newer ones.
            let lock = fuzz.with_file_name("Cargo.lock");
            if !lock.exists() {
                if let Err(e) = std::fs::copy(util::project_root().join("Cargo.lock"), &lock) {
                    eprintln!("test: cannot seed {}: {e}", lock.display());
                }
            }
            step(util::run(
                util::cargo()
                    .arg("build")
                    .arg("--manifest-path")
                    .arg(&fuzz)
                    .arg("--target-dir")
                    .arg(util::target_dir()),
            ))
        } else {
            Outcome::NotRun("no fuzz/ crate yet".into())
        },
    ));

    let pkg_tools = deps::ensure(deps::PACKAGE_TEST);
    let dist = dist::run();
    let dist_ok = dist.is_ok();
    results.push(("cargo xtask dist", step(dist)));
    results.push((
        "package",
        match pkg_tools {
            Err(e) => Outcome::Failed(format!("package check tools: {e:#}")),
            Ok(()) if !dist_ok => Outcome::NotRun("dist failed".into()),
            Ok(()) => step(package::check::run()),
        },
    ));
    results.push((
        "reproducible packages",
        if dist_ok {
            step(package::check::reproducible())
        } else {
            Outcome::NotRun("dist failed".into())
        },
    ));

    eprintln!(
        "\n== cargo xtask test: summary{} ==",
        if ci { " (CI=true)" } else { "" }
    );
    let mut failed = 0;
    for (name, outcome) in &results {
        match outcome {
            Outcome::Ok => eprintln!("  ok       {name}"),
            Outcome::NotRun(why) => eprintln!("  NOT RUN  {name}: {why}"),
            Outcome::Failed(why) => {
                failed += 1;
                eprintln!("  FAILED   {name}: {}", why.replace('\n', "\n           "));
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} test steps failed", results.len());
    }
    Ok(())
}

fn step(r: Result<()>) -> Outcome {
    match r {
        Ok(()) => Outcome::Ok,
        Err(e) => Outcome::Failed(format!("{e:#}")),
    }
}
