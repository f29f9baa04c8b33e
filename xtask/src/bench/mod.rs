//! `cargo xtask bench ...`: benchmarks against real peers, one module per benchmark
//! (`scan` now; `rtp` and `netfilter` later).

pub mod scan;
