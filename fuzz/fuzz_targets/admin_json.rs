//! The admin API's request and JSON body parsing: see `hangar_testkit::fuzzing::admin_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hangar_testkit::fuzzing::admin_json(data);
});
