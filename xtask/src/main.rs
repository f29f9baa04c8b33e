//! `cargo xtask`: the build system. One module per task; `main` only parses arguments.
//!
//! See `cargo xtask help`. Every task installs the tools it needs first (`deps`), so the two
//! commands of the README work on a new Debian/Ubuntu machine.

mod bench;
mod cross;
mod deps;
mod dist;
mod glibc;
mod package;
mod test;
mod util;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
cargo xtask <task> [flags]

Tasks:
  deps                       install missing build and test tools (Debian packages via apt-get)
  dist                       cross-build release binaries (x86_64, aarch64; glibc >= 2.17), completions,
                             man page and the .deb/.rpm packages into target/dist/
      --no-build             package the binaries the last build left in target/<triple>/release
  test                       run every test: cargo test --workspace, bench scan --quick, fuzz build,
                             package checks (lintian, rpmlint, metadata, glibc floor, SELinux module,
                             .deb lifecycle in a Debian 12 chroot, reproducibility)
  check-packages             only the package checks of `test`, on what `dist` last built
  bench scan [flags]         compare our scanner with clamscan and yara on a generated corpus
      --quick                small corpus and signature set (~2,000 files, ~50 MB); a correctness check
      --seed N               seed of the corpus and signature generator (default 1)
      --tools LIST           comma-separated subset of clamscan,yara,ours (default: all three)
  help                       print this text
";

fn main() {
    if let Err(err) = try_main() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn try_main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["deps"] => deps::run(),
        ["dist"] => dist::run(),
        ["test"] => test::run(),
        ["check-packages"] => package::check::run().and(package::check::reproducible()),
        ["dist", "--no-build"] => dist::assemble(),
        ["bench", "scan", rest @ ..] => bench::scan::run(&parse_bench_scan(rest)?),
        ["bench", ..] => bail!("unknown benchmark; available: `bench scan`\n\n{USAGE}"),
        [] | ["help" | "--help" | "-h"] => {
            print!("{USAGE}");
            Ok(())
        }
        _ => bail!("unknown task or flag: `{}`\n\n{USAGE}", args.join(" ")),
    }
}

fn parse_bench_scan(mut rest: &[&str]) -> Result<bench::scan::Options> {
    let mut opts = bench::scan::Options::default();
    while let Some((flag, tail)) = rest.split_first() {
        rest = tail;
        let mut value = || -> Result<&str> {
            let (v, tail) = rest
                .split_first()
                .with_context(|| format!("{flag} needs a value"))?;
            rest = tail;
            Ok(v)
        };
        match *flag {
            "--quick" => opts.quick = true,
            "--seed" => opts.seed = value()?.parse().context("--seed takes an integer")?,
            "--tools" => opts.tools = bench::scan::Tools::parse(value()?)?,
            _ => bail!("unknown flag for `bench scan`: `{flag}`\n\n{USAGE}"),
        }
    }
    Ok(opts)
}
