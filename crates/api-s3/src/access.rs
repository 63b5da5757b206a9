//! Authentication: secrets come from the key table; anonymous requests are refused.

use hangar_model::ObjectService;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Result};

/// Looks up secrets of access keys in the model.
#[derive(Clone, Debug)]
pub struct KeyStore(pub ObjectService);

#[async_trait::async_trait]
impl S3Auth for KeyStore {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.get_key(access_key) {
            Ok(k) => Ok(SecretKey::from(k.secret)),
            Err(_) => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS access key Id you provided does not exist in our records."
            )),
        }
    }
}

/// Refuses unsigned requests. Per-bucket permissions are checked by each
/// operation once its bucket is resolved.
#[derive(Clone, Copy, Debug)]
pub struct SignedOnly;

#[async_trait::async_trait]
impl S3Access for SignedOnly {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        match cx.credentials() {
            Some(_) => Ok(()),
            None => Err(s3_error!(AccessDenied, "Anonymous access is not allowed")),
        }
    }
}
