#![no_main]
//! See `gregor_fuzz::targets::batch`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gregor_fuzz::targets::batch::run(data));
