#![no_main]
//! See `gregor_fuzz::targets::decode`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gregor_fuzz::targets::decode::run(data));
