//! The agent library: everything `wdavdaemon` and `mdatp` do lives here; the binaries in
//! `src/bin/` are thin. See `docs/ARCHITECTURE.md` for the code map and the invariants.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod archive;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod exclusions;
pub mod ipc;
pub mod logging;
pub mod paths;
pub mod quarantine;
pub mod rtp;
pub mod scan;
pub mod store;
pub mod sys;
