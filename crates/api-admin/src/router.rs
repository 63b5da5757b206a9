//! HTTP <-> [`AdminRequest`]: the one table of paths and methods, the parsing of
//! query strings and JSON bodies, and the inverse used by clients.

use http::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::{
    AdminRequest, DeleteBucketRequest, DeleteKeyRequest, GetBucketInfoRequest, GetKeyInfoRequest,
    GetNodeInfoRequest, UpdateKeyRequest,
};
use crate::error::{Error, Result};

/// Parses what remains of a request once its endpoint is known.
type Parser = fn(&mut Query, &[u8]) -> Result<AdminRequest>;

/// The endpoint at `path`: its method and its parser.
fn route(path: &str) -> Option<(Method, Parser)> {
    use AdminRequest as R;
    let (method, parse): (Method, Parser) = match path {
        "/health" => (Method::GET, |_, _| Ok(R::Health)),
        "/metrics" => (Method::GET, |_, _| Ok(R::Metrics)),
        "/v2/ListKeys" => (Method::GET, |_, _| Ok(R::ListKeys)),
        "/v2/CreateKey" => (Method::POST, |_, b| Ok(R::CreateKey(json(b)?))),
        "/v2/ImportKey" => (Method::POST, |_, b| Ok(R::ImportKey(json(b)?))),
        "/v2/GetKeyInfo" => (Method::GET, |q, _| {
            let request = GetKeyInfoRequest {
                id: q.take("id")?,
                search: q.take("search")?,
                show_secret_key: q.take_bool("showSecretKey")?,
            };
            if request.id.is_some() == request.search.is_some() {
                return Err(Error::bad_request("give exactly one of id and search"));
            }
            Ok(R::GetKeyInfo(request))
        }),
        "/v2/UpdateKey" => (Method::POST, |q, b| {
            Ok(R::UpdateKey(UpdateKeyRequest {
                id: q.require("id")?,
                body: json(b)?,
            }))
        }),
        "/v2/DeleteKey" => (Method::POST, |q, _| {
            Ok(R::DeleteKey(DeleteKeyRequest {
                id: q.require("id")?,
            }))
        }),
        "/v2/ListBuckets" => (Method::GET, |_, _| Ok(R::ListBuckets)),
        "/v2/CreateBucket" => (Method::POST, |_, b| Ok(R::CreateBucket(json(b)?))),
        "/v2/GetBucketInfo" => (Method::GET, |q, _| {
            let request = GetBucketInfoRequest {
                id: q.take("id")?,
                global_alias: q.take("globalAlias")?,
                search: q.take("search")?,
            };
            let given = [&request.id, &request.global_alias, &request.search]
                .iter()
                .filter(|p| p.is_some())
                .count();
            if given != 1 {
                return Err(Error::bad_request(
                    "give exactly one of id, globalAlias and search",
                ));
            }
            Ok(R::GetBucketInfo(request))
        }),
        "/v2/DeleteBucket" => (Method::POST, |q, _| {
            Ok(R::DeleteBucket(DeleteBucketRequest {
                id: q.require("id")?,
            }))
        }),
        "/v2/AllowBucketKey" => (Method::POST, |_, b| Ok(R::AllowBucketKey(json(b)?))),
        "/v2/DenyBucketKey" => (Method::POST, |_, b| Ok(R::DenyBucketKey(json(b)?))),
        "/v2/AddBucketAlias" => (Method::POST, |_, b| Ok(R::AddBucketAlias(json(b)?))),
        "/v2/RemoveBucketAlias" => (Method::POST, |_, b| Ok(R::RemoveBucketAlias(json(b)?))),
        "/v2/GetNodeInfo" => (Method::GET, |q, _| {
            Ok(R::GetNodeInfo(GetNodeInfoRequest {
                node: q.require("node")?,
            }))
        }),
        "/v2/GetClusterStatus" => (Method::GET, |_, _| Ok(R::GetClusterStatus)),
        "/v2/GetClusterHealth" => (Method::GET, |_, _| Ok(R::GetClusterHealth)),
        "/v2/ConnectClusterNodes" => (Method::POST, |_, b| {
            Ok(R::ConnectClusterNodes(json_required(b)?))
        }),
        "/v2/GetClusterLayout" => (Method::GET, |_, _| Ok(R::GetClusterLayout)),
        "/v2/UpdateClusterLayout" => (Method::POST, |_, b| Ok(R::UpdateClusterLayout(json(b)?))),
        "/v2/PreviewClusterLayoutChanges" => (Method::POST, |_, b| {
            no_body(b)?;
            Ok(R::PreviewClusterLayoutChanges)
        }),
        "/v2/ApplyClusterLayout" => (Method::POST, |_, b| Ok(R::ApplyClusterLayout(json(b)?))),
        "/v2/RevertClusterLayout" => (Method::POST, |_, b| {
            no_body(b)?;
            Ok(R::RevertClusterLayout)
        }),
        "/v2/GetClusterLayoutHistory" => (Method::GET, |_, _| Ok(R::GetClusterLayoutHistory)),
        "/v2/ClusterLayoutSkipDeadNodes" => (Method::POST, |_, b| {
            Ok(R::ClusterLayoutSkipDeadNodes(json_required(b)?))
        }),
        "/v2/GetWorkerStatus" => (Method::GET, |_, _| Ok(R::GetWorkerStatus)),
        "/v2/GetTableRoots" => (Method::GET, |_, _| Ok(R::GetTableRoots)),
        "/v2/LaunchRepairOperation" => (Method::POST, |_, b| {
            Ok(R::LaunchRepairOperation(json_required(b)?))
        }),
        _ => return None,
    };
    Some((method, parse))
}

/// An HTTP request, in the parts a client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpParts {
    /// The method.
    pub method: Method,
    /// Path and query string (`/v2/GetKeyInfo?id=..`).
    pub path_and_query: String,
    /// JSON body, if the endpoint takes one.
    pub body: Option<Vec<u8>>,
}

impl AdminRequest {
    /// Whether the endpoint at `path` needs the bearer token (all but `/health`).
    pub fn needs_auth(path: &str) -> bool {
        path != "/health"
    }

    /// Parses a request. `body` is the whole (size-checked) body; an empty body
    /// reads as `{}`.
    pub fn from_http(
        method: &Method,
        path: &str,
        query: Option<&str>,
        body: &[u8],
    ) -> Result<Self> {
        let (allowed, parse) = route(path).ok_or_else(|| Error::NoSuchEndpoint {
            path: path.to_string(),
        })?;
        if *method != allowed {
            return Err(Error::MethodNotAllowed {
                method: method.clone(),
                allowed,
            });
        }
        let mut query = Query::parse(query.unwrap_or(""))?;
        let request = parse(&mut query, body)?;
        query.finish()?;
        Ok(request)
    }

    /// The HTTP form of this request (the inverse of [`AdminRequest::from_http`]).
    pub fn to_http(&self) -> HttpParts {
        use AdminRequest as R;
        let get = |path: &str, query: &[(&str, Option<&str>)]| HttpParts {
            method: Method::GET,
            path_and_query: with_query(path, query),
            body: None,
        };
        let post = |path: &str, query: &[(&str, Option<&str>)], body: Vec<u8>| HttpParts {
            method: Method::POST,
            path_and_query: with_query(path, query),
            body: Some(body),
        };
        match self {
            R::Health => get("/health", &[]),
            R::Metrics => get("/metrics", &[]),
            R::ListKeys => get("/v2/ListKeys", &[]),
            R::CreateKey(r) => post("/v2/CreateKey", &[], to_json(r)),
            R::ImportKey(r) => post("/v2/ImportKey", &[], to_json(r)),
            R::GetKeyInfo(r) => get(
                "/v2/GetKeyInfo",
                &[
                    ("id", r.id.as_deref()),
                    ("search", r.search.as_deref()),
                    ("showSecretKey", r.show_secret_key.then_some("true")),
                ],
            ),
            R::UpdateKey(r) => post("/v2/UpdateKey", &[("id", Some(&r.id))], to_json(&r.body)),
            R::DeleteKey(r) => post("/v2/DeleteKey", &[("id", Some(&r.id))], Vec::new()),
            R::ListBuckets => get("/v2/ListBuckets", &[]),
            R::CreateBucket(r) => post("/v2/CreateBucket", &[], to_json(r)),
            R::GetBucketInfo(r) => get(
                "/v2/GetBucketInfo",
                &[
                    ("id", r.id.as_deref()),
                    ("globalAlias", r.global_alias.as_deref()),
                    ("search", r.search.as_deref()),
                ],
            ),
            R::DeleteBucket(r) => post("/v2/DeleteBucket", &[("id", Some(&r.id))], Vec::new()),
            R::AllowBucketKey(r) => post("/v2/AllowBucketKey", &[], to_json(r)),
            R::DenyBucketKey(r) => post("/v2/DenyBucketKey", &[], to_json(r)),
            R::AddBucketAlias(r) => post("/v2/AddBucketAlias", &[], to_json(r)),
            R::RemoveBucketAlias(r) => post("/v2/RemoveBucketAlias", &[], to_json(r)),
            R::GetNodeInfo(r) => get("/v2/GetNodeInfo", &[("node", Some(&r.node))]),
            R::GetClusterStatus => get("/v2/GetClusterStatus", &[]),
            R::GetClusterHealth => get("/v2/GetClusterHealth", &[]),
            R::ConnectClusterNodes(r) => post("/v2/ConnectClusterNodes", &[], to_json(r)),
            R::GetClusterLayout => get("/v2/GetClusterLayout", &[]),
            R::UpdateClusterLayout(r) => post("/v2/UpdateClusterLayout", &[], to_json(r)),
            R::PreviewClusterLayoutChanges => {
                post("/v2/PreviewClusterLayoutChanges", &[], Vec::new())
            }
            R::ApplyClusterLayout(r) => post("/v2/ApplyClusterLayout", &[], to_json(r)),
            R::RevertClusterLayout => post("/v2/RevertClusterLayout", &[], Vec::new()),
            R::GetClusterLayoutHistory => get("/v2/GetClusterLayoutHistory", &[]),
            R::ClusterLayoutSkipDeadNodes(r) => {
                post("/v2/ClusterLayoutSkipDeadNodes", &[], to_json(r))
            }
            R::GetWorkerStatus => get("/v2/GetWorkerStatus", &[]),
            R::GetTableRoots => get("/v2/GetTableRoots", &[]),
            R::LaunchRepairOperation(r) => post("/v2/LaunchRepairOperation", &[], to_json(r)),
        }
    }
}

/// Parses a JSON body (empty reads as `{}`).
fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|source| Error::InvalidJson { source })
}

/// Parses a JSON body that must be there (an empty one is refused).
fn json_required<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::bad_request("this endpoint needs a JSON body"));
    }
    json(body)
}

/// Refuses a body on an endpoint that takes none (`{}` is accepted, as some
/// clients always send one).
fn no_body(body: &[u8]) -> Result<()> {
    let value: serde_json::Value = json(body)?;
    match value.as_object() {
        Some(o) if o.is_empty() => Ok(()),
        _ => Err(Error::bad_request("this endpoint takes no body (or {})")),
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("request types serialise to JSON without fail")
}

/// `path` with the given parameters (those that are `Some`) as a query string.
fn with_query(path: &str, params: &[(&str, Option<&str>)]) -> String {
    let mut out = path.to_string();
    let mut sep = '?';
    for (name, value) in params {
        if let Some(value) = value {
            out.push(sep);
            out.push_str(name);
            out.push('=');
            out.push_str(&urlencoding::encode(value));
            sep = '&';
        }
    }
    out
}

/// The parameters of a query string, consumed by the parsers; any left over is
/// an error.
#[derive(Debug)]
struct Query {
    params: Vec<(String, String)>,
}

impl Query {
    fn parse(query: &str) -> Result<Self> {
        let mut params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            params.push((decode(name)?, decode(value)?));
        }
        Ok(Query { params })
    }

    /// Removes and returns parameter `name` (an error if given twice).
    fn take(&mut self, name: &str) -> Result<Option<String>> {
        let mut found = None;
        let mut error = None;
        self.params.retain(|(n, v)| {
            if n != name {
                return true;
            }
            if found.replace(v.clone()).is_some() {
                error = Some(Error::bad_request(format!(
                    "query parameter {name} given twice"
                )));
            }
            false
        });
        match error {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }

    fn require(&mut self, name: &str) -> Result<String> {
        self.take(name)?
            .ok_or_else(|| Error::bad_request(format!("missing query parameter {name}")))
    }

    fn take_bool(&mut self, name: &str) -> Result<bool> {
        match self.take(name)?.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") | Some("") => Ok(true),
            Some(other) => Err(Error::bad_request(format!(
                "query parameter {name} must be true or false, not {other:?}"
            ))),
        }
    }

    fn finish(self) -> Result<()> {
        match self.params.first() {
            None => Ok(()),
            Some((name, _)) => Err(Error::bad_request(format!(
                "unknown query parameter {name}"
            ))),
        }
    }
}

/// Percent-decodes a query component (`+` is a space).
fn decode(s: &str) -> Result<String> {
    let s = s.replace('+', " ");
    urlencoding::decode(&s)
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| Error::bad_request("query string is not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::*;

    fn round_trip(request: &AdminRequest) {
        let parts = request.to_http();
        let (path, query) = match parts.path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (parts.path_and_query.as_str(), None),
        };
        let body = parts.body.unwrap_or_default();
        let parsed = AdminRequest::from_http(&parts.method, path, query, &body)
            .unwrap_or_else(|e| panic!("{}: {e}", request.name()));
        assert_eq!(&parsed, request);
    }

    #[test]
    fn every_request_round_trips_through_http() {
        let perm = BucketKeyPerm {
            read: true,
            write: false,
            owner: true,
        };
        let requests = vec![
            AdminRequest::Health,
            AdminRequest::Metrics,
            AdminRequest::ListKeys,
            AdminRequest::CreateKey(CreateKeyRequest {
                name: Some("a b&c=d+e".into()),
            }),
            AdminRequest::CreateKey(CreateKeyRequest { name: None }),
            AdminRequest::ImportKey(ImportKeyRequest {
                access_key_id: "HKabc".into(),
                secret_access_key: "s".repeat(20),
                name: None,
            }),
            AdminRequest::GetKeyInfo(GetKeyInfoRequest {
                id: None,
                search: Some("é?&=+%".into()),
                show_secret_key: true,
            }),
            AdminRequest::UpdateKey(UpdateKeyRequest {
                id: "HK1".into(),
                body: UpdateKeyBody {
                    name: Some("n".into()),
                    allow: Some(KeyPerm {
                        create_bucket: true,
                    }),
                    deny: None,
                },
            }),
            AdminRequest::DeleteKey(DeleteKeyRequest { id: "HK1".into() }),
            AdminRequest::ListBuckets,
            AdminRequest::CreateBucket(CreateBucketRequest {
                global_alias: "b".into(),
            }),
            AdminRequest::GetBucketInfo(GetBucketInfoRequest {
                global_alias: Some("b".into()),
                ..Default::default()
            }),
            AdminRequest::DeleteBucket(DeleteBucketRequest { id: "00".into() }),
            AdminRequest::AllowBucketKey(BucketKeyPermRequest {
                bucket_id: "00".into(),
                access_key_id: "HK1".into(),
                permissions: perm,
            }),
            AdminRequest::DenyBucketKey(BucketKeyPermRequest {
                bucket_id: "00".into(),
                access_key_id: "HK1".into(),
                permissions: perm,
            }),
            AdminRequest::AddBucketAlias(BucketAliasRequest {
                bucket_id: "00".into(),
                alias: AliasTarget::Global {
                    global_alias: "g".into(),
                },
            }),
            AdminRequest::RemoveBucketAlias(BucketAliasRequest {
                bucket_id: "00".into(),
                alias: AliasTarget::Local {
                    access_key_id: "HK1".into(),
                    local_alias: "l".into(),
                },
            }),
            AdminRequest::GetNodeInfo(GetNodeInfoRequest {
                node: "self".into(),
            }),
            AdminRequest::GetClusterStatus,
            AdminRequest::GetClusterHealth,
            AdminRequest::ConnectClusterNodes(ConnectClusterNodesRequest(vec![
                "ab@127.0.0.1:3901".into(),
            ])),
            AdminRequest::GetClusterLayout,
            AdminRequest::UpdateClusterLayout(UpdateClusterLayoutRequest {
                roles: vec![
                    NodeRoleChange {
                        id: "ab".into(),
                        action: RoleChangeAction::Remove,
                    },
                    NodeRoleChange {
                        id: "cd".into(),
                        action: RoleChangeAction::Set {
                            zone: "dc1".into(),
                            capacity: None,
                            tags: vec!["t".into()],
                        },
                    },
                    NodeRoleChange {
                        id: "ef".into(),
                        action: RoleChangeAction::Set {
                            zone: "dc2".into(),
                            capacity: Some(1 << 40),
                            tags: vec![],
                        },
                    },
                ],
                parameters: Some(LayoutParametersUpdate {
                    zone_redundancy: Some(ZoneRedundancy::AtLeast(2)),
                    replication_factor: Some(3),
                }),
            }),
            AdminRequest::UpdateClusterLayout(UpdateClusterLayoutRequest::default()),
            AdminRequest::PreviewClusterLayoutChanges,
            AdminRequest::ApplyClusterLayout(ApplyClusterLayoutRequest { version: 7 }),
            AdminRequest::RevertClusterLayout,
            AdminRequest::GetClusterLayoutHistory,
            AdminRequest::ClusterLayoutSkipDeadNodes(ClusterLayoutSkipDeadNodesRequest {
                version: 3,
                allow_missing_data: true,
            }),
            AdminRequest::GetWorkerStatus,
            AdminRequest::GetTableRoots,
            AdminRequest::LaunchRepairOperation(LaunchRepairOperationRequest {
                repair_type: RepairType::Scrub,
            }),
        ];
        for r in &requests {
            round_trip(r);
        }
    }

    #[test]
    fn bad_requests_are_refused() {
        /// Method, path, query, body, expected error code.
        type Case = (
            Method,
            &'static str,
            Option<&'static str>,
            &'static [u8],
            &'static str,
        );
        let post = Method::POST;
        let get = Method::GET;
        let cases: Vec<Case> = vec![
            (get.clone(), "/v2/Nope", None, b"", "NoSuchEndpoint"),
            (get.clone(), "/v2/CreateKey", None, b"", "MethodNotAllowed"),
            (post.clone(), "/v2/CreateKey", None, b"{", "InvalidJson"),
            (
                post.clone(),
                "/v2/CreateKey",
                None,
                br#"{"nmae":"x"}"#,
                "InvalidJson",
            ),
            (post.clone(), "/v2/CreateBucket", None, b"{}", "InvalidJson"),
            (
                get.clone(),
                "/v2/ListKeys",
                Some("x=1"),
                b"",
                "InvalidRequest",
            ),
            (get.clone(), "/v2/GetKeyInfo", None, b"", "InvalidRequest"),
            (
                get.clone(),
                "/v2/GetKeyInfo",
                Some("id=a&id=b"),
                b"",
                "InvalidRequest",
            ),
            (
                get.clone(),
                "/v2/GetBucketInfo",
                Some("id=a&search=b"),
                b"",
                "InvalidRequest",
            ),
            (post.clone(), "/v2/DeleteKey", None, b"", "InvalidRequest"),
            (
                post.clone(),
                "/v2/AddBucketAlias",
                None,
                br#"{"bucketId":"00","localAlias":"x"}"#,
                "InvalidJson",
            ),
            (get.clone(), "/v2/GetNodeInfo", None, b"", "InvalidRequest"),
            (
                post.clone(),
                "/v2/GetClusterStatus",
                None,
                b"",
                "MethodNotAllowed",
            ),
            (
                post.clone(),
                "/v2/ConnectClusterNodes",
                None,
                b"",
                "InvalidRequest",
            ),
            (
                post.clone(),
                "/v2/UpdateClusterLayout",
                None,
                br#"{"roles":[{"id":"ab","zone":"z","capacity":1,"extra":0}]}"#,
                "InvalidJson",
            ),
            (
                post.clone(),
                "/v2/UpdateClusterLayout",
                None,
                br#"{"parameters":{"zoneRedundancy":{"atMost":2}}}"#,
                "InvalidJson",
            ),
            (
                post.clone(),
                "/v2/ApplyClusterLayout",
                None,
                b"",
                "InvalidJson",
            ),
            (
                post.clone(),
                "/v2/RevertClusterLayout",
                None,
                b"1",
                "InvalidRequest",
            ),
        ];
        for (method, path, query, body, code) in cases {
            match AdminRequest::from_http(&method, path, query, body) {
                Ok(r) => panic!("{path} {query:?}: accepted as {r:?}"),
                Err(e) => assert_eq!(e.code_and_status().0, code, "{path} {query:?}: {e}"),
            }
        }
    }
}
