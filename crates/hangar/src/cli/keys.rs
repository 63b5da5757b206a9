//! `hangar key ...`.

use hangar_api_admin::api::{
    CreateKeyRequest, DeleteKeyRequest, EmptyResponse, GetKeyInfoResponse, ImportKeyRequest,
    KeyPerm, ListKeysResponse, UpdateKeyBody, UpdateKeyRequest,
};
use hangar_api_admin::AdminRequest;

use super::client::AdminClient;
use super::table::{list, render, yes_no};
use super::{AdminTarget, KeyCommand};

/// Runs `command` against the admin API at `target` and prints the outcome.
pub async fn run_key(target: AdminTarget, command: KeyCommand) -> anyhow::Result<()> {
    let client = AdminClient::new(&target)?;
    match command {
        KeyCommand::Create { name } => {
            let key: GetKeyInfoResponse = client
                .call(&AdminRequest::CreateKey(CreateKeyRequest {
                    name: Some(name),
                }))
                .await?;
            out!("{}", render_key(&key));
        }
        KeyCommand::Import { id, secret, name } => {
            let key: GetKeyInfoResponse = client
                .call(&AdminRequest::ImportKey(ImportKeyRequest {
                    access_key_id: id,
                    secret_access_key: secret,
                    name,
                }))
                .await?;
            out!("{}", render_key(&key));
        }
        KeyCommand::List => {
            let keys: ListKeysResponse = client.call(&AdminRequest::ListKeys).await?;
            let rows: Vec<Vec<String>> = keys.0.into_iter().map(|k| vec![k.id, k.name]).collect();
            out!("{}", render(&["ID", "NAME"], &rows));
        }
        KeyCommand::Info { key, show_secret } => {
            let key = client.find_key(&key, show_secret).await?;
            out!("{}", render_key(&key));
        }
        KeyCommand::Delete { key } => {
            let key = client.find_key(&key, false).await?;
            let _: EmptyResponse = client
                .call(&AdminRequest::DeleteKey(DeleteKeyRequest {
                    id: key.access_key_id.clone(),
                }))
                .await?;
            outln!("Deleted key {} ({}).", key.access_key_id, key.name);
        }
        KeyCommand::Allow { key, create_bucket } => {
            let perm = KeyPerm { create_bucket };
            let key = update(&client, &key, Some(perm), None).await?;
            out!("{}", render_key(&key));
        }
        KeyCommand::Deny { key, create_bucket } => {
            let perm = KeyPerm { create_bucket };
            let key = update(&client, &key, None, Some(perm)).await?;
            out!("{}", render_key(&key));
        }
    }
    Ok(())
}

async fn update(
    client: &AdminClient,
    key: &str,
    allow: Option<KeyPerm>,
    deny: Option<KeyPerm>,
) -> anyhow::Result<GetKeyInfoResponse> {
    let key = client.find_key(key, false).await?;
    client
        .call(&AdminRequest::UpdateKey(UpdateKeyRequest {
            id: key.access_key_id,
            body: UpdateKeyBody {
                name: None,
                allow,
                deny,
            },
        }))
        .await
}

/// A key as text: its fields, then the buckets it can use.
fn render_key(key: &GetKeyInfoResponse) -> String {
    let mut out = format!(
        "Key name:            {}\nKey ID:              {}\n",
        key.name, key.access_key_id
    );
    if let Some(secret) = &key.secret_access_key {
        out.push_str(&format!("Secret key:          {secret}\n"));
    }
    out.push_str(&format!(
        "Can create buckets:  {}\n",
        yes_no(key.permissions.create_bucket)
    ));
    if key.buckets.is_empty() {
        out.push_str("Buckets:             none\n");
        return out;
    }
    out.push_str("\nBuckets:\n");
    let rows: Vec<Vec<String>> = key
        .buckets
        .iter()
        .map(|b| {
            vec![
                b.id.clone(),
                list(&b.global_aliases),
                list(&b.local_aliases),
                yes_no(b.permissions.read).to_string(),
                yes_no(b.permissions.write).to_string(),
                yes_no(b.permissions.owner).to_string(),
            ]
        })
        .collect();
    out.push_str(&render(
        &[
            "ID",
            "GLOBAL ALIASES",
            "LOCAL ALIASES",
            "READ",
            "WRITE",
            "OWNER",
        ],
        &rows,
    ));
    out
}
