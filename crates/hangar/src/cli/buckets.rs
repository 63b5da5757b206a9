//! `hangar bucket ...`.

use anyhow::bail;
use hangar_api_admin::api::{
    AliasTarget, BucketAliasRequest, BucketKeyPerm, BucketKeyPermRequest, CreateBucketRequest,
    DeleteBucketRequest, EmptyResponse, GetBucketInfoResponse, ListBucketsResponse,
};
use hangar_api_admin::AdminRequest;

use super::client::AdminClient;
use super::table::{list, render, yes_no};
use super::{AdminTarget, BucketCommand, PermissionArgs};

/// Runs `command` against the admin API at `target` and prints the outcome.
pub async fn run_bucket(target: AdminTarget, command: BucketCommand) -> anyhow::Result<()> {
    let client = AdminClient::new(&target)?;
    match command {
        BucketCommand::Create { name } => {
            let bucket: GetBucketInfoResponse = client
                .call(&AdminRequest::CreateBucket(CreateBucketRequest {
                    global_alias: name,
                }))
                .await?;
            out!("{}", render_bucket(&bucket));
        }
        BucketCommand::List => {
            let buckets: ListBucketsResponse = client.call(&AdminRequest::ListBuckets).await?;
            let mut rows: Vec<Vec<String>> = buckets
                .0
                .into_iter()
                .map(|b| {
                    let locals: Vec<String> = b
                        .local_aliases
                        .iter()
                        .map(|l| format!("{}:{}", l.access_key_id, l.alias))
                        .collect();
                    vec![
                        b.id,
                        list(&b.global_aliases),
                        list(&locals),
                        b.created.unwrap_or_default(),
                    ]
                })
                .collect();
            rows.sort_by(|a, b| a[1].cmp(&b[1]));
            out!(
                "{}",
                render(&["ID", "GLOBAL ALIASES", "LOCAL ALIASES", "CREATED"], &rows)
            );
        }
        BucketCommand::Info { bucket } => {
            let bucket = client.find_bucket(&bucket).await?;
            out!("{}", render_bucket(&bucket));
        }
        BucketCommand::Delete { bucket } => {
            let bucket = client.find_bucket(&bucket).await?;
            let _: EmptyResponse = client
                .call(&AdminRequest::DeleteBucket(DeleteBucketRequest {
                    id: bucket.id.clone(),
                }))
                .await?;
            outln!(
                "Deleted bucket {} ({}).",
                bucket.id,
                list(&bucket.global_aliases)
            );
        }
        BucketCommand::Allow { bucket, grant } => {
            let request = permission_request(&client, &bucket, grant).await?;
            let bucket = client.call(&AdminRequest::AllowBucketKey(request)).await?;
            out!("{}", render_bucket(&bucket));
        }
        BucketCommand::Deny { bucket, grant } => {
            let request = permission_request(&client, &bucket, grant).await?;
            let bucket = client.call(&AdminRequest::DenyBucketKey(request)).await?;
            out!("{}", render_bucket(&bucket));
        }
        BucketCommand::Alias {
            bucket,
            new_alias,
            local,
        } => {
            let request = alias_request(&client, &bucket, new_alias, local).await?;
            let bucket = client.call(&AdminRequest::AddBucketAlias(request)).await?;
            out!("{}", render_bucket(&bucket));
        }
        BucketCommand::Unalias {
            bucket,
            alias,
            local,
        } => {
            let request = alias_request(&client, &bucket, alias, local).await?;
            let bucket = client
                .call(&AdminRequest::RemoveBucketAlias(request))
                .await?;
            out!("{}", render_bucket(&bucket));
        }
    }
    Ok(())
}

/// The request changing `grant.key`'s rights on `bucket`, ids resolved.
async fn permission_request(
    client: &AdminClient,
    bucket: &str,
    grant: PermissionArgs,
) -> anyhow::Result<BucketKeyPermRequest> {
    if !(grant.read || grant.write || grant.owner) {
        bail!("name at least one of --read, --write and --owner");
    }
    let bucket = client.find_bucket(bucket).await?;
    let key = client.find_key(&grant.key, false).await?;
    Ok(BucketKeyPermRequest {
        bucket_id: bucket.id,
        access_key_id: key.access_key_id,
        permissions: BucketKeyPerm {
            read: grant.read,
            write: grant.write,
            owner: grant.owner,
        },
    })
}

/// The request adding or removing name `alias` of `bucket` (private to key
/// `local` if given), ids resolved.
async fn alias_request(
    client: &AdminClient,
    bucket: &str,
    alias: String,
    local: Option<String>,
) -> anyhow::Result<BucketAliasRequest> {
    let bucket = client.find_bucket(bucket).await?;
    let alias = match local {
        None => AliasTarget::Global {
            global_alias: alias,
        },
        Some(key) => AliasTarget::Local {
            access_key_id: client.find_key(&key, false).await?.access_key_id,
            local_alias: alias,
        },
    };
    Ok(BucketAliasRequest {
        bucket_id: bucket.id,
        alias,
    })
}

/// A bucket as text: its fields, then the keys that can use it.
fn render_bucket(bucket: &GetBucketInfoResponse) -> String {
    let mut out = format!(
        "Bucket:          {}\nCreated:         {}\nGlobal aliases:  {}\n",
        bucket.id,
        bucket.created.as_deref().unwrap_or("-"),
        list(&bucket.global_aliases),
    );
    if bucket.keys.is_empty() {
        out.push_str("Keys:            none\n");
        return out;
    }
    out.push_str("\nKeys:\n");
    let rows: Vec<Vec<String>> = bucket
        .keys
        .iter()
        .map(|k| {
            vec![
                k.access_key_id.clone(),
                k.name.clone(),
                yes_no(k.permissions.read).to_string(),
                yes_no(k.permissions.write).to_string(),
                yes_no(k.permissions.owner).to_string(),
                list(&k.bucket_local_aliases),
            ]
        })
        .collect();
    out.push_str(&render(
        &["KEY ID", "NAME", "READ", "WRITE", "OWNER", "LOCAL ALIASES"],
        &rows,
    ));
    out
}
