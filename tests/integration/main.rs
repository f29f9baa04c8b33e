//! Integration tests: the real `wdavdaemon` below a temporary `MDATP_ROOT`, driven only
//! through the real `mdatp` binary. One test binary for every area (ripgrep's layout);
//! `util.rs` holds the harness ([`util::TestDaemon`]) and small archive builders.
//!
//! Run: `cargo test --test integration` (or `cargo xtask test`). They are meant to run as
//! root, as CI does: `permissions` fails under `CI=true` without root and prints a skip line
//! otherwise; ownership checks of restored files only run as root. `permissions` creates the
//! system group `mdatp` when it is missing.
//!
//! A failing test here is either a regression or a known bug listed in `BUGS.md` (each entry
//! names its test). Tests are never `#[ignore]`d: a test for a bug fails until the bug is
//! fixed.
//!
//! Areas: `health` (fields, `--field`, `[managed]`, version, no daemon), `scan` (detections,
//! output, modes, history, cancel, hostile input, signatures), `archives` (formats, nesting,
//! bombs), `definitions` (directories, live reload, update/restore, PUA policy), `quarantine`
//! (restore forms, refusals, removal, obfuscation, allowed threats), `crash` (kill -9 during
//! quarantine and restore), `config` (managed > local > defaults, invalid files, live changes),
//! `exclusions` (kinds, every wildcard rule, scopes, managed ones), `permissions` (root,
//! group `mdatp`, others, hostile clients), `logging` (log file, level).

mod util;

mod archives;
mod config;
mod crash;
mod definitions;
mod exclusions;
mod health;
mod logging;
mod permissions;
mod quarantine;
mod scan;
