//! Any bytes as an image: see `checks::decode_any`. Half the mutations are
//! libFuzzer's, half `mutate::mutate` (the smoke test's), which knows
//! where entry sizes and integer fields are.
#![no_main]

#[path = "../checks.rs"]
#[allow(dead_code)] // each target runs one of the checks
mod checks;
#[path = "../mutate.rs"]
#[macro_use]
mod mutate;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::decode_any(data));

half_structured_mutator!();
