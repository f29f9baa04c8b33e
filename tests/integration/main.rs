//! Integration tests: the real `wdavdaemon` below a temporary `MDATP_ROOT`, driven only
//! through the real `mdatp` binary. One test binary for every area (see `util.rs`).
//!
//! Run with `cargo test --test integration`. Most tests need root (the daemon's permission
//! checks, ownership of restored files); `permissions` says so when it cannot run.

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
