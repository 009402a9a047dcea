//! gregor's fuzz targets. Their code is in `targets` (also replayed by `tests/fuzz_replay.rs` in
//! the main crate's test suite); `fuzz_targets/` hands libFuzzer's inputs to it.

pub mod targets;
