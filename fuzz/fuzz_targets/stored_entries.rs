//! Arbitrary bytes decoded as every stored type: see `hangar_testkit::fuzzing::stored_entries`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hangar_testkit::fuzzing::stored_entries(data);
});
