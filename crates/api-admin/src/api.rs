//! Requests and responses of the admin API: [`AdminRequest`], one variant per
//! endpoint, and the JSON shapes of their bodies and answers.
//!
//! Field names are camelCase and follow Garage's admin API v2 where the concept is
//! the same, so tooling written for it can talk to Hangar. Request bodies reject
//! unknown fields; response readers should ignore fields they do not know.

use serde::{Deserialize, Serialize};

mod cluster;
mod layout;
mod workers;

pub use cluster::*;
pub use layout::*;
pub use workers::*;

/// One admin operation, parsed from HTTP by [`AdminRequest::from_http`] and turned
/// back into HTTP by [`AdminRequest::to_http`] (the CLI's side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminRequest {
    /// `GET /health` (no token needed).
    Health,
    /// `GET /metrics`: Prometheus text.
    Metrics,
    /// `GET /v2/ListKeys`.
    ListKeys,
    /// `POST /v2/CreateKey`.
    CreateKey(CreateKeyRequest),
    /// `POST /v2/ImportKey`.
    ImportKey(ImportKeyRequest),
    /// `GET /v2/GetKeyInfo?id=..|search=..[&showSecretKey=true]`.
    GetKeyInfo(GetKeyInfoRequest),
    /// `POST /v2/UpdateKey?id=..`.
    UpdateKey(UpdateKeyRequest),
    /// `POST /v2/DeleteKey?id=..`.
    DeleteKey(DeleteKeyRequest),
    /// `GET /v2/ListBuckets`.
    ListBuckets,
    /// `POST /v2/CreateBucket`.
    CreateBucket(CreateBucketRequest),
    /// `GET /v2/GetBucketInfo?id=..|globalAlias=..|search=..`.
    GetBucketInfo(GetBucketInfoRequest),
    /// `POST /v2/DeleteBucket?id=..`.
    DeleteBucket(DeleteBucketRequest),
    /// `POST /v2/AllowBucketKey`: grants the listed permissions.
    AllowBucketKey(BucketKeyPermRequest),
    /// `POST /v2/DenyBucketKey`: revokes the listed permissions.
    DenyBucketKey(BucketKeyPermRequest),
    /// `POST /v2/AddBucketAlias`.
    AddBucketAlias(BucketAliasRequest),
    /// `POST /v2/RemoveBucketAlias`.
    RemoveBucketAlias(BucketAliasRequest),
    /// `GET /v2/GetNodeInfo?node=self|*|<id>`.
    GetNodeInfo(GetNodeInfoRequest),
    /// `GET /v2/GetClusterStatus`.
    GetClusterStatus,
    /// `GET /v2/GetClusterHealth`.
    GetClusterHealth,
    /// `POST /v2/ConnectClusterNodes`.
    ConnectClusterNodes(ConnectClusterNodesRequest),
    /// `GET /v2/GetClusterLayout`.
    GetClusterLayout,
    /// `POST /v2/UpdateClusterLayout`: stages role and parameter changes.
    UpdateClusterLayout(UpdateClusterLayoutRequest),
    /// `POST /v2/PreviewClusterLayoutChanges`.
    PreviewClusterLayoutChanges,
    /// `POST /v2/ApplyClusterLayout`.
    ApplyClusterLayout(ApplyClusterLayoutRequest),
    /// `POST /v2/RevertClusterLayout`: drops the staged changes.
    RevertClusterLayout,
    /// `GET /v2/GetClusterLayoutHistory`.
    GetClusterLayoutHistory,
    /// `POST /v2/ClusterLayoutSkipDeadNodes`.
    ClusterLayoutSkipDeadNodes(ClusterLayoutSkipDeadNodesRequest),
    /// `GET /v2/GetWorkerStatus`: this node's background workers.
    GetWorkerStatus,
    /// `GET /v2/GetTableRoots`: the summary roots of the table partitions
    /// this node holds, to check that replicas agree.
    GetTableRoots,
    /// `POST /v2/LaunchRepairOperation`: starts a repair on this node.
    LaunchRepairOperation(LaunchRepairOperationRequest),
}

impl AdminRequest {
    /// The endpoint's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            AdminRequest::Health => "Health",
            AdminRequest::Metrics => "Metrics",
            AdminRequest::ListKeys => "ListKeys",
            AdminRequest::CreateKey(_) => "CreateKey",
            AdminRequest::ImportKey(_) => "ImportKey",
            AdminRequest::GetKeyInfo(_) => "GetKeyInfo",
            AdminRequest::UpdateKey(_) => "UpdateKey",
            AdminRequest::DeleteKey(_) => "DeleteKey",
            AdminRequest::ListBuckets => "ListBuckets",
            AdminRequest::CreateBucket(_) => "CreateBucket",
            AdminRequest::GetBucketInfo(_) => "GetBucketInfo",
            AdminRequest::DeleteBucket(_) => "DeleteBucket",
            AdminRequest::AllowBucketKey(_) => "AllowBucketKey",
            AdminRequest::DenyBucketKey(_) => "DenyBucketKey",
            AdminRequest::AddBucketAlias(_) => "AddBucketAlias",
            AdminRequest::RemoveBucketAlias(_) => "RemoveBucketAlias",
            AdminRequest::GetNodeInfo(_) => "GetNodeInfo",
            AdminRequest::GetClusterStatus => "GetClusterStatus",
            AdminRequest::GetClusterHealth => "GetClusterHealth",
            AdminRequest::ConnectClusterNodes(_) => "ConnectClusterNodes",
            AdminRequest::GetClusterLayout => "GetClusterLayout",
            AdminRequest::UpdateClusterLayout(_) => "UpdateClusterLayout",
            AdminRequest::PreviewClusterLayoutChanges => "PreviewClusterLayoutChanges",
            AdminRequest::ApplyClusterLayout(_) => "ApplyClusterLayout",
            AdminRequest::RevertClusterLayout => "RevertClusterLayout",
            AdminRequest::GetClusterLayoutHistory => "GetClusterLayoutHistory",
            AdminRequest::ClusterLayoutSkipDeadNodes(_) => "ClusterLayoutSkipDeadNodes",
            AdminRequest::GetWorkerStatus => "GetWorkerStatus",
            AdminRequest::GetTableRoots => "GetTableRoots",
            AdminRequest::LaunchRepairOperation(_) => "LaunchRepairOperation",
        }
    }
}

/// What a handler answers; turned into HTTP in one place (`server.rs`).
#[derive(Clone, Debug, PartialEq)]
pub enum AdminResponse {
    /// The node can serve requests.
    Health(HealthResponse),
    /// Prometheus exposition text.
    Metrics(String),
    /// Every access key.
    KeyList(ListKeysResponse),
    /// One access key.
    KeyInfo(GetKeyInfoResponse),
    /// Every bucket.
    BucketList(ListBucketsResponse),
    /// One bucket.
    BucketInfo(GetBucketInfoResponse),
    /// Done; nothing to report (deletions).
    Empty(EmptyResponse),
    /// Nodes described.
    NodeInfo(GetNodeInfoResponse),
    /// The nodes of the cluster.
    ClusterStatus(GetClusterStatusResponse),
    /// Whether the data is reachable.
    ClusterHealth(GetClusterHealthResponse),
    /// The outcome of each connection asked for.
    ConnectNodes(ConnectClusterNodesResponse),
    /// The layout and its staged changes.
    ClusterLayout(GetClusterLayoutResponse),
    /// What applying the staged changes would do.
    LayoutPreview(PreviewClusterLayoutChangesResponse),
    /// What applying the staged changes did.
    LayoutApplied(ApplyClusterLayoutResponse),
    /// The layout versions kept.
    LayoutHistory(GetClusterLayoutHistoryResponse),
    /// The trackers given in place of dead nodes.
    SkippedDeadNodes(ClusterLayoutSkipDeadNodesResponse),
    /// The node's background workers.
    Workers(GetWorkerStatusResponse),
    /// The summary roots of the table partitions the node holds.
    TableRoots(GetTableRootsResponse),
    /// A repair started.
    Repair(LaunchRepairOperationResponse),
}

// ---- shared pieces ----

/// Global rights of a key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyPerm {
    /// May create buckets.
    #[serde(default)]
    pub create_bucket: bool,
}

/// Rights of a key on one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketKeyPerm {
    /// May read objects and list them.
    #[serde(default)]
    pub read: bool,
    /// May write and delete objects.
    #[serde(default)]
    pub write: bool,
    /// May delete the bucket and change its settings.
    #[serde(default)]
    pub owner: bool,
}

/// An empty JSON object (`{}`), the answer of deletions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyResponse {}

/// Answer of `GET /health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResponse {
    /// Always `healthy` for now (a single node serves whatever it can reach).
    pub status: String,
}

// ---- access keys ----

/// One entry of [`ListKeysResponse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListKeysItem {
    /// Access key id.
    pub id: String,
    /// Human name.
    pub name: String,
}

/// Answer of `ListKeys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListKeysResponse(pub Vec<ListKeysItem>);

/// Body of `CreateKey`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Human name (empty when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Body of `ImportKey`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportKeyRequest {
    /// Access key id to use.
    pub access_key_id: String,
    /// Secret to use.
    pub secret_access_key: String,
    /// Human name (empty when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Query of `GetKeyInfo`: exactly one of `id` and `search`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetKeyInfoRequest {
    /// Exact access key id.
    pub id: Option<String>,
    /// An id, a name, or a unique prefix of an id.
    pub search: Option<String>,
    /// Whether to include the secret.
    pub show_secret_key: bool,
}

/// Query and body of `UpdateKey`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateKeyRequest {
    /// The key.
    pub id: String,
    /// The changes.
    pub body: UpdateKeyBody,
}

/// Body of `UpdateKey`: fields left out are not changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateKeyBody {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Rights to grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<KeyPerm>,
    /// Rights to revoke (applied after `allow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<KeyPerm>,
}

/// Query of `DeleteKey`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteKeyRequest {
    /// The key.
    pub id: String,
}

/// A bucket a key can use, in [`GetKeyInfoResponse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfoBucket {
    /// Bucket id (hex).
    pub id: String,
    /// The bucket's global names.
    pub global_aliases: Vec<String>,
    /// The bucket's names private to this key.
    pub local_aliases: Vec<String>,
    /// This key's rights on the bucket.
    pub permissions: BucketKeyPerm,
}

/// Answer of `GetKeyInfo`, `CreateKey`, `ImportKey` and `UpdateKey`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetKeyInfoResponse {
    /// Human name.
    pub name: String,
    /// Access key id.
    pub access_key_id: String,
    /// The secret: present on creation, import, and when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// Global rights.
    pub permissions: KeyPerm,
    /// Buckets the key has rights on or a private name for.
    pub buckets: Vec<KeyInfoBucket>,
}

// ---- buckets ----

/// A name of a bucket private to one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketLocalAlias {
    /// The key.
    pub access_key_id: String,
    /// The name.
    pub alias: String,
}

/// One entry of [`ListBucketsResponse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListBucketsItem {
    /// Bucket id (hex).
    pub id: String,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Global names.
    pub global_aliases: Vec<String>,
    /// Names private to keys.
    pub local_aliases: Vec<BucketLocalAlias>,
}

/// Answer of `ListBuckets`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListBucketsResponse(pub Vec<ListBucketsItem>);

/// Body of `CreateBucket`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBucketRequest {
    /// The bucket's first global name.
    pub global_alias: String,
}

/// Query of `GetBucketInfo`: exactly one of the three.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetBucketInfoRequest {
    /// Bucket id (32 hex characters).
    pub id: Option<String>,
    /// A global name.
    pub global_alias: Option<String>,
    /// A global name, an id, or a unique prefix of an id.
    pub search: Option<String>,
}

/// Query of `DeleteBucket`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteBucketRequest {
    /// Bucket id (hex).
    pub id: String,
}

/// Body of `AllowBucketKey` and `DenyBucketKey`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketKeyPermRequest {
    /// Bucket id (hex).
    pub bucket_id: String,
    /// The key.
    pub access_key_id: String,
    /// Rights to grant or revoke (those set to `true`).
    pub permissions: BucketKeyPerm,
}

/// Which name [`BucketAliasRequest`] adds or removes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AliasTarget {
    /// A name every key sees.
    Global {
        /// The name.
        global_alias: String,
    },
    /// A name only `access_key_id` sees.
    Local {
        /// The key.
        access_key_id: String,
        /// The name.
        local_alias: String,
    },
}

/// Body of `AddBucketAlias` and `RemoveBucketAlias`: `{"bucketId","globalAlias"}`
/// or `{"bucketId","accessKeyId","localAlias"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BucketAliasWire", into = "BucketAliasWire")]
pub struct BucketAliasRequest {
    /// Bucket id (hex).
    pub bucket_id: String,
    /// The name.
    pub alias: AliasTarget,
}

/// The flat JSON form of [`BucketAliasRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BucketAliasWire {
    bucket_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    global_alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    local_alias: Option<String>,
}

impl TryFrom<BucketAliasWire> for BucketAliasRequest {
    type Error = String;

    fn try_from(w: BucketAliasWire) -> Result<Self, String> {
        let alias = match (w.global_alias, w.access_key_id, w.local_alias) {
            (Some(global_alias), None, None) => AliasTarget::Global { global_alias },
            (None, Some(access_key_id), Some(local_alias)) => AliasTarget::Local {
                access_key_id,
                local_alias,
            },
            _ => return Err("expected either globalAlias, or accessKeyId and localAlias".into()),
        };
        Ok(BucketAliasRequest {
            bucket_id: w.bucket_id,
            alias,
        })
    }
}

impl From<BucketAliasRequest> for BucketAliasWire {
    fn from(r: BucketAliasRequest) -> Self {
        let (global_alias, access_key_id, local_alias) = match r.alias {
            AliasTarget::Global { global_alias } => (Some(global_alias), None, None),
            AliasTarget::Local {
                access_key_id,
                local_alias,
            } => (None, Some(access_key_id), Some(local_alias)),
        };
        BucketAliasWire {
            bucket_id: r.bucket_id,
            global_alias,
            access_key_id,
            local_alias,
        }
    }
}

/// A key with rights on a bucket, in [`GetBucketInfoResponse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketInfoKey {
    /// The key.
    pub access_key_id: String,
    /// The key's name.
    pub name: String,
    /// Its rights on the bucket.
    pub permissions: BucketKeyPerm,
    /// The bucket's names private to this key.
    pub bucket_local_aliases: Vec<String>,
}

/// Answer of `GetBucketInfo`, `CreateBucket`, the permission and the alias endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetBucketInfoResponse {
    /// Bucket id (hex).
    pub id: String,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Global names.
    pub global_aliases: Vec<String>,
    /// Keys with rights on the bucket or a private name for it.
    pub keys: Vec<BucketInfoKey>,
}
