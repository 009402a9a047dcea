//! The checks handlers make before they act, as Kafka's `AuthHelper` makes them: with no
//! authorizer configured everything is allowed and every operation is reported as authorized.

use std::collections::HashMap;

use crate::broker::Broker;
use crate::dispatch::Ctx;
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};

/// Whether the request's principal may do `op` on the resource `name` of type `rt`.
pub(crate) fn allowed(
    broker: &Broker,
    ctx: &Ctx,
    op: Operation,
    rt: ResourceType,
    name: &str,
) -> bool {
    broker
        .authorizer
        .as_ref()
        .is_none_or(|a| a.authorize(&ctx.session, op, rt, name))
}

/// One operation on resources of one type, asked once per name however often a request names it.
pub(crate) struct Memo<'a> {
    broker: &'a Broker,
    ctx: &'a Ctx,
    op: Operation,
    rt: ResourceType,
    seen: HashMap<String, bool>,
}

impl<'a> Memo<'a> {
    pub(crate) fn new(broker: &'a Broker, ctx: &'a Ctx, op: Operation, rt: ResourceType) -> Self {
        Memo {
            broker,
            ctx,
            op,
            rt,
            seen: HashMap::new(),
        }
    }

    pub(crate) fn allowed(&mut self, name: &str) -> bool {
        if self.broker.authorizer.is_none() {
            return true;
        }
        if let Some(allowed) = self.seen.get(name) {
            return *allowed;
        }
        let allowed = allowed(self.broker, self.ctx, self.op, self.rt, name);
        self.seen.insert(name.to_string(), allowed);
        allowed
    }
}

/// Whether the request's principal may do `op` on the cluster.
pub(crate) fn cluster(broker: &Broker, ctx: &Ctx, op: Operation) -> bool {
    allowed(broker, ctx, op, ResourceType::Cluster, CLUSTER_NAME)
}

/// Whether the request's principal may do `op` on some resource of type `rt`.
pub(crate) fn any_of_type(broker: &Broker, ctx: &Ctx, op: Operation, rt: ResourceType) -> bool {
    broker
        .authorizer
        .as_ref()
        .is_none_or(|a| a.authorize_by_type(&ctx.session, op, rt))
}

/// The `*_authorized_operations` bits of `ops` the principal may do on the resource.
pub(crate) fn operations(
    broker: &Broker,
    ctx: &Ctx,
    rt: ResourceType,
    name: &str,
    ops: &[Operation],
) -> i32 {
    match &broker.authorizer {
        None => ops.iter().fold(0, |bits, op| bits | op.bit()),
        Some(a) => a.authorized_operations(&ctx.session, rt, name, ops),
    }
}

/// The cluster's authorized operations as Kafka reports them: 0 without DESCRIBE on it.
pub(crate) fn cluster_operations(broker: &Broker, ctx: &Ctx) -> i32 {
    if !cluster(broker, ctx, Operation::Describe) {
        return 0;
    }
    operations(
        broker,
        ctx,
        ResourceType::Cluster,
        CLUSTER_NAME,
        CLUSTER_OPERATIONS,
    )
}

/// The operations a topic's authorized operations are reported for (Kafka's `supportedOperations`).
pub(crate) const TOPIC_OPERATIONS: &[Operation] = &[
    Operation::Read,
    Operation::Write,
    Operation::Create,
    Operation::Delete,
    Operation::Alter,
    Operation::Describe,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
];

/// The operations a group's authorized operations are reported for (what Kafka 4.1 reports with
/// no authorizer).
pub(crate) const GROUP_OPERATIONS: &[Operation] =
    &[Operation::Read, Operation::Delete, Operation::Describe];

/// The operations the cluster's authorized operations are reported for.
pub(crate) const CLUSTER_OPERATIONS: &[Operation] = &[
    Operation::Create,
    Operation::ClusterAction,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
    Operation::IdempotentWrite,
    Operation::Alter,
    Operation::Describe,
];

/// The refusal of `op` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a config resource, as Kafka's
/// ConfigHelper and ControllerApis refuse it: broker-wide types need it on the cluster, topics
/// and groups on themselves. `None` when allowed (or of a type the handler refuses anyway).
pub(crate) fn config_refusal(
    broker: &Broker,
    ctx: &Ctx,
    op: Operation,
    resource_type: i8,
    name: &str,
) -> Option<kafka_protocol::ResponseError> {
    use kafka_protocol::ResponseError as E;
    let (allowed, error) = match resource_type {
        // BROKER, BROKER_LOGGER, CLIENT_METRICS.
        4 | 8 | 16 => (cluster(broker, ctx, op), E::ClusterAuthorizationFailed),
        2 => (
            allowed(broker, ctx, op, ResourceType::Topic, name),
            E::TopicAuthorizationFailed,
        ),
        32 => (
            allowed(broker, ctx, op, ResourceType::Group, name),
            E::GroupAuthorizationFailed,
        ),
        _ => (true, E::UnknownServerError),
    };
    (!allowed).then_some(error)
}

/// Kafka's message when a request needs `op` on the cluster (`authorizeClusterOperation`; Kafka's
/// also prints the whole request).
pub(crate) fn needs(ctx: &Ctx, op: Operation) -> String {
    format!(
        "Request from {} needs {} permission.",
        ctx.session.principal,
        op.name()
    )
}
