//! Format fixtures: committed encodings of canonical sample values, which tests
//! compare byte for byte with what the current build writes, so that a change
//! of a stored or wire format cannot slip in without a version bump.
//!
//! Fixtures live in `testdata/formats/` at the workspace root
//! ([`Fixtures::in_workspace`]), one file per pinned encoding:
//!
//! - `<Type>.v<FORMAT_VERSION>.bin`: a stored type ([`Versioned`]) at a format
//!   version. Fixtures of older versions stay: every one must still decode,
//!   since data written by older builds stays on disk.
//! - `<Name>.p<NODE_PROTOCOL>.bin`: a message between nodes (or a frame header)
//!   at a node protocol version. Nodes refuse peers of another protocol, so
//!   only the current protocol's fixtures are checked.
//!
//! A missing fixture fails its test, unless the environment variable
//! `HANGAR_BLESS=1` is set: then the sample's encoding is written as the
//! fixture. An existing fixture is never rewritten.
//!
//! ```
//! use hangar_util::fixtures::{Fixtures, Pinned};
//! let dir = tempfile::tempdir().unwrap();
//! let pinned = Pinned::Wire { name: "Example", protocol: 2 };
//! // Missing, not blessed: refused.
//! assert!(Fixtures::new(dir.path(), false).check(&pinned, b"\x91\x01").is_err());
//! // Blessed: written; then the same encoding passes and another fails.
//! Fixtures::new(dir.path(), true).check(&pinned, b"\x91\x01").unwrap();
//! let fixtures = Fixtures::new(dir.path(), false);
//! assert_eq!(fixtures.check(&pinned, b"\x91\x01").unwrap(), b"\x91\x01");
//! assert!(fixtures.check(&pinned, b"\x91\x02").unwrap_err().contains("NODE_PROTOCOL"));
//! ```

use std::fmt::{Debug, Display};
use std::path::{Path, PathBuf};

use crate::encoding::Versioned;

/// The environment variable that, set to `1`, lets tests write missing fixtures.
pub const BLESS_VAR: &str = "HANGAR_BLESS";

/// Where the fixtures are, relative to the workspace root.
const FORMATS_DIR: &str = "testdata/formats";

/// What a fixture pins: it names the fixture's file and says what a change of
/// the encoding requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pinned<'a> {
    /// A stored type ([`Versioned::TYPE_NAME`]) at a format version.
    Stored {
        /// The type's name.
        type_name: &'a str,
        /// Its format version.
        format_version: u8,
    },
    /// A message between nodes, or part of one, at a node protocol version.
    Wire {
        /// The message's name.
        name: &'a str,
        /// The node protocol version.
        protocol: u8,
    },
}

impl Pinned<'_> {
    /// The fixture's file name: `<Type>.v<N>.bin` or `<Name>.p<N>.bin`.
    pub fn file_name(&self) -> String {
        match self {
            Pinned::Stored {
                type_name,
                format_version,
            } => format!("{type_name}.v{format_version}.bin"),
            Pinned::Wire { name, protocol } => format!("{name}.p{protocol}.bin"),
        }
    }

    /// Why a changed encoding matters, and what to do about it.
    fn how_to_change(&self) -> String {
        match *self {
            Pinned::Stored {
                type_name,
                format_version,
            } => {
                let next = u32::from(format_version) + 1;
                format!(
                    "The stored format of {type_name} changed without a format version bump: \
                     values already on disk would be misread. Bump {type_name}::FORMAT_VERSION \
                     to {next}, make {type_name}::decode_older read format version \
                     {format_version} (keep {type_name}.v{format_version}.bin: the test checks \
                     that it still decodes), then run the test with {BLESS_VAR}=1 to write \
                     {type_name}.v{next}.bin."
                )
            }
            Pinned::Wire { name, protocol } => {
                let next = u32::from(protocol) + 1;
                format!(
                    "The wire format of {name} changed without a node protocol bump: nodes of \
                     the previous build would misread it instead of refusing the peer. Bump \
                     NODE_PROTOCOL (crates/net/src/handshake.rs) to {next}, then run the tests \
                     with {BLESS_VAR}=1 to write the .p{next}.bin fixtures (the .p{protocol}.bin \
                     ones are no longer checked)."
                )
            }
        }
    }
}

/// A directory of fixtures, and whether missing ones may be written.
#[derive(Clone, Debug)]
pub struct Fixtures {
    dir: PathBuf,
    bless: bool,
}

impl Fixtures {
    /// The fixtures of the workspace holding the crate at `manifest_dir`
    /// (pass `env!("CARGO_MANIFEST_DIR")`): `testdata/formats/` in the first
    /// ancestor holding a `Cargo.lock`. Missing fixtures are written if
    /// `HANGAR_BLESS=1`.
    pub fn in_workspace(manifest_dir: &str) -> Self {
        let crate_dir = Path::new(manifest_dir);
        let root = crate_dir
            .ancestors()
            .find(|dir| dir.join("Cargo.lock").is_file())
            .map_or_else(|| crate_dir.join("../.."), Path::to_path_buf);
        let bless = std::env::var_os(BLESS_VAR).is_some_and(|v| v == "1");
        Fixtures::new(root.join(FORMATS_DIR), bless)
    }

    /// The fixtures in `dir`; missing ones are written if `bless`.
    pub fn new(dir: impl Into<PathBuf>, bless: bool) -> Self {
        Fixtures {
            dir: dir.into(),
            bless,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Compares `encoded` with the fixture of `pinned`, byte for byte, and
    /// returns the fixture. A missing fixture is an error, unless blessing:
    /// then `encoded` is written as the fixture.
    pub fn check(&self, pinned: &Pinned<'_>, encoded: &[u8]) -> Result<Vec<u8>, String> {
        let path = self.dir.join(pinned.file_name());
        match std::fs::read(&path) {
            Ok(fixture) if fixture == encoded => Ok(fixture),
            Ok(fixture) => Err(format!(
                "{}: the encoding of the sample differs from the committed fixture ({}).\n{}\n\
                 If only the sample changed, not the format, delete the fixture and write it \
                 again with {BLESS_VAR}=1.",
                path.display(),
                describe_difference(&fixture, encoded),
                pinned.how_to_change()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.bless => {
                std::fs::create_dir_all(&self.dir)
                    .and_then(|()| std::fs::write(&path, encoded))
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
                Ok(encoded.to_vec())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "{} does not exist: no fixture pins this encoding yet. Run the test with \
                 {BLESS_VAR}=1 to write it from the sample (check that the sample fills every \
                 field), and commit it.",
                path.display()
            )),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    /// The fixtures of the stored type `type_name`, every format version, in
    /// version order.
    pub fn stored_versions(&self, type_name: &str) -> Result<Vec<(u8, PathBuf)>, String> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("listing {}: {e}", self.dir.display())),
        };
        let prefix = format!("{type_name}.v");
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("listing {}: {e}", self.dir.display()))?;
            let name = entry.file_name();
            let version = name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|n| n.strip_suffix(".bin"))
                .and_then(|v| v.parse::<u8>().ok());
            if let Some(version) = version {
                found.push((version, entry.path()));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Checks the stored type of `sample`: its encoding equals the fixture of
    /// the current format version, the fixture decodes to `sample`, and the
    /// fixtures of every format version still decode.
    pub fn check_stored<T: Versioned + PartialEq + Debug>(&self, sample: &T) -> Result<(), String> {
        let encoded = sample
            .encode()
            .map_err(|e| format!("encoding the {} sample: {e}", T::TYPE_NAME))?;
        let pinned = Pinned::Stored {
            type_name: T::TYPE_NAME,
            format_version: T::FORMAT_VERSION,
        };
        let fixture = self.check(&pinned, &encoded)?;
        let decoded = T::decode(&fixture).map_err(|e| {
            format!(
                "{} does not decode: {e}",
                self.dir.join(pinned.file_name()).display()
            )
        })?;
        if decoded != *sample {
            return Err(format!(
                "{} decodes to another value than the sample:\n{decoded:#?}\ninstead of\n{sample:#?}",
                self.dir.join(pinned.file_name()).display()
            ));
        }
        for (version, path) in self.stored_versions(T::TYPE_NAME)? {
            let bytes =
                std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            T::decode(&bytes).map_err(|e| {
                format!(
                    "{} no longer decodes ({e}): data written by older builds must stay \
                     readable, so {}::decode_older must read format version {version}.",
                    path.display(),
                    T::TYPE_NAME
                )
            })?;
        }
        Ok(())
    }

    /// Checks a message sent between nodes at node protocol `protocol`: the
    /// encoding of `sample` by `encode` (what the network layer sends) equals
    /// the fixture, which `decode` reads back to a value that encodes to the
    /// same bytes (messages need not be comparable).
    pub fn check_wire<T, EncodeError: Display, DecodeError: Display>(
        &self,
        name: &str,
        protocol: u8,
        sample: &T,
        encode: impl Fn(&T) -> Result<Vec<u8>, EncodeError>,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<(), String> {
        let encoded = encode(sample).map_err(|e| format!("encoding the {name} sample: {e}"))?;
        let pinned = Pinned::Wire { name, protocol };
        let fixture = self.check(&pinned, &encoded)?;
        let path = self.dir.join(pinned.file_name());
        let decoded =
            decode(&fixture).map_err(|e| format!("{} does not decode: {e}", path.display()))?;
        let again = encode(&decoded).map_err(|e| format!("encoding decoded {name}: {e}"))?;
        if again != fixture {
            return Err(format!(
                "{} decodes to a value that encodes differently ({})",
                path.display(),
                describe_difference(&fixture, &again)
            ));
        }
        Ok(())
    }
}

/// Where two encodings first differ, with the bytes around it in hex.
fn describe_difference(fixture: &[u8], encoded: &[u8]) -> String {
    let at = fixture
        .iter()
        .zip(encoded)
        .position(|(a, b)| a != b)
        .unwrap_or(fixture.len().min(encoded.len()));
    let window = |bytes: &[u8]| {
        let start = at.saturating_sub(8).min(bytes.len());
        let end = (at + 24).min(bytes.len());
        hex::encode(&bytes[start..end])
    };
    format!(
        "fixture {} bytes, encoding {} bytes, first difference at byte {at}; \
         from byte {}: fixture {}, encoding {}",
        fixture.len(),
        encoded.len(),
        at.saturating_sub(8),
        window(fixture),
        window(encoded)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    /// A stored type at format version 2, which reads version 1 (a lone `a`).
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        a: u32,
        b: String,
    }

    impl Versioned for Sample {
        const TYPE_NAME: &'static str = "Sample";
        const FORMAT_VERSION: u8 = 2;

        fn decode_older(format_version: u8, bytes: &[u8]) -> Result<Self, crate::encoding::Error> {
            match format_version {
                1 => Ok(Sample {
                    a: rmp_serde::from_slice(bytes).map_err(|source| {
                        crate::encoding::Error::Decode {
                            type_name: "Sample",
                            source,
                        }
                    })?,
                    b: String::new(),
                }),
                _ => Err(crate::encoding::Error::UnknownFormat {
                    type_name: "Sample",
                    found: format_version,
                    current: 2,
                }),
            }
        }
    }

    fn sample() -> Sample {
        Sample {
            a: 7,
            b: "x".into(),
        }
    }

    #[test]
    fn a_missing_fixture_fails_unless_blessed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Fixtures::new(dir.path(), false)
            .check_stored(&sample())
            .expect_err("missing");
        assert!(err.contains("Sample.v2.bin does not exist"), "{err}");
        assert!(err.contains("HANGAR_BLESS=1"), "{err}");
        Fixtures::new(dir.path(), true)
            .check_stored(&sample())
            .expect("blessed");
        let written = std::fs::read(dir.path().join("Sample.v2.bin")).expect("written");
        assert_eq!(written, sample().encode().expect("encode"));
        Fixtures::new(dir.path(), false)
            .check_stored(&sample())
            .expect("now pinned");
    }

    #[test]
    fn a_changed_encoding_fails_even_when_blessing() {
        let dir = tempfile::tempdir().expect("tempdir");
        Fixtures::new(dir.path(), true)
            .check_stored(&sample())
            .expect("blessed");
        let changed = Sample {
            a: 8,
            b: "x".into(),
        };
        let err = Fixtures::new(dir.path(), true)
            .check_stored(&changed)
            .expect_err("changed");
        assert!(err.contains("first difference at byte 2"), "{err}");
        assert!(err.contains("Bump Sample::FORMAT_VERSION to 3"), "{err}");
        assert!(err.contains("Sample.v3.bin"), "{err}");
    }

    #[test]
    fn every_older_fixture_must_still_decode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fixtures = Fixtures::new(dir.path(), true);
        fixtures.check_stored(&sample()).expect("blessed");
        let mut v1 = vec![1];
        rmp_serde::encode::write(&mut v1, &7u32).expect("encode v1");
        std::fs::write(dir.path().join("Sample.v1.bin"), v1).expect("write v1");
        std::fs::write(dir.path().join("Other.v1.bin"), b"ignored").expect("write other");
        let versions: Vec<u8> = fixtures
            .stored_versions("Sample")
            .expect("list")
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        assert_eq!(versions, [1, 2]);
        fixtures.check_stored(&sample()).expect("v1 decodes");
        std::fs::write(dir.path().join("Sample.v0.bin"), [0, 0xc0]).expect("write v0");
        let err = fixtures.check_stored(&sample()).expect_err("v0 is unknown");
        assert!(err.contains("Sample.v0.bin no longer decodes"), "{err}");
        assert!(
            err.contains("decode_older must read format version 0"),
            "{err}"
        );
    }

    #[test]
    fn wire_fixtures_name_the_protocol() {
        let dir = tempfile::tempdir().expect("tempdir");
        let encode = |s: &Sample| rmp_serde::to_vec(s);
        let decode = |b: &[u8]| rmp_serde::from_slice::<Sample>(b);
        Fixtures::new(dir.path(), true)
            .check_wire("Hello", 2, &sample(), encode, decode)
            .expect("blessed");
        assert!(dir.path().join("Hello.p2.bin").is_file());
        let err = Fixtures::new(dir.path(), false)
            .check_wire(
                "Hello",
                2,
                &Sample {
                    a: 1,
                    b: "y".into(),
                },
                encode,
                decode,
            )
            .expect_err("changed");
        assert!(err.contains("Bump NODE_PROTOCOL"), "{err}");
        assert!(err.contains(".p3.bin"), "{err}");
    }

    #[test]
    fn the_workspace_fixtures_are_at_its_root() {
        let fixtures = Fixtures::in_workspace(env!("CARGO_MANIFEST_DIR"));
        assert!(fixtures.dir().ends_with("testdata/formats"));
        let root = fixtures
            .dir()
            .parent()
            .and_then(Path::parent)
            .expect("root");
        let root = root.canonicalize().expect("root exists");
        let expected = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .expect("workspace");
        assert_eq!(root, expected);
    }
}
