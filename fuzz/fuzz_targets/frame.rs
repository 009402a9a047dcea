#![no_main]
//! See `gregor_fuzz::targets::frame`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gregor_fuzz::targets::frame::run(data));
