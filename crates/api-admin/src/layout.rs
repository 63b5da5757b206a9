//! Layout endpoints: `GetClusterLayout`, `UpdateClusterLayout`,
//! `PreviewClusterLayoutChanges`, `ApplyClusterLayout`, `RevertClusterLayout`,
//! `GetClusterLayoutHistory`.
//!
//! Every change goes through [`hangar_cluster::layout_sync::LayoutManager::update`],
//! which saves and propagates it, or changes nothing when it fails.

use std::collections::BTreeSet;

use hangar_cluster::assignment::ZoneRedundancy as ClusterZoneRedundancy;
use hangar_cluster::history::{find_node_by_prefix, Tracker};
use hangar_cluster::layout_sync::LayoutSyncError;
use hangar_cluster::{
    LayoutDiff, LayoutError, LayoutHistory, LayoutParams, NodeId, NodeRole, StagedRole, System,
};

use crate::api::{
    ApplyClusterLayoutRequest, ApplyClusterLayoutResponse, ClusterLayoutSkipDeadNodesRequest,
    ClusterLayoutSkipDeadNodesResponse, ClusterLayoutVersion, GetClusterLayoutHistoryResponse,
    GetClusterLayoutResponse, LayoutNodeRole, LayoutParameters, NodeRoleChange, NodeUpdateTrackers,
    PreviewClusterLayoutChangesResponse, RoleChangeAction, UpdateClusterLayoutRequest,
    ZoneRedundancy,
};
use crate::error::{Error, Result};

/// The node named by `text`: a full hex id (known or not: a role may be given
/// to a node before it joins), or a unique prefix of one of `known`.
pub(crate) fn resolve_node(
    text: &str,
    known: impl IntoIterator<Item = NodeId>,
) -> Result<NodeId, LayoutError> {
    match NodeId::from_hex(text.trim()) {
        Some(id) => Ok(id),
        None => find_node_by_prefix(text, known),
    }
}

/// `GetClusterLayout`.
pub(crate) fn get_cluster_layout(cluster: &System) -> GetClusterLayoutResponse {
    layout_response(&cluster.layout().history())
}

/// `UpdateClusterLayout`: stages every change of the request, or none.
pub(crate) fn update_cluster_layout(
    cluster: &System,
    request: UpdateClusterLayoutRequest,
) -> Result<GetClusterLayoutResponse> {
    if request
        .parameters
        .is_some_and(|p| p.zone_redundancy.is_none() && p.replication_factor.is_none())
    {
        return Err(Error::bad_request(
            "parameters: give zoneRedundancy or replicationFactor, or leave parameters out",
        ));
    }
    let history = cluster.layout().history();
    if request.roles.is_empty() && request.parameters.is_none() {
        return Ok(layout_response(&history));
    }
    let known: BTreeSet<NodeId> = cluster
        .status()
        .nodes
        .iter()
        .map(|n| n.id)
        .chain(history.known_nodes())
        .collect();
    let mut changes: Vec<(NodeId, &NodeRoleChange)> = Vec::with_capacity(request.roles.len());
    for change in &request.roles {
        let id = resolve_node(&change.id, known.iter().copied())?;
        if changes.iter().any(|(other, _)| *other == id) {
            return Err(Error::bad_request(format!(
                "node {} has more than one role change",
                id.to_hex()
            )));
        }
        changes.push((id, change));
    }
    let history = cluster.layout().update(|h, ts| {
        // Each change needs a timestamp newer than the last; the manager gave
        // one fresh timestamp and observes the ones used here afterwards.
        let mut next_ts = ts;
        let mut tick = move || {
            let t = next_ts;
            next_ts += 1;
            t
        };
        for (id, change) in &changes {
            match &change.action {
                RoleChangeAction::Remove => h.stage_remove(*id, tick())?,
                RoleChangeAction::Set {
                    zone,
                    capacity,
                    tags,
                } => {
                    let role = NodeRole {
                        zone: zone.clone(),
                        capacity: *capacity,
                        tags: tags.clone(),
                    };
                    h.stage_role(*id, role, tick())?;
                }
            }
        }
        if let Some(update) = request.parameters {
            let base = h.staged().params.unwrap_or(h.current().params);
            let params = LayoutParams {
                replication_factor: update.replication_factor.unwrap_or(base.replication_factor),
                zone_redundancy: update
                    .zone_redundancy
                    .map_or(base.zone_redundancy, to_cluster),
            };
            h.stage_params(params, tick())?;
        }
        Ok(h.clone())
    })?;
    Ok(layout_response(&history))
}

/// `PreviewClusterLayoutChanges`: what `ApplyClusterLayout` would do now.
pub(crate) fn preview_cluster_layout_changes(
    cluster: &System,
) -> Result<PreviewClusterLayoutChangesResponse> {
    let history = cluster.layout().history();
    let mut next = history.clone();
    // The assignment does not depend on the timestamp: the real apply makes
    // the same version.
    let diff = next
        .apply(None, history.max_timestamp().saturating_add(1))
        .map_err(|e| nothing_staged_to(e, "preview"))?;
    Ok(PreviewClusterLayoutChangesResponse {
        message: lines(&diff),
        new_layout: layout_response(&next),
    })
}

/// `ApplyClusterLayout`: applies the staged changes if they make version
/// `request.version`.
pub(crate) fn apply_cluster_layout(
    cluster: &System,
    request: ApplyClusterLayoutRequest,
) -> Result<ApplyClusterLayoutResponse> {
    let (diff, history) = cluster.layout().update(|h, ts| {
        let diff = h.apply(Some(request.version), ts)?;
        Ok((diff, h.clone()))
    })?;
    tracing::info!(
        version = request.version,
        moved = diff.partitions_moved(),
        "layout applied"
    );
    Ok(ApplyClusterLayoutResponse {
        message: lines(&diff),
        layout: layout_response(&history),
    })
}

/// `ClusterLayoutSkipDeadNodes`: gives the nodes that are down the
/// acknowledgement of the current version (and, with `allow_missing_data`,
/// its sync), so that a layout change can finish without a node that is
/// gone for good.
pub(crate) fn skip_dead_nodes(
    cluster: &System,
    request: ClusterLayoutSkipDeadNodesRequest,
) -> Result<ClusterLayoutSkipDeadNodesResponse> {
    let up: BTreeSet<_> = cluster
        .status()
        .nodes
        .iter()
        .filter(|n| n.up)
        .map(|n| n.id)
        .collect();
    let current = cluster.layout().snapshot().current().version;
    if request.version != current {
        return Err(Error::bad_request(format!(
            "version {} is not the current layout version {current}",
            request.version
        )));
    }
    let mut response = ClusterLayoutSkipDeadNodesResponse {
        ack_updated: Vec::new(),
        sync_updated: Vec::new(),
    };
    let me = cluster.id();
    cluster.layout().update(|h, _| {
        for node in h.tracked_nodes() {
            if node == me || up.contains(&node) {
                continue;
            }
            if h.raise_tracker(Tracker::Ack, node, current) {
                response.ack_updated.push(node.to_hex());
            }
            if request.allow_missing_data {
                let synced = h.raise_tracker(Tracker::Sync, node, current);
                h.raise_tracker(Tracker::SyncAck, node, current);
                if synced {
                    response.sync_updated.push(node.to_hex());
                }
            }
        }
        Ok(())
    })?;
    tracing::warn!(
        version = current,
        acked = ?response.ack_updated,
        synced = ?response.sync_updated,
        "layout trackers of dead nodes raised by the operator"
    );
    Ok(response)
}

/// `RevertClusterLayout`: drops the staged changes.
pub(crate) fn revert_cluster_layout(cluster: &System) -> Result<GetClusterLayoutResponse> {
    let history = cluster
        .layout()
        .update(|h, ts| {
            h.revert(ts)?;
            Ok(h.clone())
        })
        .map_err(|e| match e {
            LayoutSyncError::Layout(e) => nothing_staged_to(e, "revert"),
            e => e.into(),
        })?;
    Ok(layout_response(&history))
}

/// `GetClusterLayoutHistory`.
pub(crate) fn get_cluster_layout_history(cluster: &System) -> GetClusterLayoutHistoryResponse {
    let history = cluster.layout().history();
    let current = history.current().version;
    let oldest_live = history.live_versions()[0].version;
    let versions = history
        .versions()
        .iter()
        .map(|v| {
            let gateways = v.roles.values().filter(|r| r.is_gateway()).count();
            let status = if v.version == current {
                "current"
            } else if v.version >= oldest_live && v.assignment.is_some() {
                "draining"
            } else {
                "historical"
            };
            ClusterLayoutVersion {
                version: v.version,
                status: status.to_string(),
                storage_nodes: v.roles.len() - gateways,
                gateway_nodes: gateways,
                parameters: parameters(&v.params),
                usable_capacity: v.usable_capacity(),
            }
        })
        .collect();
    let trackers = history.trackers();
    let nodes: std::collections::BTreeSet<_> = trackers
        .ack
        .keys()
        .chain(trackers.sync.keys())
        .chain(trackers.sync_ack.keys())
        .copied()
        .collect();
    let get = |map: &std::collections::BTreeMap<hangar_cluster::NodeId, u64>, n| {
        map.get(n).copied().unwrap_or(0)
    };
    let update_trackers = nodes
        .iter()
        .map(|n| {
            let t = NodeUpdateTrackers {
                ack: get(&trackers.ack, n),
                sync: get(&trackers.sync, n),
                sync_ack: get(&trackers.sync_ack, n),
            };
            (n.to_hex(), t)
        })
        .collect();
    GetClusterLayoutHistoryResponse {
        current_version: current,
        min_ack: history.tracker_min(Tracker::Ack),
        versions,
        update_trackers,
    }
}

/// [`LayoutError::NothingStaged`] reworded for `action`; other errors as usual.
fn nothing_staged_to(e: LayoutError, action: &'static str) -> Error {
    match e {
        LayoutError::NothingStaged => Error::NothingStaged { action },
        e => e.into(),
    }
}

/// The text of `diff`, one entry per line.
fn lines(diff: &LayoutDiff) -> Vec<String> {
    diff.to_string().lines().map(str::to_string).collect()
}

/// The current layout of `history` and the changes staged on it.
fn layout_response(history: &LayoutHistory) -> GetClusterLayoutResponse {
    let current = history.current();
    let size = current.partition_size();
    let roles = current
        .roles
        .iter()
        .map(|(id, role)| {
            let load = current.load(id);
            LayoutNodeRole {
                id: id.to_hex(),
                zone: role.zone.clone(),
                capacity: role.capacity,
                stored_partitions: load,
                usable_capacity: role.capacity.map(|_| load as u64 * size),
                tags: role.tags.clone(),
            }
        })
        .collect();
    let staged = history.staged();
    let staged_role_changes = staged
        .roles
        .iter()
        .map(|(id, change)| NodeRoleChange {
            id: id.to_hex(),
            action: match change {
                StagedRole::Remove => RoleChangeAction::Remove,
                StagedRole::Set(role) => RoleChangeAction::Set {
                    zone: role.zone.clone(),
                    capacity: role.capacity,
                    tags: role.tags.clone(),
                },
            },
        })
        .collect();
    GetClusterLayoutResponse {
        version: current.version,
        roles,
        parameters: parameters(&current.params),
        partition_size: size,
        staged_role_changes,
        staged_parameters: staged.params.as_ref().map(parameters),
    }
}

fn parameters(p: &LayoutParams) -> LayoutParameters {
    LayoutParameters {
        zone_redundancy: match p.zone_redundancy {
            ClusterZoneRedundancy::Maximum => ZoneRedundancy::Maximum,
            ClusterZoneRedundancy::AtLeast(k) => ZoneRedundancy::AtLeast(k),
        },
        replication_factor: p.replication_factor,
    }
}

fn to_cluster(z: ZoneRedundancy) -> ClusterZoneRedundancy {
    match z {
        ZoneRedundancy::Maximum => ClusterZoneRedundancy::Maximum,
        ZoneRedundancy::AtLeast(k) => ClusterZoneRedundancy::AtLeast(k),
    }
}
