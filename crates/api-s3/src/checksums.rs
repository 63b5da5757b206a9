//! Checksum headers: what the client asks for and what we return.

use std::sync::Arc;

use base64::Engine;
use hangar_model::checksum::{Checksum, ChecksumAlgorithm};
use hangar_model::PutParams;
use http::HeaderMap;
use s3s::{s3_error, S3Result};

/// The checksum fields of an upload input.
pub(crate) struct ChecksumFields<'a> {
    pub algorithm: Option<&'a s3s::dto::ChecksumAlgorithm>,
    pub crc32: Option<&'a String>,
    pub crc32c: Option<&'a String>,
    pub crc64nvme: Option<&'a String>,
    pub sha1: Option<&'a String>,
    pub sha256: Option<&'a String>,
    pub content_md5: Option<&'a String>,
}

fn header_name(a: ChecksumAlgorithm) -> &'static str {
    match a {
        ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
        ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
        ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
        ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
        ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
    }
}

/// Builds the digest part of [`PutParams`] from an input and its headers
/// (`x-amz-trailer` announces a checksum sent after the body).
pub(crate) fn put_params(
    f: &ChecksumFields<'_>,
    headers: &HeaderMap,
    trailers: Option<s3s::TrailingHeaders>,
) -> S3Result<PutParams> {
    let mut p = PutParams::default();
    let empty_md5 = headers
        .get("content-md5")
        .is_some_and(|v| v.as_bytes().iter().all(u8::is_ascii_whitespace));
    if empty_md5 {
        return Err(s3_error!(
            InvalidDigest,
            "The Content-MD5 you specified was invalid."
        ));
    }
    if let Some(md5) = f.content_md5 {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(md5)
            .ok()
            .and_then(|v| <[u8; 16]>::try_from(v).ok())
            .ok_or_else(|| {
                s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid.")
            })?;
        p.content_md5 = Some(raw);
    }
    let given = [
        (ChecksumAlgorithm::Crc32, f.crc32),
        (ChecksumAlgorithm::Crc32c, f.crc32c),
        (ChecksumAlgorithm::Crc64Nvme, f.crc64nvme),
        (ChecksumAlgorithm::Sha1, f.sha1),
        (ChecksumAlgorithm::Sha256, f.sha256),
    ];
    let mut given = given.into_iter().filter_map(|(a, v)| v.map(|v| (a, v)));
    if let Some((algorithm, value)) = given.next() {
        if given.next().is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "Expecting a single x-amz-checksum- header"
            ));
        }
        p.expected_checksum = Some(Checksum {
            algorithm,
            value: value.clone(),
        });
    }
    if let Some(a) = f.algorithm {
        p.checksum_algorithm = Some(
            ChecksumAlgorithm::parse(a.as_str())
                .ok_or_else(|| s3_error!(InvalidRequest, "Unsupported checksum algorithm"))?,
        );
    }
    if let Some(t) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
        let name = t.trim().to_ascii_lowercase();
        let algorithm = name
            .strip_prefix("x-amz-checksum-")
            .and_then(ChecksumAlgorithm::parse)
            .ok_or_else(|| s3_error!(InvalidRequest, "Unsupported trailer"))?;
        p.checksum_algorithm = Some(algorithm);
        if let Some(trailers) = trailers {
            p.late_checksum = Some(Arc::new(move || {
                trailers
                    .read(|h| {
                        h.get(header_name(algorithm))
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    })
                    .flatten()
                    .map(|value| Checksum { algorithm, value })
            }));
        }
    }
    Ok(p)
}

/// Output checksum fields: (crc32, crc32c, crc64nvme, sha1, sha256).
pub(crate) type ChecksumOut = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Splits a checksum into the output field it belongs to.
pub(crate) fn out(c: Option<&Checksum>) -> ChecksumOut {
    let mut o: ChecksumOut = (None, None, None, None, None);
    if let Some(c) = c {
        let v = Some(c.value.clone());
        match c.algorithm {
            ChecksumAlgorithm::Crc32 => o.0 = v,
            ChecksumAlgorithm::Crc32c => o.1 = v,
            ChecksumAlgorithm::Crc64Nvme => o.2 = v,
            ChecksumAlgorithm::Sha1 => o.3 = v,
            ChecksumAlgorithm::Sha256 => o.4 = v,
        }
    }
    o
}
