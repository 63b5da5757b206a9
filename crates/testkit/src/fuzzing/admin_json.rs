//! The admin API's request parsing: arbitrary bytes as an HTTP request
//! (`AdminRequest::from_http`) and as each JSON request body type (serde_json).
//!
//! Input layout: byte 0 picks the endpoint (and the method: the endpoint's own,
//! or, rarely, the other one); the rest is `query \0 body` (no `\0`: all body).

use hangar_api_admin::api::*;
use hangar_api_admin::AdminRequest;
use http::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Endpoints, and whether each takes POST.
const ENDPOINTS: &[(&str, bool)] = &[
    ("/health", false),
    ("/metrics", false),
    ("/v2/ListKeys", false),
    ("/v2/CreateKey", true),
    ("/v2/ImportKey", true),
    ("/v2/GetKeyInfo", false),
    ("/v2/UpdateKey", true),
    ("/v2/DeleteKey", true),
    ("/v2/ListBuckets", false),
    ("/v2/CreateBucket", true),
    ("/v2/GetBucketInfo", false),
    ("/v2/DeleteBucket", true),
    ("/v2/AllowBucketKey", true),
    ("/v2/DenyBucketKey", true),
    ("/v2/AddBucketAlias", true),
    ("/v2/RemoveBucketAlias", true),
    ("/v2/GetNodeInfo", false),
    ("/v2/GetClusterStatus", false),
    ("/v2/GetClusterHealth", false),
    ("/v2/ConnectClusterNodes", true),
    ("/v2/GetClusterLayout", false),
    ("/v2/UpdateClusterLayout", true),
    ("/v2/PreviewClusterLayoutChanges", true),
    ("/v2/ApplyClusterLayout", true),
    ("/v2/RevertClusterLayout", true),
    ("/v2/GetClusterLayoutHistory", false),
    ("/v2/ClusterLayoutSkipDeadNodes", true),
    ("/v2/GetWorkerStatus", false),
    ("/v2/GetTableRoots", false),
    ("/v2/LaunchRepairOperation", true),
    ("/v2/NoSuchEndpoint", true),
];

fn json_round_trip<T>(body: &[u8])
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let Ok(value) = serde_json::from_slice::<T>(body) else {
        return;
    };
    let text = serde_json::to_vec(&value).expect("a parsed request serialises");
    let again: T = serde_json::from_slice(&text).unwrap_or_else(|e| {
        panic!(
            "{}: serialised form fails to parse: {e}: {}",
            std::any::type_name::<T>(),
            String::from_utf8_lossy(&text)
        )
    });
    assert_eq!(value, again, "{}", std::any::type_name::<T>());
}

/// Parses `data` (byte 0: the endpoint and method; then `query \0 body`) as
/// an admin request and its body as each request body type. Panics if
/// parsing panics, if a parsed request's `to_http` form does not parse back
/// to an equal request, or if a parsed body does not survive a JSON round
/// trip.
pub fn admin_json(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (path, posts) = ENDPOINTS[usize::from(selector) % ENDPOINTS.len()];
    // Selectors past the table's first wraps (>= 2 * len) swap the method.
    let swap = usize::from(selector) >= 2 * ENDPOINTS.len() && selector & 1 == 1;
    let method = if posts != swap {
        Method::POST
    } else {
        Method::GET
    };
    let (query, body) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b""[..], rest),
    };
    let query = std::str::from_utf8(query).ok();

    if let Ok(request) = AdminRequest::from_http(&method, path, query, body) {
        let parts = request.to_http();
        let (p, q) = match parts.path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (parts.path_and_query.as_str(), None),
        };
        let b = parts.body.unwrap_or_default();
        let again = AdminRequest::from_http(&parts.method, p, q, &b).unwrap_or_else(|e| {
            panic!(
                "{}: to_http form fails to parse: {e}: {} {} {:?}",
                request.name(),
                parts.method,
                parts.path_and_query,
                String::from_utf8_lossy(&b)
            )
        });
        assert_eq!(request, again);
    }

    // Every JSON body type directly.
    json_round_trip::<CreateKeyRequest>(body);
    json_round_trip::<ImportKeyRequest>(body);
    json_round_trip::<UpdateKeyBody>(body);
    json_round_trip::<CreateBucketRequest>(body);
    json_round_trip::<BucketKeyPermRequest>(body);
    json_round_trip::<BucketAliasRequest>(body);
    json_round_trip::<ConnectClusterNodesRequest>(body);
    json_round_trip::<UpdateClusterLayoutRequest>(body);
    json_round_trip::<ApplyClusterLayoutRequest>(body);
    json_round_trip::<ClusterLayoutSkipDeadNodesRequest>(body);
    json_round_trip::<LaunchRepairOperationRequest>(body);
}
