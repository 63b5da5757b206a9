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

/// Whether `bytes` decode as a `T` that survives a round trip: `Ok(false)`
/// if they do not decode, `Ok(true)` if the value re-encodes, decodes again
/// to an equal value and re-encodes to the same bytes, and an error saying
/// what broke otherwise. The fuzz target `stored_entries` and the replay of
/// its corpus check every stored type with it.
pub fn round_trips<T: Versioned + PartialEq + std::fmt::Debug>(
    bytes: &[u8],
) -> Result<bool, String> {
    let Ok(value) = T::decode(bytes) else {
        return Ok(false);
    };
    let name = T::TYPE_NAME;
    let encoded = value
        .encode()
        .map_err(|e| format!("{name}: a decoded value fails to encode: {e}"))?;
    let again = T::decode(&encoded)
        .map_err(|e| format!("{name}: a re-encoded value fails to decode: {e}"))?;
    if again != value {
        return Err(format!("{name}: {value:?} came back as {again:?}"));
    }
    let encoded_again = again
        .encode()
        .map_err(|e| format!("{name}: encoding fails the second time: {e}"))?;
    if encoded_again != encoded {
        return Err(format!("{name}: the encoding is not stable"));
    }
    Ok(true)
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
