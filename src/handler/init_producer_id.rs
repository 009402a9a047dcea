//! InitProducerId for idempotent (non-transactional) producers: a fresh, durable producer id.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use crate::broker::{Broker, ProducerIdError};
use crate::dispatch::Ctx;
use crate::handler::authorize;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: InitProducerIdRequest,
) -> Option<InitProducerIdResponse> {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    // As Kafka: WRITE on the transactional id; an idempotent producer needs IDEMPOTENT_WRITE on
    // the cluster or WRITE on some topic.
    let refused = match &req.transactional_id {
        Some(id) => (!authorize::allowed(
            broker,
            ctx,
            Operation::Write,
            ResourceType::TransactionalId,
            id,
        ))
        .then_some(ResponseError::TransactionalIdAuthorizationFailed),
        None => (!authorize::cluster(broker, ctx, Operation::IdempotentWrite)
            && !authorize::any_of_type(broker, ctx, Operation::Write, ResourceType::Topic))
        .then_some(ResponseError::ClusterAuthorizationFailed),
    };
    if let Some(e) = refused {
        resp.error_code = e.code();
        return Some(resp);
    }
    if req
        .transactional_id
        .as_ref()
        .is_some_and(|t| t.0.is_empty())
    {
        resp.error_code = ResponseError::InvalidRequest.code();
        return Some(resp);
    }
    if req.transactional_id.is_some() {
        // No transaction coordinator yet (see `group::TRANSACTIONS_UNSUPPORTED`): a fatal error
        // for clients, not COORDINATOR_NOT_AVAILABLE, which they retry forever.
        resp.error_code = ResponseError::UnsupportedVersion.code();
        metrics::counter!("gregor_transactions_refused_total").increment(1);
        crate::condition::TRANSACTIONS_REFUSED
            .occurred(|| format!("InitProducerId with a transactional id from {}", ctx.peer));
        return Some(resp);
    }
    match broker.next_producer_id().await {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
            metrics::counter!("gregor_producer_ids_allocated_total").increment(1);
        }
        Err(ProducerIdError::Storage(e)) => {
            crate::condition::storage_error(&crate::condition::META_WRITES, "meta", || {
                format!("cannot allocate a producer id: {e}")
            });
            resp.error_code = ResponseError::KafkaStorageError.code();
        }
        // As Kafka's ProducerIdManager while it has no block from the controller: retriable.
        Err(ProducerIdError::NoController) => {
            resp.error_code = ResponseError::CoordinatorLoadInProgress.code();
        }
    }
    Some(resp)
}
