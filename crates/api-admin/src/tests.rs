//! End-to-end tests: a real server on 127.0.0.1 over an in-memory model, driven
//! by a hyper client.

use std::net::SocketAddr;

use bytes::Bytes;
use hangar_block::{BlockStore, BlockStoreConfig, DataDir};
use hangar_cluster::testing::MemoryCluster;
use hangar_db::Db;
use hangar_model::{ModelConfig, ObjectService};
use hangar_util::clock::Clock;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::*;
use crate::{serve, AdminRequest, ErrorBody, MAX_BODY_BYTES};

mod cluster;

const TOKEN: &str = "test-admin-token";

struct Harness {
    _dir: tempfile::TempDir,
    _service_cluster: MemoryCluster,
    /// The cluster of the node under test, on `net`.
    cluster: std::sync::Arc<hangar_cluster::System>,
    /// The in-memory network other test nodes join.
    net: hangar_net::memory::MemoryNetwork,
    /// The cluster secret of `net`.
    secret: hangar_net::RpcSecret,
    addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }
}

/// A service over an in-memory database, with blocks under `dir`, on a
/// one-node cluster of its own (kept alive by the returned value).
async fn new_service(dir: &std::path::Path) -> (ObjectService, MemoryCluster) {
    let own = MemoryCluster::start(1, 1, std::time::Duration::ZERO).await;
    let replicator = hangar_table::Replicator::new(own.systems[0].clone());
    let db = Db::open_in_memory().expect("db");
    let clock = Clock::system();
    let blocks = BlockStore::new(
        BlockStoreConfig {
            data_dirs: vec![DataDir {
                path: dir.into(),
                capacity: 1,
            }],
            compression_level: None,
            fsync: false,
            gc_delay_msec: 1000,
        },
        db.clone(),
        clock.clone(),
    )
    .expect("blocks");
    let service = ObjectService::new(ModelConfig::default(), db, blocks, &replicator, clock);
    (service, own)
}

/// A cluster of one node on an in-memory network.
fn test_cluster() -> std::sync::Arc<hangar_cluster::System> {
    test_node(
        &hangar_net::memory::MemoryNetwork::new(),
        &hangar_net::RpcSecret::generate(),
    )
}

/// A node (replication factor 1) on `net`.
fn test_node(
    net: &hangar_net::memory::MemoryNetwork,
    secret: &hangar_net::RpcSecret,
) -> std::sync::Arc<hangar_cluster::System> {
    let key = hangar_net::NodeKey::generate().expect("key");
    hangar_cluster::System::with_transport(
        net.transport(key.id(), secret),
        hangar_util::clock::Clock::system(),
        None,
        hangar_cluster::membership::MembershipConfig::default(),
        hangar_cluster::history::LayoutParams {
            replication_factor: 1,
            ..Default::default()
        },
    )
    .expect("cluster")
}

async fn start() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, service_cluster) = new_service(dir.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let shutdown = CancellationToken::new();
    let net = hangar_net::memory::MemoryNetwork::new();
    let secret = hangar_net::RpcSecret::generate();
    let cluster = test_node(&net, &secret);
    let server = tokio::spawn(serve(
        listener,
        service,
        cluster.clone(),
        TOKEN.to_string(),
        shutdown.clone(),
    ));
    Harness {
        _dir: dir,
        _service_cluster: service_cluster,
        cluster,
        net,
        secret,
        addr,
        client: Client::builder(TokioExecutor::new()).build_http(),
        shutdown,
        server,
    }
}

impl Harness {
    async fn raw(&self, method: Method, path: &str, token: Option<&str>, body: Vec<u8>) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Full::new(Bytes::from(body))).expect("request");
        let response = self.client.request(request).await.expect("send");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    async fn call(&self, request: &AdminRequest) -> Answer {
        let parts = request.to_http();
        self.raw(
            parts.method,
            &parts.path_and_query,
            Some(TOKEN),
            parts.body.unwrap_or_default(),
        )
        .await
    }

    /// Sends `request`, expects 200, parses the answer.
    async fn ok<T: DeserializeOwned>(&self, request: AdminRequest) -> T {
        let answer = self.call(&request).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{}: {}",
            request.name(),
            String::from_utf8_lossy(&answer.body)
        );
        answer.json()
    }

    /// Sends `request`, expects `status`, returns the error code.
    async fn fails(&self, request: AdminRequest, status: StatusCode) -> String {
        let answer = self.call(&request).await;
        assert_eq!(
            answer.status,
            status,
            "{}: {}",
            request.name(),
            String::from_utf8_lossy(&answer.body)
        );
        let error: ErrorBody = answer.json();
        assert_eq!(
            Some(error.path.as_str()),
            request.to_http().path_and_query.split('?').next()
        );
        error.code
    }
}

fn bucket_by_id(id: &str) -> AdminRequest {
    AdminRequest::GetBucketInfo(GetBucketInfoRequest {
        id: Some(id.to_string()),
        ..Default::default()
    })
}

fn key_by_id(id: &str) -> AdminRequest {
    AdminRequest::GetKeyInfo(GetKeyInfoRequest {
        id: Some(id.to_string()),
        ..Default::default()
    })
}

#[tokio::test]
async fn health_is_open_and_everything_else_needs_the_token() {
    let h = start().await;

    let health = h.raw(Method::GET, "/health", None, Vec::new()).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(
        health.json::<serde_json::Value>(),
        serde_json::json!({"status": "healthy"})
    );

    let missing = h.raw(Method::GET, "/v2/ListKeys", None, Vec::new()).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing
            .headers
            .get("www-authenticate")
            .map(http::HeaderValue::as_bytes),
        Some(&b"Bearer"[..])
    );
    let body: ErrorBody = missing.json();
    assert_eq!(body.code, "Unauthorized");
    assert_eq!(body.path, "/v2/ListKeys");
    assert_eq!(body.region, None);

    let wrong = h
        .raw(Method::GET, "/v2/ListKeys", Some("nope"), Vec::new())
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(wrong.json::<ErrorBody>().code, "Forbidden");

    let longer = format!("{TOKEN}x");
    let wrong = h
        .raw(Method::GET, "/metrics", Some(&longer), Vec::new())
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let missing = h.raw(Method::GET, "/metrics", None, Vec::new()).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);

    let keys: ListKeysResponse = h.ok(AdminRequest::ListKeys).await;
    assert!(keys.0.is_empty());
}

#[tokio::test]
async fn metrics_report_counts_and_build() {
    let h = start().await;
    let _: GetKeyInfoResponse = h
        .ok(AdminRequest::CreateKey(CreateKeyRequest::default()))
        .await;
    let _: GetBucketInfoResponse = h
        .ok(AdminRequest::CreateBucket(CreateBucketRequest {
            global_alias: "metrics-bucket".into(),
        }))
        .await;

    let answer = h.call(&AdminRequest::Metrics).await;
    assert_eq!(answer.status, StatusCode::OK);
    let content_type = answer.headers.get("content-type").expect("content type");
    assert!(content_type.as_bytes().starts_with(b"text/plain"));
    let text = String::from_utf8(answer.body.to_vec()).expect("utf-8");
    let value = |name: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"));
        line.rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("value")
    };
    assert_eq!(value("hangar_buckets "), 1.0);
    assert_eq!(value("hangar_access_keys "), 1.0);
    assert!(value("hangar_db_transactions_total ") >= 2.0);
    assert!(value("hangar_db_commits_total ") >= 1.0);
    let build = format!(
        "hangar_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.lines().any(|l| l == build), "{text}");
    assert!(text.contains("# TYPE hangar_db_commits_total counter"));
}

#[tokio::test]
async fn key_and_bucket_lifecycle() {
    let h = start().await;

    // Keys.
    let alice: GetKeyInfoResponse = h
        .ok(AdminRequest::CreateKey(CreateKeyRequest {
            name: Some("alice".into()),
        }))
        .await;
    assert!(
        alice.secret_access_key.is_some(),
        "creation shows the secret"
    );
    assert_eq!(alice.name, "alice");
    assert!(!alice.permissions.create_bucket);
    let key_id = alice.access_key_id.clone();

    let keys: ListKeysResponse = h.ok(AdminRequest::ListKeys).await;
    assert_eq!(
        keys.0,
        vec![ListKeysItem {
            id: key_id.clone(),
            name: "alice".into()
        }]
    );

    let info: GetKeyInfoResponse = h.ok(key_by_id(&key_id)).await;
    assert_eq!(info.secret_access_key, None, "secret hidden unless asked");
    for search in ["alice", &key_id[..6]] {
        let found: GetKeyInfoResponse = h
            .ok(AdminRequest::GetKeyInfo(GetKeyInfoRequest {
                search: Some(search.into()),
                show_secret_key: true,
                ..Default::default()
            }))
            .await;
        assert_eq!(found.access_key_id, key_id);
        assert_eq!(found.secret_access_key, alice.secret_access_key);
    }

    // Buckets.
    let created: GetBucketInfoResponse = h
        .ok(AdminRequest::CreateBucket(CreateBucketRequest {
            global_alias: "photos".into(),
        }))
        .await;
    assert_eq!(created.global_aliases, vec!["photos".to_string()]);
    assert!(created.keys.is_empty());
    assert!(created.created.is_some());
    let bucket_id = created.id.clone();

    let code = h
        .fails(
            AdminRequest::CreateBucket(CreateBucketRequest {
                global_alias: "photos".into(),
            }),
            StatusCode::CONFLICT,
        )
        .await;
    assert_eq!(code, "BucketAlreadyExists");
    let code = h
        .fails(
            AdminRequest::CreateBucket(CreateBucketRequest {
                global_alias: "Bad_Name".into(),
            }),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(code, "InvalidBucketName");

    // Permissions.
    let perm = |read, write, owner| BucketKeyPerm { read, write, owner };
    let allowed: GetBucketInfoResponse = h
        .ok(AdminRequest::AllowBucketKey(BucketKeyPermRequest {
            bucket_id: bucket_id.clone(),
            access_key_id: key_id.clone(),
            permissions: perm(true, true, false),
        }))
        .await;
    assert_eq!(
        allowed.keys,
        vec![BucketInfoKey {
            access_key_id: key_id.clone(),
            name: "alice".into(),
            permissions: perm(true, true, false),
            bucket_local_aliases: vec![],
        }]
    );
    let info: GetKeyInfoResponse = h.ok(key_by_id(&key_id)).await;
    assert_eq!(info.buckets.len(), 1);
    assert_eq!(info.buckets[0].id, bucket_id);
    assert_eq!(info.buckets[0].global_aliases, vec!["photos".to_string()]);
    assert_eq!(info.buckets[0].permissions, perm(true, true, false));

    // Aliases.
    let global = |name: &str| BucketAliasRequest {
        bucket_id: bucket_id.clone(),
        alias: AliasTarget::Global {
            global_alias: name.into(),
        },
    };
    let local = BucketAliasRequest {
        bucket_id: bucket_id.clone(),
        alias: AliasTarget::Local {
            access_key_id: key_id.clone(),
            local_alias: "mine".into(),
        },
    };
    let with_alias: GetBucketInfoResponse =
        h.ok(AdminRequest::AddBucketAlias(global("pics"))).await;
    let mut names = with_alias.global_aliases.clone();
    names.sort();
    assert_eq!(names, vec!["photos".to_string(), "pics".to_string()]);
    let by_alias: GetBucketInfoResponse = h
        .ok(AdminRequest::GetBucketInfo(GetBucketInfoRequest {
            global_alias: Some("pics".into()),
            ..Default::default()
        }))
        .await;
    assert_eq!(by_alias.id, bucket_id);
    let by_search: GetBucketInfoResponse = h
        .ok(AdminRequest::GetBucketInfo(GetBucketInfoRequest {
            search: Some(bucket_id[..8].to_string()),
            ..Default::default()
        }))
        .await;
    assert_eq!(by_search.id, bucket_id);

    let with_local: GetBucketInfoResponse = h.ok(AdminRequest::AddBucketAlias(local.clone())).await;
    assert_eq!(
        with_local.keys[0].bucket_local_aliases,
        vec!["mine".to_string()]
    );
    let listed: ListBucketsResponse = h.ok(AdminRequest::ListBuckets).await;
    assert_eq!(listed.0.len(), 1);
    assert_eq!(
        listed.0[0].local_aliases,
        vec![BucketLocalAlias {
            access_key_id: key_id.clone(),
            alias: "mine".into()
        }]
    );

    let without: GetBucketInfoResponse =
        h.ok(AdminRequest::RemoveBucketAlias(global("pics"))).await;
    assert_eq!(without.global_aliases, vec!["photos".to_string()]);
    let without: GetBucketInfoResponse = h.ok(AdminRequest::RemoveBucketAlias(local.clone())).await;
    assert!(without.keys[0].bucket_local_aliases.is_empty());
    let code = h
        .fails(
            AdminRequest::RemoveBucketAlias(global("photos")),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(code, "InvalidArgument", "the last name stays");

    // Deny.
    let denied: GetBucketInfoResponse = h
        .ok(AdminRequest::DenyBucketKey(BucketKeyPermRequest {
            bucket_id: bucket_id.clone(),
            access_key_id: key_id.clone(),
            permissions: perm(false, true, false),
        }))
        .await;
    assert_eq!(denied.keys[0].permissions, perm(true, false, false));

    // Deletion.
    let _: EmptyResponse = h
        .ok(AdminRequest::DeleteBucket(DeleteBucketRequest {
            id: bucket_id.clone(),
        }))
        .await;
    assert_eq!(
        h.fails(bucket_by_id(&bucket_id), StatusCode::NOT_FOUND)
            .await,
        "NoSuchBucket"
    );
    let gone = AdminRequest::GetBucketInfo(GetBucketInfoRequest {
        global_alias: Some("photos".into()),
        ..Default::default()
    });
    assert_eq!(h.fails(gone, StatusCode::NOT_FOUND).await, "NoSuchBucket");
    let again = AdminRequest::DeleteBucket(DeleteBucketRequest { id: bucket_id });
    assert_eq!(h.fails(again, StatusCode::NOT_FOUND).await, "NoSuchBucket");
    let listed: ListBucketsResponse = h.ok(AdminRequest::ListBuckets).await;
    assert!(listed.0.is_empty());
    let info: GetKeyInfoResponse = h.ok(key_by_id(&key_id)).await;
    assert!(info.buckets.is_empty());

    let _: EmptyResponse = h
        .ok(AdminRequest::DeleteKey(DeleteKeyRequest {
            id: key_id.clone(),
        }))
        .await;
    assert_eq!(
        h.fails(key_by_id(&key_id), StatusCode::NOT_FOUND).await,
        "NoSuchAccessKey"
    );
}

#[tokio::test]
async fn keys_import_update_and_search() {
    let h = start().await;
    let import = |id: &str| {
        AdminRequest::ImportKey(ImportKeyRequest {
            access_key_id: id.into(),
            secret_access_key: "0123456789abcdef0123".into(),
            name: Some("imported".into()),
        })
    };
    let imported: GetKeyInfoResponse = h.ok(import("HKFIXED01")).await;
    assert_eq!(imported.access_key_id, "HKFIXED01");
    assert_eq!(
        imported.secret_access_key.as_deref(),
        Some("0123456789abcdef0123")
    );
    assert_eq!(
        h.fails(import("HKFIXED01"), StatusCode::CONFLICT).await,
        "KeyAlreadyExists"
    );
    assert_eq!(
        h.fails(import("x"), StatusCode::BAD_REQUEST).await,
        "InvalidArgument"
    );
    let _: GetKeyInfoResponse = h.ok(import("HKFIXED02")).await;

    // Two keys share the name and the prefix: ambiguous.
    for pattern in ["imported", "HKFIXED0"] {
        let search = AdminRequest::GetKeyInfo(GetKeyInfoRequest {
            search: Some(pattern.into()),
            ..Default::default()
        });
        assert_eq!(
            h.fails(search, StatusCode::BAD_REQUEST).await,
            "InvalidRequest"
        );
    }

    let update = |body: UpdateKeyBody| {
        AdminRequest::UpdateKey(UpdateKeyRequest {
            id: "HKFIXED01".into(),
            body,
        })
    };
    let allow = Some(KeyPerm {
        create_bucket: true,
    });
    let updated: GetKeyInfoResponse = h
        .ok(update(UpdateKeyBody {
            name: Some("renamed".into()),
            allow,
            deny: None,
        }))
        .await;
    assert_eq!(updated.name, "renamed");
    assert!(updated.permissions.create_bucket);
    assert_eq!(updated.secret_access_key, None);
    let updated: GetKeyInfoResponse = h
        .ok(update(UpdateKeyBody {
            deny: allow,
            ..Default::default()
        }))
        .await;
    assert_eq!(updated.name, "renamed");
    assert!(!updated.permissions.create_bucket);

    let missing = AdminRequest::UpdateKey(UpdateKeyRequest {
        id: "HKNOPE".into(),
        body: UpdateKeyBody::default(),
    });
    assert_eq!(
        h.fails(missing, StatusCode::NOT_FOUND).await,
        "NoSuchAccessKey"
    );
    let missing = AdminRequest::DeleteKey(DeleteKeyRequest {
        id: "HKNOPE".into(),
    });
    assert_eq!(
        h.fails(missing, StatusCode::NOT_FOUND).await,
        "NoSuchAccessKey"
    );
}

#[tokio::test]
async fn bad_requests_get_precise_errors() {
    let h = start().await;
    let post = |path: &'static str, body: &'static [u8]| {
        let h = &h;
        async move { h.raw(Method::POST, path, Some(TOKEN), body.to_vec()).await }
    };

    let bad_json = post("/v2/CreateBucket", b"{\"globalAlias\":").await;
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    let error: ErrorBody = bad_json.json();
    assert_eq!(error.code, "InvalidJson");
    assert_eq!(error.path, "/v2/CreateBucket");

    let unknown_field = post("/v2/CreateKey", br#"{"name":"a","colour":"red"}"#).await;
    assert_eq!(unknown_field.status, StatusCode::BAD_REQUEST);
    assert!(unknown_field.json::<ErrorBody>().message.contains("colour"));

    let bad_id = h.call(&bucket_by_id("not-hex")).await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);

    let wrong_method = h
        .raw(Method::GET, "/v2/CreateKey", Some(TOKEN), Vec::new())
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        wrong_method
            .headers
            .get("allow")
            .map(http::HeaderValue::as_bytes),
        Some(&b"POST"[..])
    );

    let unknown = h
        .raw(Method::GET, "/v2/Frobnicate", Some(TOKEN), Vec::new())
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json::<ErrorBody>().code, "NoSuchEndpoint");

    let unknown_param = h
        .raw(Method::GET, "/v2/ListKeys?limit=3", Some(TOKEN), Vec::new())
        .await;
    assert_eq!(unknown_param.status, StatusCode::BAD_REQUEST);

    let huge = vec![b' '; MAX_BODY_BYTES + 1];
    let too_large = h
        .raw(Method::POST, "/v2/CreateKey", Some(TOKEN), huge)
        .await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.json::<ErrorBody>().code, "PayloadTooLarge");

    let missing = AdminRequest::AllowBucketKey(BucketKeyPermRequest {
        bucket_id: "00".repeat(16),
        access_key_id: "HKNOPE".into(),
        permissions: BucketKeyPerm::default(),
    });
    assert_eq!(
        h.fails(missing, StatusCode::NOT_FOUND).await,
        "NoSuchBucket"
    );

    // Nothing was created along the way.
    let keys: ListKeysResponse = h.ok(AdminRequest::ListKeys).await;
    assert!(keys.0.is_empty());
    let buckets: ListBucketsResponse = h.ok(AdminRequest::ListBuckets).await;
    assert!(buckets.0.is_empty());
}

#[tokio::test]
async fn cancel_stops_the_server() {
    let h = start().await;
    let health = h.raw(Method::GET, "/health", None, Vec::new()).await;
    assert_eq!(health.status, StatusCode::OK);
    h.shutdown.cancel();
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), h.server)
        .await
        .expect("serve returns after cancel")
        .expect("serve task");
    assert!(result.is_ok());
    let refused = tokio::net::TcpStream::connect(h.addr).await;
    assert!(refused.is_err(), "listener closed");
}

#[tokio::test]
async fn empty_token_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (service, _service_cluster) = new_service(dir.path()).await;
    let result = serve(
        listener,
        service,
        test_cluster(),
        String::new(),
        CancellationToken::new(),
    )
    .await;
    assert!(result.is_err());
}
