#![no_main]
//! See `gregor_fuzz::targets::dispatch`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gregor_fuzz::targets::dispatch::run(data));
