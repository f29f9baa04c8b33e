//! Fuzzes the archive walker (`mdatp::archive::walk`) with arbitrary bytes.
//!
//! Run: `cargo +nightly fuzz run fuzz_archive` (from the repository root). Seeds: any archives
//! (zip, tar, gz, bz2, xz, 7z, cpio) put in `fuzz/corpus/fuzz_archive/`.
//!
//! Checked beyond "no panic, no hang, no runaway allocation": every path handed to the visitor
//! is printable on one line, and the walk never unpacks more than its total-bytes limit.

#![no_main]

use std::ops::ControlFlow;

use libfuzzer_sys::fuzz_target;
use mdatp::archive::{walk, Limits};

fuzz_target!(|data: &[u8]| {
    // Small limits keep each run fast; the code paths are the same as with the defaults.
    let limits = Limits { max_depth: 4, max_total_bytes: 16 << 20, max_ratio: 250, max_entries: 1000 };
    let mut visited = 0u64;
    let res = walk(data, "fuzz", &limits, &mut |path, content| {
        assert!(!path.chars().any(char::is_control), "unprintable path {path:?}");
        assert!(path.starts_with("fuzz/"), "{path:?}");
        visited += 1;
        let _ = content.len();
        ControlFlow::Continue(())
    });
    if let Ok(stats) = res {
        assert!(stats.unpacked_bytes <= limits.max_total_bytes, "{stats:?}");
        assert!(stats.entries <= limits.max_entries, "{stats:?}");
        assert_eq!(stats.visited, visited);
    }
});
