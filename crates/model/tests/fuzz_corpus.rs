//! The corpus of the fuzz target `stored_entries` (fuzz/corpus/stored_entries),
//! replayed on the stable toolchain: every input that decodes as a stored type
//! must survive a round trip, and none may panic. A short run of the fuzz
//! target's findings in every test run, without its instrumented build.

use hangar_cluster::LayoutHistory;
use hangar_model::schema::access_key::AccessKey;
use hangar_model::schema::block_ref::BlockRef;
use hangar_model::schema::block_row::BlockRow;
use hangar_model::schema::bucket::{Bucket, BucketAlias};
use hangar_model::schema::object::Object;
use hangar_model::schema::part::Part;
use hangar_util::encoding::round_trips;

#[test]
fn the_stored_entries_corpus_decodes_and_round_trips() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/corpus/stored_entries"
    );
    let mut inputs = 0;
    let mut decoded = 0;
    for entry in std::fs::read_dir(dir).expect("the corpus") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("input");
        inputs += 1;
        for result in [
            round_trips::<Object>(&bytes),
            round_trips::<AccessKey>(&bytes),
            round_trips::<BlockRow>(&bytes),
            round_trips::<Bucket>(&bytes),
            round_trips::<BucketAlias>(&bytes),
            round_trips::<BlockRef>(&bytes),
            round_trips::<Part>(&bytes),
            round_trips::<LayoutHistory>(&bytes),
        ] {
            match result {
                Ok(true) => decoded += 1,
                Ok(false) => {}
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
    }
    assert!(inputs > 100, "{inputs} inputs in {dir}");
    // The fixtures seed the corpus: at least those decode.
    assert!(
        decoded >= 8,
        "{decoded} of {inputs} inputs decoded as some type"
    );
}
