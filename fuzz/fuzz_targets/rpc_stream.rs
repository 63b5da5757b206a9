//! Bytes a peer sends on a request stream, and the handshake's proof: see `hangar_testkit::fuzzing::rpc_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hangar_testkit::fuzzing::rpc_stream(data);
});
