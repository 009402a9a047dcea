//! The classic group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! ListGroups, DescribeGroups, DeleteGroups. The single broker coordinates every group.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorize::{self, GROUP_OPERATIONS};
use super::{default_message, str_bytes};
use crate::broker::Broker;
use crate::dispatch::Ctx;
use crate::group::state::{Group, State};
use crate::group::{JoinRequest, Protocol, SyncRequest};
use crate::security::acl::{Operation, ResourceType};

/// Whether the request's principal may do `op` on the group `id`.
fn group_allowed(broker: &Broker, ctx: &Ctx, op: Operation, id: &str) -> bool {
    authorize::allowed(broker, ctx, op, ResourceType::Group, id)
}

fn code(e: Option<ResponseError>) -> i16 {
    e.map_or(0, |e| e.code())
}

fn opt_str(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|s| s.to_string())
}

/// What transactional clients are told until gregor has a transaction coordinator: an error they
/// treat as fatal at once (COORDINATOR_NOT_AVAILABLE is retried forever), with a message saying why.
pub const TRANSACTIONS_UNSUPPORTED: &str =
    "gregor does not support transactions yet (transactional.id / exactly-once)";

/// Kafka's `Errors.INVALID_REQUEST` message, which it sends where nothing more specific is said.
const INVALID_REQUEST_TEXT: &str = "This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker. See the broker logs for more details.";

pub async fn find_coordinator(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: FindCoordinatorRequest,
) -> Option<FindCoordinatorResponse> {
    let version = ctx.header.request_api_version;
    let node = BrokerId(broker.config.node_id);
    let host = str_bytes(&ctx.listener.advertised.host);
    let port = i32::from(ctx.listener.advertised.port);
    // As Kafka: DESCRIBE on the group (or transactional id) is checked before anything else.
    let refusal = |key: &str| match req.key_type {
        0 if !group_allowed(broker, ctx, Operation::Describe, key) => {
            Some(ResponseError::GroupAuthorizationFailed)
        }
        1 if !authorize::allowed(
            broker,
            ctx,
            Operation::Describe,
            ResourceType::TransactionalId,
            key,
        ) =>
        {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        }
        _ => None,
    };
    // Key type 0 is a group; 1 (transactions) has no coordinator here: UNSUPPORTED_VERSION with a
    // message, which the Java client, franz-go and Kafka Streams fail on at once.
    let (error, message) = match req.key_type {
        0 => (None, None),
        1 => (
            Some(ResponseError::UnsupportedVersion),
            Some(str_bytes(TRANSACTIONS_UNSUPPORTED)),
        ),
        // Share groups (KIP-932) have no coordinator here: Kafka 4.1 without share groups answers
        // INVALID_REQUEST with an empty message (v4+); any other type gets the error's generic
        // text, as Kafka's.
        2 if version >= 4 => (
            Some(ResponseError::InvalidRequest),
            Some(StrBytes::default()),
        ),
        _ => (
            Some(ResponseError::InvalidRequest),
            Some(str_bytes(INVALID_REQUEST_TEXT)),
        ),
    };
    let no_node = |c_node: &mut BrokerId, c_host: &mut StrBytes, c_port: &mut i32| {
        (*c_node, *c_host, *c_port) = (BrokerId(-1), StrBytes::default(), -1);
    };
    if version < 4 {
        if let Some(e) = refusal(&req.key) {
            let mut resp = FindCoordinatorResponse::default();
            resp.error_code = e.code();
            if version >= 1 {
                resp.error_message = Some(StrBytes::from_static_str(default_message(e)));
            }
            no_node(&mut resp.node_id, &mut resp.host, &mut resp.port);
            return Some(resp);
        }
    }
    if req.key_type == 1 {
        metrics::counter!("gregor_transactions_refused_total").increment(1);
        crate::condition::TRANSACTIONS_REFUSED
            .occurred(|| format!("FindCoordinator for a transactional id from {}", ctx.peer));
    }
    let found = |c_node: &mut BrokerId, c_host: &mut StrBytes, c_port: &mut i32| {
        if error.is_none() {
            (*c_node, *c_host, *c_port) = (node, host.clone(), port);
        } else {
            (*c_node, *c_host, *c_port) = (BrokerId(-1), StrBytes::default(), -1);
        }
    };
    // On success Kafka's message is its error's name, "NONE", before v4, and empty after.
    let message = match (error, version) {
        (None, 1..=3) => Some(StrBytes::from_static_str("NONE")),
        (None, _) => Some(StrBytes::default()),
        (Some(_), _) => message,
    };
    let mut resp = FindCoordinatorResponse::default();
    if version < 4 {
        resp.error_code = code(error);
        if version >= 1 {
            resp.error_message = message;
        }
        found(&mut resp.node_id, &mut resp.host, &mut resp.port);
        return Some(resp);
    }
    resp.coordinators = req
        .coordinator_keys
        .iter()
        .map(|k| {
            let mut c = Coordinator::default();
            c.key = k.clone();
            if let Some(e) = refusal(k) {
                // Kafka sets no message on a refused key.
                c.error_code = e.code();
                no_node(&mut c.node_id, &mut c.host, &mut c.port);
                return c;
            }
            c.error_code = code(error);
            c.error_message = message.clone();
            found(&mut c.node_id, &mut c.host, &mut c.port);
            c
        })
        .collect();
    Some(resp)
}

pub async fn join(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: JoinGroupRequest,
) -> Option<JoinGroupResponse> {
    let version = ctx.header.request_api_version;
    let mut resp = JoinGroupResponse::default();
    resp.member_id = req.member_id.clone();
    resp.generation_id = -1;
    if version < 7 {
        resp.protocol_name = Some(StrBytes::default());
    }
    if !group_allowed(broker, ctx, Operation::Read, &req.group_id.0) {
        // Kafka's error response names no member.
        resp.member_id = StrBytes::default();
        resp.error_code = ResponseError::GroupAuthorizationFailed.code();
        return Some(resp);
    }
    if req.group_id.0.is_empty() {
        resp.error_code = ResponseError::InvalidGroupId.code();
        return Some(resp);
    }
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: opt_str(&req.group_instance_id),
        client_id: ctx
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if version == 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| Protocol {
                name: p.name.to_string(),
                metadata: p.metadata.clone(),
            })
            .collect(),
        require_known_member_id: version >= 4,
    };
    let r = broker.groups.join(&req.group_id.0, join).await;
    resp.error_code = code(r.error);
    resp.generation_id = r.generation;
    resp.member_id = str_bytes(&r.member_id);
    resp.leader = str_bytes(&r.leader);
    resp.protocol_type = r.protocol_type.as_deref().map(str_bytes);
    resp.protocol_name = match (r.protocol_name.as_deref(), version < 7) {
        (Some(n), _) => Some(str_bytes(n)),
        (None, true) => Some(StrBytes::default()),
        (None, false) => None,
    };
    resp.members = r
        .members
        .into_iter()
        .map(|m| {
            let mut jm = JoinGroupResponseMember::default();
            jm.member_id = str_bytes(&m.member_id);
            jm.group_instance_id = m.instance_id.as_deref().map(str_bytes);
            jm.metadata = m.metadata;
            jm
        })
        .collect();
    Some(resp)
}

pub async fn sync(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: SyncGroupRequest,
) -> Option<SyncGroupResponse> {
    let version = ctx.header.request_api_version;
    if !group_allowed(broker, ctx, Operation::Read, &req.group_id.0) {
        let mut resp = SyncGroupResponse::default();
        resp.error_code = ResponseError::GroupAuthorizationFailed.code();
        return Some(resp);
    }
    let sync = SyncRequest {
        member_id: req.member_id.to_string(),
        instance_id: opt_str(&req.group_instance_id),
        generation: req.generation_id,
        protocol_type: if version >= 5 {
            opt_str(&req.protocol_type)
        } else {
            None
        },
        protocol_name: if version >= 5 {
            opt_str(&req.protocol_name)
        } else {
            None
        },
        assignments: req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    let r = broker.groups.sync(&req.group_id.0, sync).await;
    let mut resp = SyncGroupResponse::default();
    resp.error_code = code(r.error);
    resp.protocol_type = r.protocol_type.as_deref().map(str_bytes);
    resp.protocol_name = r.protocol_name.as_deref().map(str_bytes);
    resp.assignment = r.assignment;
    Some(resp)
}

pub async fn heartbeat(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: HeartbeatRequest,
) -> Option<HeartbeatResponse> {
    if !group_allowed(broker, ctx, Operation::Read, &req.group_id.0) {
        let mut resp = HeartbeatResponse::default();
        resp.error_code = ResponseError::GroupAuthorizationFailed.code();
        return Some(resp);
    }
    let instance = opt_str(&req.group_instance_id);
    let r = broker
        .groups
        .heartbeat(
            &req.group_id.0,
            &req.member_id,
            instance.as_deref(),
            req.generation_id,
        )
        .await;
    let mut resp = HeartbeatResponse::default();
    resp.error_code = code(r.err());
    Some(resp)
}

pub async fn leave(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: LeaveGroupRequest,
) -> Option<LeaveGroupResponse> {
    let version = ctx.header.request_api_version;
    let members: Vec<(String, Option<String>)> = if version < 3 {
        vec![(req.member_id.to_string(), None)]
    } else {
        req.members
            .iter()
            .map(|m| (m.member_id.to_string(), opt_str(&m.group_instance_id)))
            .collect()
    };
    let mut resp = LeaveGroupResponse::default();
    if !group_allowed(broker, ctx, Operation::Read, &req.group_id.0) {
        resp.error_code = ResponseError::GroupAuthorizationFailed.code();
        return Some(resp);
    }
    match broker.groups.leave(&req.group_id.0, &members).await {
        Err(e) => resp.error_code = e.code(),
        Ok(results) if version < 3 => {
            resp.error_code = code(results.into_iter().next().and_then(Result::err))
        }
        Ok(results) => {
            resp.members = members
                .iter()
                .zip(results)
                .map(|((m, i), r)| {
                    let mut mr = MemberResponse::default();
                    mr.member_id = str_bytes(m);
                    mr.group_instance_id = i.as_deref().map(str_bytes);
                    mr.error_code = code(r.err());
                    mr
                })
                .collect();
        }
    }
    Some(resp)
}

pub async fn list(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: ListGroupsRequest,
) -> Option<ListGroupsResponse> {
    // As Kafka: DESCRIBE on the cluster lists every group; otherwise only the groups the
    // principal may describe.
    let every_group = authorize::cluster(broker, ctx, Operation::Describe);
    let states: Vec<String> = req
        .states_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let types: Vec<String> = req
        .types_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let mut resp = ListGroupsResponse::default();
    resp.groups = broker
        .groups
        .snapshots()
        .await
        .into_iter()
        .filter(|g| g.state != State::Dead)
        .filter(|g| states.is_empty() || states.contains(&g.state.name().to_ascii_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == "classic"))
        .filter(|g| every_group || group_allowed(broker, ctx, Operation::Describe, &g.id))
        .map(|g| {
            let mut l = ListedGroup::default();
            l.group_id = GroupId(str_bytes(&g.id));
            l.protocol_type = str_bytes(g.protocol_type.as_deref().unwrap_or(""));
            l.group_state = str_bytes(g.state.name());
            l.group_type = str_bytes("classic");
            l
        })
        .collect();
    Some(resp)
}

/// One group described; `ops` computes its authorized operations, which Kafka reports only for a
/// group described without error.
fn describe_one(
    g: Option<Group>,
    id: &GroupId,
    version: i16,
    ops: Option<impl FnOnce() -> i32>,
) -> DescribedGroup {
    let mut d = DescribedGroup::default();
    d.group_id = id.clone();
    d.authorized_operations = i32::MIN;
    let Some(g) = g.filter(|g| g.state != State::Dead) else {
        d.group_state = str_bytes("Dead");
        if version >= 6 {
            d.error_code = ResponseError::GroupIdNotFound.code();
            d.error_message = Some(str_bytes(&format!("Group {} not found.", id.0)));
        } else if let Some(ops) = ops {
            d.authorized_operations = ops();
        }
        return d;
    };
    if let Some(ops) = ops {
        d.authorized_operations = ops();
    }
    d.group_state = str_bytes(g.state.name());
    d.protocol_type = str_bytes(g.protocol_type.as_deref().unwrap_or(""));
    let stable = g.state == State::Stable;
    let protocol = g.protocol_name.clone().unwrap_or_default();
    d.protocol_data = str_bytes(if stable { &protocol } else { "" });
    d.members = g
        .members
        .values()
        .map(|m| {
            let mut dm = DescribedGroupMember::default();
            dm.member_id = str_bytes(&m.member_id);
            dm.group_instance_id = m.instance_id.as_deref().map(str_bytes);
            dm.client_id = str_bytes(&m.client_id);
            dm.client_host = str_bytes(&m.client_host);
            if stable {
                dm.member_metadata = m
                    .protocols
                    .iter()
                    .find(|p| p.name == protocol)
                    .map(|p| p.metadata.clone())
                    .unwrap_or_default();
                dm.member_assignment = m.assignment.clone();
            }
            dm
        })
        .collect();
    d
}

pub async fn describe(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: DescribeGroupsRequest,
) -> Option<DescribeGroupsResponse> {
    let version = ctx.header.request_api_version;
    let mut resp = DescribeGroupsResponse::default();
    // As Kafka: the groups the principal may not describe come first, then the others.
    let (allowed, refused): (Vec<&GroupId>, Vec<&GroupId>) = req
        .groups
        .iter()
        .partition(|id| group_allowed(broker, ctx, Operation::Describe, &id.0));
    for id in refused {
        let mut d = DescribedGroup::default();
        d.group_id = id.clone();
        d.error_code = ResponseError::GroupAuthorizationFailed.code();
        d.authorized_operations = i32::MIN;
        resp.groups.push(d);
    }
    for id in allowed {
        let g = broker.groups.snapshot(&id.0).await;
        let ops = (version >= 3 && req.include_authorized_operations).then_some(|| {
            authorize::operations(broker, ctx, ResourceType::Group, &id.0, GROUP_OPERATIONS)
        });
        resp.groups.push(describe_one(g, id, version, ops));
    }
    Some(resp)
}

pub async fn delete(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: DeleteGroupsRequest,
) -> Option<DeleteGroupsResponse> {
    // As Kafka: each group once, the ones the principal may delete first, then the refused.
    let mut seen = std::collections::HashSet::new();
    let (allowed, refused): (Vec<&GroupId>, Vec<&GroupId>) = req
        .groups_names
        .iter()
        .filter(|id| seen.insert(id.0.as_str()))
        .partition(|id| group_allowed(broker, ctx, Operation::Delete, &id.0));
    let mut resp = DeleteGroupsResponse::default();
    for id in allowed {
        let mut r = DeletableGroupResult::default();
        r.group_id = id.clone();
        r.error_code = code(broker.groups.delete_group(&id.0).await.err());
        resp.results.push(r);
    }
    for id in refused {
        let mut r = DeletableGroupResult::default();
        r.group_id = id.clone();
        r.error_code = ResponseError::GroupAuthorizationFailed.code();
        resp.results.push(r);
    }
    Some(resp)
}
