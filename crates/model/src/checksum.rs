//! Object checksums as S3 defines them: CRC32, CRC32C, CRC64NVME, SHA1, SHA256,
//! each base64-encoded.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha1::Digest as _;
use sha2::Digest as _;

/// A checksum algorithm of the S3 API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (ISO-HDLC).
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// CRC-64/NVME.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl ChecksumAlgorithm {
    /// The S3 name (`CRC32`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// Parses an S3 name, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
            ChecksumAlgorithm::Sha1,
            ChecksumAlgorithm::Sha256,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }
}

/// A checksum value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Checksum {
    /// Algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// Base64 of the digest; composite checksums end in `-N`.
    pub value: String,
}

/// Incremental computation of one checksum.
pub enum ChecksumHasher {
    /// A CRC of crc-fast.
    Crc(ChecksumAlgorithm, Box<crc_fast::Digest>),
    /// SHA-1.
    Sha1(Box<sha1::Sha1>),
    /// SHA-256.
    Sha256(Box<sha2::Sha256>),
}

impl ChecksumHasher {
    /// A hasher for `algorithm`.
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        use crc_fast::CrcAlgorithm as C;
        let crc = |c| ChecksumHasher::Crc(algorithm, Box::new(crc_fast::Digest::new(c)));
        match algorithm {
            ChecksumAlgorithm::Crc32 => crc(C::Crc32IsoHdlc),
            ChecksumAlgorithm::Crc32c => crc(C::Crc32Iscsi),
            ChecksumAlgorithm::Crc64Nvme => crc(C::Crc64Nvme),
            ChecksumAlgorithm::Sha1 => ChecksumHasher::Sha1(Box::default()),
            ChecksumAlgorithm::Sha256 => ChecksumHasher::Sha256(Box::default()),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            ChecksumHasher::Crc(_, d) => d.update(data),
            ChecksumHasher::Sha1(h) => h.update(data),
            ChecksumHasher::Sha256(h) => h.update(data),
        }
    }

    /// The raw digest bytes.
    pub fn finalize_bytes(self) -> Vec<u8> {
        match self {
            ChecksumHasher::Crc(a, d) => {
                let v = d.finalize();
                if a == ChecksumAlgorithm::Crc64Nvme {
                    v.to_be_bytes().to_vec()
                } else {
                    u32::try_from(v).unwrap_or(u32::MAX).to_be_bytes().to_vec()
                }
            }
            ChecksumHasher::Sha1(h) => h.finalize().to_vec(),
            ChecksumHasher::Sha256(h) => h.finalize().to_vec(),
        }
    }

    /// The checksum.
    pub fn finalize(self) -> Checksum {
        let algorithm = match &self {
            ChecksumHasher::Crc(a, _) => *a,
            ChecksumHasher::Sha1(_) => ChecksumAlgorithm::Sha1,
            ChecksumHasher::Sha256(_) => ChecksumAlgorithm::Sha256,
        };
        Checksum {
            algorithm,
            value: base64::engine::general_purpose::STANDARD.encode(self.finalize_bytes()),
        }
    }
}

/// The composite checksum of a multipart object: the checksum of the
/// concatenated binary part checksums, suffixed with `-N`.
pub fn composite(algorithm: ChecksumAlgorithm, parts: &[Checksum]) -> Option<Checksum> {
    let mut h = ChecksumHasher::new(algorithm);
    for p in parts {
        if p.algorithm != algorithm {
            return None;
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&p.value)
            .ok()?;
        h.update(&raw);
    }
    let mut c = h.finalize();
    c.value = format!("{}-{}", c.value, parts.len());
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        let mut h = ChecksumHasher::new(ChecksumAlgorithm::Crc32);
        h.update(b"123456789");
        assert_eq!(h.finalize_bytes(), 0xCBF4_3926u32.to_be_bytes());
        let mut h = ChecksumHasher::new(ChecksumAlgorithm::Crc32c);
        h.update(b"123456789");
        assert_eq!(h.finalize_bytes(), 0xE306_9283u32.to_be_bytes());
        let mut h = ChecksumHasher::new(ChecksumAlgorithm::Sha256);
        h.update(b"");
        assert_eq!(
            h.finalize().value,
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
