//! Any bytes as an image: see `checks::decode_any`. Half the mutations are
//! libFuzzer's, half `mutate::mutate` (the smoke test's), which knows
//! where entry sizes and integer fields are.
#![no_main]

#[path = "../checks.rs"]
#[allow(dead_code)] // each target runs one of the checks
mod checks;
#[path = "../mutate.rs"]
mod mutate;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::decode_any(data));

libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    if seed % 2 == 0 {
        return libfuzzer_sys::fuzzer_mutate(data, size, max_size);
    }
    let mut rng = mutate::Rng(u64::from(seed));
    let m = mutate::mutate(&mut rng, &data[..size], &[]);
    let n = m.len().min(max_size);
    data[..n].copy_from_slice(&m[..n]);
    n
});
