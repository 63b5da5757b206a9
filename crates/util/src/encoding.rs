//! Versioned binary encoding for stored values: one format-version byte followed by
//! MessagePack. Decoding a value written by an older format goes through
//! [`Versioned::decode_older`], so old data stays readable.
//!
//! Structs are encoded as MessagePack arrays, without field names: values are
//! smaller and decode several times faster (listings decode thousands of them),
//! and the format byte, not field names, is what tells formats apart. Any change
//! of a stored type's fields (order included) is therefore a new format version.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Errors of encoding and decoding.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes were empty.
    #[error("empty encoded value")]
    Empty,
    /// The format version byte is unknown to this build.
    #[error("unknown format_version {found} for {type_name} (current {current})")]
    UnknownFormat {
        /// Type being decoded.
        type_name: &'static str,
        /// Version found in the data.
        found: u8,
        /// Version this build writes.
        current: u8,
    },
    /// MessagePack decoding failed.
    #[error("decode {type_name}: {source}")]
    Decode {
        /// Type being decoded.
        type_name: &'static str,
        /// Underlying error.
        source: rmp_serde::decode::Error,
    },
    /// MessagePack encoding failed.
    #[error("encode: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// A stored type with a format version.
pub trait Versioned: Serialize + DeserializeOwned {
    /// Name used in error messages.
    const TYPE_NAME: &'static str;
    /// The format version this build writes.
    const FORMAT_VERSION: u8;

    /// Decodes a value of an older format version. The default knows none.
    fn decode_older(format_version: u8, _bytes: &[u8]) -> Result<Self, Error> {
        Err(Error::UnknownFormat {
            type_name: Self::TYPE_NAME,
            found: format_version,
            current: Self::FORMAT_VERSION,
        })
    }

    /// Encodes with the current format version.
    fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = vec![Self::FORMAT_VERSION];
        rmp_serde::encode::write(&mut out, self)?;
        Ok(out)
    }

    /// Decodes bytes written by [`Versioned::encode`] of this or an older version.
    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let (&format_version, body) = bytes.split_first().ok_or(Error::Empty)?;
        if format_version == Self::FORMAT_VERSION {
            rmp_serde::from_slice(body).map_err(|source| Error::Decode {
                type_name: Self::TYPE_NAME,
                source,
            })
        } else {
            Self::decode_older(format_version, body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        a: u32,
        b: String,
    }
    impl Versioned for Sample {
        const TYPE_NAME: &'static str = "Sample";
        const FORMAT_VERSION: u8 = 3;
    }

    #[test]
    fn round_trips_and_rejects_unknown_versions() {
        let s = Sample {
            a: 7,
            b: "x".into(),
        };
        let bytes = s.encode().expect("encode");
        assert_eq!(Sample::decode(&bytes).expect("decode"), s);
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(matches!(
            Sample::decode(&bad),
            Err(Error::UnknownFormat { found: 9, .. })
        ));
        assert!(matches!(Sample::decode(&[]), Err(Error::Empty)));
    }
}
