//! Fuzzes the definitions parsers (`.hdb`, `.hsb`, `.ndb`, `.yar`) and, when a text parses,
//! the compiled matcher on the same bytes.
//!
//! Input: first byte picks the kind, the rest is the definitions text (UTF-8 or rejected).
//! The matcher then scans the input itself, so that signatures and content overlap.
//!
//! Run: `cargo +nightly fuzz run fuzz_signatures` (from the repository root, with cargo-fuzz).
//! Without cargo-fuzz, the same instrumented build by hand (from `fuzz/`):
//! `RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4
//!  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table
//!  -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions"
//!  cargo +nightly build --release --target x86_64-unknown-linux-gnu`, then run
//! `target/x86_64-unknown-linux-gnu/release/fuzz_signatures -max_len=512 CORPUS_DIR corpus/fuzz_signatures`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let kind = ["hdb", "hsb", "ndb", "yar"][sel as usize % 4];
    let Ok(text) = std::str::from_utf8(rest) else { return };
    match mdatp::engine::parse_definitions_text(kind, text) {
        Ok(defs) => {
            let _ = defs.signature_count();
            let _ = defs.scan_bytes(rest);
            let _ = defs.scan_bytes(b"");
        }
        Err(e) => {
            // The error names a line of the text (or 0).
            assert!(e.line <= text.split('\n').count(), "{e}");
        }
    }
});
