//! Every fuzz target's committed corpus (`fuzz/corpus/<target>`) and crash
//! reproducers (`fuzz/regressions/<target>`), replayed through the same
//! harnesses (`hangar_testkit::fuzzing`) on the stable toolchain: a short run
//! of each target in every test run, without its instrumented build. A
//! harness panics on a finding; the file is named in the failure.

use std::path::PathBuf;

/// The inputs of `target`: its corpus and its regressions.
fn inputs(target: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        files.extend(entries.map(|e| e.expect("directory entry").path()));
    }
    files.sort();
    files
}

/// Runs `harness` on every input of `target`; returns how many there were.
fn replay(target: &str, harness: impl Fn(&[u8])) -> usize {
    let files = inputs(target);
    for path in &files {
        let bytes = std::fs::read(path).expect("input");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| harness(&bytes)));
        if let Err(panic) = outcome {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("{target}: {}: {why}", path.display());
        }
    }
    files.len()
}

#[test]
fn stored_entries_corpus() {
    let decoded = std::cell::Cell::new(0);
    let n = replay("stored_entries", |d| {
        decoded.set(decoded.get() + hangar_testkit::fuzzing::stored_entries(d));
    });
    assert!(n > 1000, "the corpus is there ({n} inputs)");
    // The format fixtures seeded the corpus: at least those decode.
    assert!(decoded.get() >= 8, "{} of {n} decoded", decoded.get());
}

#[test]
fn admin_json_corpus() {
    let n = replay("admin_json", hangar_testkit::fuzzing::admin_json);
    assert!(n > 500, "the corpus is there ({n} inputs)");
}

#[test]
fn s3_request_corpus() {
    let n = replay("s3_request", hangar_testkit::fuzzing::s3_request);
    assert!(n > 500, "the corpus is there ({n} inputs)");
}

#[test]
fn rpc_stream_corpus() {
    let n = replay("rpc_stream", hangar_testkit::fuzzing::rpc_stream);
    assert!(n > 1000, "the corpus is there ({n} inputs)");
}
