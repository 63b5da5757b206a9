//! Whole S3 requests through the S3 endpoint: see `hangar_testkit::fuzzing::s3_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hangar_testkit::fuzzing::s3_request(data);
});
