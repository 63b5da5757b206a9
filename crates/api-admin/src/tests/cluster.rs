//! End-to-end tests of the node, cluster and layout endpoints, over the
//! in-memory network of the harness.

use super::*;

impl Harness {
    /// Sends `request`, expects `status`, returns the error.
    async fn error(&self, request: AdminRequest, status: StatusCode) -> ErrorBody {
        let answer = self.call(&request).await;
        assert_eq!(
            answer.status,
            status,
            "{}: {}",
            request.name(),
            String::from_utf8_lossy(&answer.body)
        );
        answer.json()
    }

    /// POSTs `body` to `path` with the token; returns status and error.
    async fn post_raw(&self, path: &str, body: &str) -> (StatusCode, ErrorBody) {
        let answer = self
            .raw(Method::POST, path, Some(TOKEN), body.as_bytes().to_vec())
            .await;
        assert!(
            !answer.status.is_success(),
            "{path} {body}: accepted: {}",
            String::from_utf8_lossy(&answer.body)
        );
        (answer.status, answer.json())
    }

    async fn layout(&self) -> GetClusterLayoutResponse {
        self.ok(AdminRequest::GetClusterLayout).await
    }

    /// A second node on the harness's network, connected to the first.
    async fn join_second_node(&self) -> std::sync::Arc<hangar_cluster::System> {
        let other = test_node(&self.net, &self.secret);
        let peer = format!("{}@{}", other.id().to_hex(), other.rpc_addr());
        let outcome: ConnectClusterNodesResponse = self
            .ok(AdminRequest::ConnectClusterNodes(
                ConnectClusterNodesRequest(vec![peer]),
            ))
            .await;
        assert_eq!(
            outcome.0,
            vec![ConnectNodeResponse {
                success: true,
                error: None
            }]
        );
        other
    }
}

fn update(roles: Vec<NodeRoleChange>, parameters: Option<LayoutParametersUpdate>) -> AdminRequest {
    AdminRequest::UpdateClusterLayout(UpdateClusterLayoutRequest { roles, parameters })
}

fn set(id: &str, zone: &str, capacity: Option<u64>) -> NodeRoleChange {
    NodeRoleChange {
        id: id.to_string(),
        action: RoleChangeAction::Set {
            zone: zone.to_string(),
            capacity,
            tags: vec!["t1".to_string()],
        },
    }
}

fn remove(id: &str) -> NodeRoleChange {
    NodeRoleChange {
        id: id.to_string(),
        action: RoleChangeAction::Remove,
    }
}

fn apply(version: u64) -> AdminRequest {
    AdminRequest::ApplyClusterLayout(ApplyClusterLayoutRequest { version })
}

/// A one-digit hex prefix `id` does not start with.
fn unmatched_prefix(id: &str) -> String {
    (0..16u8)
        .map(|d| format!("{d:x}"))
        .find(|p| !id.starts_with(p.as_str()))
        .expect("an id starts with one digit")
}

#[tokio::test]
async fn node_info_status_and_health_of_one_node() {
    let h = start().await;
    let me = h.cluster.id().to_hex();

    let info: GetNodeInfoResponse = h
        .ok(AdminRequest::GetNodeInfo(GetNodeInfoRequest {
            node: "self".into(),
        }))
        .await;
    assert!(info.error.is_empty());
    let mine = info.success.get(&me).expect("this node");
    assert_eq!(mine.node_id, me);
    assert_eq!(mine.rpc_addr, h.cluster.rpc_addr().to_string());
    assert_eq!(mine.rpc_peer, format!("{me}@{}", mine.rpc_addr));
    assert_eq!(mine.hangar_version, env!("CARGO_PKG_VERSION"));
    for node in [&me[..10], "*", me.as_str()] {
        let same: GetNodeInfoResponse = h
            .ok(AdminRequest::GetNodeInfo(GetNodeInfoRequest {
                node: node.to_string(),
            }))
            .await;
        assert_eq!(same, info, "{node}");
    }
    let nobody = h
        .error(
            AdminRequest::GetNodeInfo(GetNodeInfoRequest {
                node: unmatched_prefix(&me),
            }),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(nobody.code, "NoSuchNode");
    let missing = h
        .raw(Method::GET, "/v2/GetNodeInfo", Some(TOKEN), Vec::new())
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.json::<ErrorBody>().message.contains("node"));

    let status: GetClusterStatusResponse = h.ok(AdminRequest::GetClusterStatus).await;
    assert_eq!(status.layout_version, 0);
    assert_eq!(status.nodes.len(), 1);
    let n = &status.nodes[0];
    assert_eq!(n.id, me);
    assert!(n.is_up);
    assert_eq!(n.role, None);
    assert_eq!(n.stored_partitions, 0);
    assert_eq!(n.rtt_ms, Some(0.0));
    assert_eq!(n.last_seen_secs_ago, Some(0));
    assert_eq!(n.layout_version, Some(0));
    let json: serde_json::Value = h.call(&AdminRequest::GetClusterStatus).await.json();
    assert!(json["nodes"][0].get("lastSeenSecsAgo").is_some(), "{json}");
    assert!(json["nodes"][0].get("isUp").is_some(), "{json}");

    let health: GetClusterHealthResponse = h.ok(AdminRequest::GetClusterHealth).await;
    assert_eq!(
        health,
        GetClusterHealthResponse {
            status: "unavailable".into(),
            known_nodes: 1,
            connected_nodes: 1,
            storage_nodes: 0,
            storage_nodes_up: 0,
            partitions: 0,
            partitions_quorum: 0,
            partitions_all_ok: 0,
        }
    );
}

#[tokio::test]
async fn connect_reports_each_node_and_status_lists_them() {
    let h = start().await;
    let other = test_node(&h.net, &h.secret);
    let good = format!("{}@{}", other.id().to_hex(), other.rpc_addr());
    let unknown_id = format!("{}@{}", "ab".repeat(32), other.rpc_addr());
    let outcome: ConnectClusterNodesResponse = h
        .ok(AdminRequest::ConnectClusterNodes(
            ConnectClusterNodesRequest(vec![good, "not-a-peer".into(), unknown_id]),
        ))
        .await;
    assert_eq!(outcome.0.len(), 3);
    assert!(outcome.0[0].success, "{:?}", outcome.0[0]);
    assert_eq!(outcome.0[0].error, None);
    assert!(!outcome.0[1].success);
    assert!(
        outcome.0[1]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("<node id>@<host:port>")),
        "{:?}",
        outcome.0[1]
    );
    assert!(!outcome.0[2].success, "wrong node at that address");
    assert!(outcome.0[2].error.is_some());

    let status: GetClusterStatusResponse = h.ok(AdminRequest::GetClusterStatus).await;
    let theirs = status
        .nodes
        .iter()
        .find(|n| n.id == other.id().to_hex())
        .expect("the connected node is listed");
    assert!(theirs.is_up);
    assert_eq!(theirs.addr, Some(other.rpc_addr().to_string()));
    let health: GetClusterHealthResponse = h.ok(AdminRequest::GetClusterHealth).await;
    assert_eq!(health.connected_nodes, 2);

    // Node info only describes the node answering.
    let info: GetNodeInfoResponse = h
        .ok(AdminRequest::GetNodeInfo(GetNodeInfoRequest {
            node: "*".into(),
        }))
        .await;
    assert_eq!(info.success.len(), 1);
    assert!(info.error.contains_key(&other.id().to_hex()));

    let empty = h
        .raw(
            Method::POST,
            "/v2/ConnectClusterNodes",
            Some(TOKEN),
            Vec::new(),
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(empty.json::<ErrorBody>().code, "InvalidRequest");
}

#[tokio::test]
async fn layout_is_staged_previewed_applied_reverted_and_kept() {
    let h = start().await;
    let other = h.join_second_node().await;
    let me = h.cluster.id().to_hex();
    let them = other.id().to_hex();

    let empty = h.layout().await;
    assert_eq!(empty.version, 0);
    assert!(empty.roles.is_empty() && empty.staged_role_changes.is_empty());
    assert_eq!(
        empty.parameters,
        LayoutParameters {
            zone_redundancy: ZoneRedundancy::Maximum,
            replication_factor: 1
        }
    );
    let nothing = h
        .error(
            AdminRequest::PreviewClusterLayoutChanges,
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(nothing.code, "NothingStaged");
    assert!(nothing.message.contains("preview"), "{}", nothing.message);

    // Stage: this node by a prefix, the other as a gateway by its full id.
    let staged: GetClusterLayoutResponse = h
        .ok(update(
            vec![set(&me[..8], "dc1", Some(1 << 40)), set(&them, "dc2", None)],
            None,
        ))
        .await;
    assert_eq!(staged.version, 0);
    let mut expected = vec![set(&me, "dc1", Some(1 << 40)), set(&them, "dc2", None)];
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(staged.staged_role_changes, expected);
    let json: serde_json::Value = h.call(&AdminRequest::GetClusterLayout).await.json();
    assert!(
        json["stagedRoleChanges"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["capacity"].is_null())),
        "a gateway has capacity null: {json}"
    );

    let preview: PreviewClusterLayoutChangesResponse =
        h.ok(AdminRequest::PreviewClusterLayoutChanges).await;
    assert_eq!(preview.message[0], "Layout version 0 -> 1");
    assert!(
        preview
            .message
            .iter()
            .any(|l| l.contains("Usable capacity")),
        "{:?}",
        preview.message
    );
    assert_eq!(preview.new_layout.version, 1);
    assert!(preview.new_layout.staged_role_changes.is_empty());
    let role = |layout: &GetClusterLayoutResponse, id: &str| {
        layout.roles.iter().find(|r| r.id == id).cloned()
    };
    let mine = role(&preview.new_layout, &me).expect("this node in the preview");
    assert_eq!(mine.stored_partitions, 256);
    assert_eq!(
        role(&preview.new_layout, &them).map(|r| r.usable_capacity),
        Some(None)
    );
    assert_eq!(h.layout().await, staged, "preview changes nothing");

    // The wrong version is refused and changes nothing.
    let mismatch = h.error(apply(2), StatusCode::CONFLICT).await;
    assert_eq!(mismatch.code, "LayoutVersionMismatch");
    assert!(
        mismatch.message.contains("version 1, not 2"),
        "{}",
        mismatch.message
    );
    assert_eq!(h.layout().await, staged);

    let applied: ApplyClusterLayoutResponse = h.ok(apply(1)).await;
    assert_eq!(applied.message, preview.message);
    assert_eq!(applied.layout, preview.new_layout);
    assert_eq!(h.layout().await, preview.new_layout);
    let mine = role(&applied.layout, &me).expect("this node");
    assert_eq!(
        mine.usable_capacity,
        Some(256 * applied.layout.partition_size)
    );
    assert!(applied.layout.partition_size > 0);

    let status: GetClusterStatusResponse = h.ok(AdminRequest::GetClusterStatus).await;
    assert_eq!(status.layout_version, 1);
    let me_now = status.nodes.iter().find(|n| n.id == me).expect("me");
    assert_eq!(
        me_now.role,
        Some(NodeAssignedRole {
            zone: "dc1".into(),
            capacity: Some(1 << 40),
            tags: vec!["t1".into()]
        })
    );
    assert_eq!(me_now.stored_partitions, 256);
    let health: GetClusterHealthResponse = h.ok(AdminRequest::GetClusterHealth).await;
    assert_eq!(health.status, "healthy");
    assert_eq!((health.storage_nodes, health.storage_nodes_up), (1, 1));
    assert_eq!(health.partitions_all_ok, 256);

    // Parameters, then revert.
    let with_params: GetClusterLayoutResponse = h
        .ok(update(
            vec![],
            Some(LayoutParametersUpdate {
                zone_redundancy: Some(ZoneRedundancy::AtLeast(1)),
                replication_factor: None,
            }),
        ))
        .await;
    assert_eq!(
        with_params.staged_parameters,
        Some(LayoutParameters {
            zone_redundancy: ZoneRedundancy::AtLeast(1),
            replication_factor: 1
        })
    );
    let reverted: GetClusterLayoutResponse = h.ok(AdminRequest::RevertClusterLayout).await;
    assert_eq!(reverted, applied.layout);
    let again = h
        .error(AdminRequest::RevertClusterLayout, StatusCode::BAD_REQUEST)
        .await;
    assert_eq!(again.code, "NothingStaged");
    assert!(again.message.contains("revert"), "{}", again.message);

    // An impossible layout is refused at preview and at apply.
    let _: GetClusterLayoutResponse = h
        .ok(update(
            vec![],
            Some(LayoutParametersUpdate {
                zone_redundancy: None,
                replication_factor: Some(2),
            }),
        ))
        .await;
    for request in [AdminRequest::PreviewClusterLayoutChanges, apply(2)] {
        let impossible = h.error(request, StatusCode::BAD_REQUEST).await;
        assert_eq!(impossible.code, "ImpossibleLayout");
        assert!(
            impossible
                .message
                .contains("1 storage nodes cannot hold 2 replicas"),
            "{}",
            impossible.message
        );
    }
    let _: GetClusterLayoutResponse = h.ok(AdminRequest::RevertClusterLayout).await;

    // Remove the gateway by a prefix and apply.
    let _: GetClusterLayoutResponse = h.ok(update(vec![remove(&them[..12])], None)).await;
    let second: ApplyClusterLayoutResponse = h.ok(apply(2)).await;
    assert_eq!(second.layout.version, 2);
    assert!(role(&second.layout, &them).is_none());

    let history: GetClusterLayoutHistoryResponse =
        h.ok(AdminRequest::GetClusterLayoutHistory).await;
    assert_eq!(history.current_version, 2);
    let summary: Vec<(u64, &str, usize, usize)> = history
        .versions
        .iter()
        .map(|v| {
            (
                v.version,
                v.status.as_str(),
                v.storage_nodes,
                v.gateway_nodes,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, "historical", 0, 0),
            (1, "draining", 1, 1),
            (2, "current", 1, 0)
        ]
    );
    // Version 1 drains until every node has synced version 2, which no node
    // has said.
    assert!(history.update_trackers.values().all(|t| t.sync == 0));
    assert_eq!(
        history.versions[2].usable_capacity,
        256 * second.layout.partition_size
    );
}

#[tokio::test]
async fn bad_layout_requests_get_precise_errors_and_change_nothing() {
    let h = start().await;
    let me = h.cluster.id().to_hex();
    let nobody = unmatched_prefix(&me);
    let before = h.layout().await;

    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "/v2/UpdateClusterLayout",
            r#"{"roles":[],"colour":"red"}"#.into(),
            "InvalidJson",
            "colour",
        ),
        (
            "/v2/UpdateClusterLayout",
            format!(r#"{{"roles":[{{"id":"{me}","zone":"a","capacity":1,"colour":1}}]}}"#),
            "InvalidJson",
            "colour",
        ),
        (
            "/v2/UpdateClusterLayout",
            r#"{"parameters":{"zoneRedundancy":"minimum"}}"#.into(),
            "InvalidJson",
            "minimum",
        ),
        (
            "/v2/UpdateClusterLayout",
            r#"{"parameters":{"zoneRedundancy":{"atLeast":0}}}"#.into(),
            "InvalidLayoutParameter",
            "zone redundancy 0",
        ),
        (
            "/v2/UpdateClusterLayout",
            r#"{"parameters":{"zoneRedundancy":{"atLeast":2}}}"#.into(),
            "InvalidLayoutParameter",
            "replication factor 1",
        ),
        (
            "/v2/UpdateClusterLayout",
            r#"{"parameters":{"replicationFactor":0}}"#.into(),
            "InvalidLayoutParameter",
            "replication_factor",
        ),
        (
            "/v2/UpdateClusterLayout",
            r#"{"parameters":{}}"#.into(),
            "InvalidRequest",
            "zoneRedundancy or replicationFactor",
        ),
        (
            "/v2/UpdateClusterLayout",
            format!(r#"{{"roles":[{{"id":"{me}","zone":"a","capacity":-5}}]}}"#),
            "InvalidJson",
            "-5",
        ),
        (
            "/v2/UpdateClusterLayout",
            format!(r#"{{"roles":[{{"id":"{me}","zone":"a","capacity":0}}]}}"#),
            "InvalidLayoutParameter",
            "capacity must be positive",
        ),
        (
            "/v2/UpdateClusterLayout",
            format!(r#"{{"roles":[{{"id":"{me}","zone":" ","capacity":1}}]}}"#),
            "InvalidLayoutParameter",
            "zone must not be empty",
        ),
        (
            "/v2/UpdateClusterLayout",
            format!(r#"{{"roles":[{{"id":"{me}","capacity":1}}]}}"#),
            "InvalidJson",
            "zone is required",
        ),
        (
            "/v2/UpdateClusterLayout",
            format!(r#"{{"roles":[{{"id":"{me}","remove":false}}]}}"#),
            "InvalidJson",
            "remove must be true",
        ),
        (
            "/v2/UpdateClusterLayout",
            format!(r#"{{"roles":[{{"id":"{me}","remove":true,"zone":"a"}}]}}"#),
            "InvalidJson",
            "takes no zone",
        ),
        (
            "/v2/UpdateClusterLayout",
            format!(r#"{{"roles":[{{"id":"{nobody}","zone":"a","capacity":1}}]}}"#),
            "NoSuchNode",
            "no known node id starts with",
        ),
        (
            "/v2/UpdateClusterLayout",
            r#"{"roles":[{"id":"xyz","zone":"a","capacity":1}]}"#.into(),
            "InvalidNodeId",
            "xyz",
        ),
        (
            "/v2/UpdateClusterLayout",
            format!(r#"{{"roles":[{{"id":"{me}","remove":true}}]}}"#),
            "NoSuchNode",
            "has no role",
        ),
        (
            "/v2/UpdateClusterLayout",
            format!(
                r#"{{"roles":[{{"id":"{me}","zone":"a","capacity":1}},{{"id":"{}","zone":"b","capacity":2}}]}}"#,
                &me[..6]
            ),
            "InvalidRequest",
            "more than one role change",
        ),
        // Valid first change, invalid second: neither is staged.
        (
            "/v2/UpdateClusterLayout",
            format!(
                r#"{{"roles":[{{"id":"{me}","zone":"a","capacity":1}}],"parameters":{{"replicationFactor":0}}}}"#
            ),
            "InvalidLayoutParameter",
            "replication_factor",
        ),
        (
            "/v2/ApplyClusterLayout",
            r#"{"version":1,"force":true}"#.into(),
            "InvalidJson",
            "force",
        ),
        (
            "/v2/ApplyClusterLayout",
            "{}".into(),
            "InvalidJson",
            "version",
        ),
        (
            "/v2/ApplyClusterLayout",
            r#"{"version":-1}"#.into(),
            "InvalidJson",
            "-1",
        ),
        (
            "/v2/PreviewClusterLayoutChanges",
            r#"{"x":1}"#.into(),
            "InvalidRequest",
            "no body",
        ),
        (
            "/v2/RevertClusterLayout",
            "[]".into(),
            "InvalidRequest",
            "no body",
        ),
        (
            "/v2/ConnectClusterNodes",
            r#"{"peers":[]}"#.into(),
            "InvalidJson",
            "sequence",
        ),
    ];
    for (path, body, code, needle) in &cases {
        let (status, error) = h.post_raw(path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {error:?}");
        assert_eq!(error.code, *code, "{path} {body}: {}", error.message);
        assert!(
            error.message.contains(needle),
            "{path} {body}: {:?} lacks {needle:?}",
            error.message
        );
        assert_eq!(error.path, *path);
    }
    assert_eq!(h.layout().await, before, "nothing was staged");
}

#[tokio::test]
async fn cluster_endpoints_need_the_token() {
    let h = start().await;
    let me = h.cluster.id().to_hex();
    let before = h.layout().await;
    let stage = update(vec![set(&me, "dc1", Some(1 << 30))], None);
    let requests = [
        AdminRequest::GetNodeInfo(GetNodeInfoRequest {
            node: "self".into(),
        }),
        AdminRequest::GetClusterStatus,
        AdminRequest::GetClusterHealth,
        AdminRequest::ConnectClusterNodes(ConnectClusterNodesRequest(vec![])),
        AdminRequest::GetClusterLayout,
        stage.clone(),
        AdminRequest::PreviewClusterLayoutChanges,
        apply(1),
        AdminRequest::RevertClusterLayout,
        AdminRequest::GetClusterLayoutHistory,
    ];
    for request in &requests {
        let parts = request.to_http();
        let body = parts.body.clone().unwrap_or_default();
        let missing = h
            .raw(
                parts.method.clone(),
                &parts.path_and_query,
                None,
                body.clone(),
            )
            .await;
        assert_eq!(
            missing.status,
            StatusCode::UNAUTHORIZED,
            "{}",
            request.name()
        );
        assert_eq!(missing.json::<ErrorBody>().code, "Unauthorized");
        let wrong = h
            .raw(parts.method, &parts.path_and_query, Some("nope"), body)
            .await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", request.name());
        assert_eq!(wrong.json::<ErrorBody>().code, "Forbidden");
    }
    assert_eq!(h.layout().await, before, "nothing was staged or applied");
    // The same change with the token goes through.
    let staged: GetClusterLayoutResponse = h.ok(stage).await;
    assert_eq!(staged.staged_role_changes.len(), 1);
}

#[tokio::test]
async fn dead_nodes_can_be_skipped_so_a_layout_change_finishes() {
    let h = start().await;
    let other = h.join_second_node().await;
    let me = h.cluster.id().to_hex();
    let them = other.id().to_hex();
    let _: GetClusterLayoutResponse = h
        .ok(update(
            vec![
                set(&me, "dc1", Some(1 << 40)),
                set(&them, "dc2", Some(1 << 40)),
            ],
            None,
        ))
        .await;
    let _: ApplyClusterLayoutResponse = h.ok(apply(1)).await;
    // The other node dies for good.
    other.shutdown();
    hangar_cluster::testing::wait_until("the other node is down", || {
        h.cluster
            .status()
            .nodes
            .iter()
            .any(|n| n.id == other.id() && !n.up)
    })
    .await;
    let wrong = h
        .error(
            AdminRequest::ClusterLayoutSkipDeadNodes(ClusterLayoutSkipDeadNodesRequest {
                version: 7,
                allow_missing_data: false,
            }),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(wrong.message.contains("current"), "{}", wrong.message);
    let acked: ClusterLayoutSkipDeadNodesResponse = h
        .ok(AdminRequest::ClusterLayoutSkipDeadNodes(
            ClusterLayoutSkipDeadNodesRequest {
                version: 1,
                allow_missing_data: false,
            },
        ))
        .await;
    assert_eq!(acked.ack_updated, vec![them.clone()]);
    assert!(acked.sync_updated.is_empty());
    let synced: ClusterLayoutSkipDeadNodesResponse = h
        .ok(AdminRequest::ClusterLayoutSkipDeadNodes(
            ClusterLayoutSkipDeadNodesRequest {
                version: 1,
                allow_missing_data: true,
            },
        ))
        .await;
    assert_eq!(synced.sync_updated, vec![them.clone()]);
    let trackers = h.cluster.layout().snapshot().trackers().clone();
    assert_eq!(trackers.sync.get(&other.id()), Some(&1));
    assert_eq!(
        trackers.sync.get(&h.cluster.id()),
        None,
        "a node that is up is never skipped"
    );
}
