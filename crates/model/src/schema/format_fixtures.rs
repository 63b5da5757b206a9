//! The stored formats of the model's tables, pinned by the fixtures of
//! `testdata/formats/` (see [`hangar_util::fixtures`]): for each type, a sample
//! with every field filled must encode to the fixture of its current format
//! version and decode back, and the fixtures of every version must decode.

use hangar_util::crdt::{Lww, LwwMap};
use hangar_util::encoding::Versioned;
use hangar_util::fixtures::Fixtures;
use hangar_util::{Hash, Uuid};

use super::access_key::{AccessKey, Permission};
use super::block_ref::BlockRef;
use super::block_row::{BlockRow, DataOwner};
use super::bucket::{Bucket, BucketAlias};
use super::object::{Object, ObjectData, ObjectMeta, ObjectVersion, PartRef, VersionState};
use super::part::Part;
use crate::checksum::{Checksum, ChecksumAlgorithm};

fn assert_pinned<T: Versioned + PartialEq + std::fmt::Debug>(sample: &T) {
    Fixtures::in_workspace(env!("CARGO_MANIFEST_DIR"))
        .check_stored(sample)
        .unwrap_or_else(|e| panic!("{e}"));
}

fn checksum(algorithm: ChecksumAlgorithm, value: &str) -> Option<Checksum> {
    Some(Checksum {
        algorithm,
        value: value.into(),
    })
}

fn meta(etag: &str, checksum: Option<Checksum>) -> ObjectMeta {
    ObjectMeta {
        size: 11,
        etag: etag.into(),
        headers: vec![
            ("content-type".into(), "text/plain".into()),
            ("x-amz-meta-colour".into(), "blue".into()),
        ],
        checksum,
    }
}

/// Every version state, and every kind of complete data; between them, the
/// checksums use every algorithm.
#[test]
fn object_format_is_pinned() {
    let version = |n: u8, state| ObjectVersion {
        uuid: Uuid([n; 16]),
        timestamp: 1_000 + u64::from(n),
        state,
        multipart: n % 2 == 1,
    };
    let parts = vec![
        PartRef {
            part_number: 1,
            data_id: Uuid([0x41; 16]),
            size: 5 << 20,
            checksum: checksum(ChecksumAlgorithm::Crc32, "AAAAAA=="),
        },
        PartRef {
            part_number: 2,
            data_id: Uuid([0x42; 16]),
            size: 5 << 20,
            checksum: checksum(ChecksumAlgorithm::Crc32c, "BBBBBB=="),
        },
        PartRef {
            part_number: 3,
            data_id: Uuid([0x43; 16]),
            size: 1,
            checksum: checksum(ChecksumAlgorithm::Sha1, "CCCCCCCCCCCCCCCCCCCCCCCCCCC="),
        },
    ];
    assert_pinned(&Object {
        bucket_id: Uuid([0x0b; 16]),
        key: "photos/2026/cat.jpg".into(),
        versions: vec![
            version(1, VersionState::Aborted),
            version(
                2,
                VersionState::Complete(ObjectData::Inline {
                    meta: meta(
                        "5eb63bbbe01eeed093cb22bb8f5acdc3",
                        checksum(
                            ChecksumAlgorithm::Sha256,
                            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=",
                        ),
                    ),
                    bytes: b"hello world".to_vec(),
                }),
            ),
            version(
                3,
                VersionState::Complete(ObjectData::Parts {
                    meta: meta(
                        "0123456789abcdef0123456789abcdef-3",
                        checksum(ChecksumAlgorithm::Crc64Nvme, "DDDDDDDDDDD=-3"),
                    ),
                    parts,
                }),
            ),
            version(4, VersionState::Complete(ObjectData::DeleteMarker)),
            version(
                5,
                VersionState::Uploading {
                    multipart: true,
                    headers: vec![("content-type".into(), "image/jpeg".into())],
                },
            ),
        ],
    });
}

#[test]
fn access_key_format_is_pinned() {
    let mut permissions = LwwMap::default();
    permissions.set(10, Uuid([0x0b; 16]), Permission::ALL);
    permissions.set(
        11,
        Uuid([0x0c; 16]),
        Permission {
            read: true,
            write: false,
            owner: false,
        },
    );
    let mut local_aliases = LwwMap::default();
    local_aliases.set(12, "mine".to_string(), Some(Uuid([0x0b; 16])));
    local_aliases.set(13, "freed".to_string(), None);
    assert_pinned(&AccessKey {
        id: "HK0123456789abcdef0123456".into(),
        secret: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        name: Lww::new(5, "backup key".into()),
        deleted: Lww::new(6, false),
        allow_create_bucket: Lww::new(7, true),
        permissions,
        local_aliases,
    });
}

#[test]
fn block_row_format_is_pinned() {
    assert_pinned(&BlockRow {
        data_id: Uuid([0xd1; 16]),
        offset: 3 << 20,
        hash: Hash([0xb1; 32]),
        size: 1 << 20,
        deleted: true,
        owner: Some(DataOwner {
            bucket_id: Uuid([0x0b; 16]),
            key: "photos/2026/cat.jpg".into(),
            version: Uuid([0x05; 16]),
            part_number: Some(2),
            written_at: 1_700_000_000_000,
            timestamp: Some(1_005),
        }),
    });
}

#[test]
fn bucket_format_is_pinned() {
    assert_pinned(&Bucket {
        id: Uuid([0x0b; 16]),
        created_msec: 1_700_000_000_000,
        deleted: Lww::new(20, true),
    });
}

#[test]
fn bucket_alias_format_is_pinned() {
    assert_pinned(&BucketAlias {
        name: "photos".into(),
        bucket: Lww::new(21, Some(Uuid([0x0b; 16]))),
    });
}

#[test]
fn block_ref_format_is_pinned() {
    assert_pinned(&BlockRef {
        hash: Hash([0xb1; 32]),
        data_id: Uuid([0xd1; 16]),
        offset: 3 << 20,
        deleted: true,
    });
}

#[test]
fn part_format_is_pinned() {
    assert_pinned(&Part {
        upload_id: Uuid([0x05; 16]),
        part_number: 2,
        timestamp: 1_010,
        data_id: Uuid([0x42; 16]),
        size: 5 << 20,
        etag: "0123456789abcdef0123456789abcdef".into(),
        checksum: checksum(ChecksumAlgorithm::Crc32c, "BBBBBB=="),
    });
}
