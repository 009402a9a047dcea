//! CreateAcls, DescribeAcls and DeleteAcls (what `kafka-acls.sh` sends), answered as Kafka's
//! AclApis and AclControlManager answer them: CLUSTER_AUTHORIZATION_FAILED without ALTER
//! (create, delete) or DESCRIBE (describe) on the cluster, SECURITY_DISABLED with no authorizer,
//! the connection closed for UNKNOWN codes (Kafka cannot parse such a request), and Kafka's
//! errors for what it refuses.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorize;
use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::{Ctx, Reply};
use crate::security::acl::{self, Acl, Filter, Operation, Refusal};
use crate::security::authorizer::{ChangeError, MAX_CHANGES};

const NO_AUTHORIZER: &str = "No Authorizer is configured.";
const TOO_MANY_CREATED: &str = "Unable to perform excessively large batch operation.";

/// An error code and its message.
type Error = (i16, Option<StrBytes>);

fn error(e: ResponseError, message: &str) -> Error {
    (e.code(), Some(str_bytes(message)))
}

/// Kafka's refusal of a cluster operation.
fn not_authorized(ctx: &Ctx, op: Operation) -> Error {
    error(
        ResponseError::ClusterAuthorizationFailed,
        &authorize::needs(ctx, op),
    )
}

fn creation_result((code, message): Error) -> AclCreationResult {
    let mut r = AclCreationResult::default();
    r.error_code = code;
    r.error_message = message;
    r
}

/// Runs an ACL change on the blocking pool (it fsyncs the meta store).
async fn change<T: Send + 'static>(
    broker: &Arc<Broker>,
    f: impl FnOnce(&crate::security::authorizer::Authorizer) -> Result<T, ChangeError> + Send + 'static,
) -> Result<T, ChangeError> {
    let broker = broker.clone();
    tokio::task::spawn_blocking(move || match broker.authorizer.as_ref() {
        Some(a) => f(a),
        None => Err(std::io::Error::other("no authorizer").into()),
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e).into()))
}

pub async fn create(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: CreateAclsRequest,
) -> Reply<CreateAclsResponse> {
    let mut resp = CreateAclsResponse::default();
    let everyone = |e: Error| -> Vec<AclCreationResult> {
        req.creations
            .iter()
            .map(|_| creation_result(e.clone()))
            .collect()
    };
    // Parsing first, as Kafka reads the request; then authorization, before the ACLs are
    // built one by one.
    if req.creations.iter().any(|c| {
        !acl::parsable(
            c.resource_type,
            c.resource_pattern_type,
            c.operation,
            c.permission_type,
        )
    }) {
        return Reply::Close(acl::UNPARSABLE.into());
    }
    if !authorize::cluster(broker, ctx, Operation::Alter) {
        resp.results = everyone(not_authorized(ctx, Operation::Alter));
        return Reply::Send(resp);
    }
    if broker.authorizer.is_none() {
        resp.results = everyone(error(ResponseError::SecurityDisabled, NO_AUTHORIZER));
        return Reply::Send(resp);
    }
    let checked: Vec<Result<Acl, Refusal>> = req
        .creations
        .iter()
        .map(|c| {
            acl::validate_new(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
        })
        .collect();
    if checked
        .iter()
        .any(|c| matches!(c, Err(Refusal::Unbindable)))
    {
        resp.results = everyone((ResponseError::UnknownServerError.code(), None));
        return Reply::Send(resp);
    }
    let valid: Vec<Acl> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok().cloned())
        .collect();
    let stored = change(broker, move |a| a.create(&valid, MAX_CHANGES)).await;
    resp.results = match stored {
        Err(ChangeError::TooMany) => {
            everyone(error(ResponseError::PolicyViolation, TOO_MANY_CREATED))
        }
        stored => {
            if let Err(e) = &stored {
                tracing::error!(error = %e, "cannot store ACLs");
            }
            checked
                .iter()
                .map(|c| {
                    creation_result(match (c, &stored) {
                        (Err(Refusal::Invalid(message)), _) => {
                            error(ResponseError::InvalidRequest, message)
                        }
                        (Ok(_), Ok(())) => (0, None),
                        _ => error(
                            ResponseError::KafkaStorageError,
                            "The ACLs could not be stored.",
                        ),
                    })
                })
                .collect()
        }
    };
    Reply::Send(resp)
}

/// A DescribeAcls answer: ACLs grouped by resource pattern.
fn group_by_resource(acls: Vec<Acl>) -> Vec<DescribeAclsResource> {
    let mut by: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for a in acls {
        let mut d = AclDescription::default();
        d.principal = str_bytes(&a.principal);
        d.host = str_bytes(&a.host);
        d.operation = a.operation as i8;
        d.permission_type = a.permission as i8;
        by.entry((a.resource_type as i8, a.name, a.pattern as i8))
            .or_default()
            .push(d);
    }
    by.into_iter()
        .map(|((rt, name, pattern), acls)| {
            let mut r = DescribeAclsResource::default();
            r.resource_type = rt;
            r.resource_name = str_bytes(&name);
            r.pattern_type = pattern;
            r.acls = acls;
            r
        })
        .collect()
}

pub async fn describe(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: DescribeAclsRequest,
) -> Reply<DescribeAclsResponse> {
    let Some(filter) = Filter::from_wire(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        req.pattern_type_filter,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    ) else {
        return Reply::Close("DescribeAclsRequest contains UNKNOWN elements".into());
    };
    let mut resp = DescribeAclsResponse::default();
    if !authorize::cluster(broker, ctx, Operation::Describe) {
        (resp.error_code, resp.error_message) = not_authorized(ctx, Operation::Describe);
        return Reply::Send(resp);
    }
    match &broker.authorizer {
        None => {
            (resp.error_code, resp.error_message) = error(
                ResponseError::SecurityDisabled,
                "No Authorizer is configured on the broker",
            )
        }
        Some(a) => resp.resources = group_by_resource(a.describe(&filter)),
    }
    Reply::Send(resp)
}

fn filter_result((code, message): Error) -> DeleteAclsFilterResult {
    let mut r = DeleteAclsFilterResult::default();
    r.error_code = code;
    r.error_message = message;
    r
}

fn matching(a: &Acl) -> DeleteAclsMatchingAcl {
    let mut m = DeleteAclsMatchingAcl::default();
    m.resource_type = a.resource_type as i8;
    m.resource_name = str_bytes(&a.name);
    m.pattern_type = a.pattern as i8;
    m.principal = str_bytes(&a.principal);
    m.host = str_bytes(&a.host);
    m.operation = a.operation as i8;
    m.permission_type = a.permission as i8;
    m
}

pub async fn delete(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: DeleteAclsRequest,
) -> Reply<DeleteAclsResponse> {
    let mut filters = Vec::with_capacity(req.filters.len());
    for f in &req.filters {
        match Filter::from_wire(
            f.resource_type_filter,
            f.resource_name_filter.as_deref(),
            f.pattern_type_filter,
            f.principal_filter.as_deref(),
            f.host_filter.as_deref(),
            f.operation,
            f.permission_type,
        ) {
            Some(filter) => filters.push(filter),
            None => {
                return Reply::Close("Filters contain UNKNOWN elements".into());
            }
        }
    }
    let mut resp = DeleteAclsResponse::default();
    let everyone = |e: Error| -> Vec<DeleteAclsFilterResult> {
        req.filters
            .iter()
            .map(|_| filter_result(e.clone()))
            .collect()
    };
    if !authorize::cluster(broker, ctx, Operation::Alter) {
        resp.filter_results = everyone(not_authorized(ctx, Operation::Alter));
        return Reply::Send(resp);
    }
    if broker.authorizer.is_none() {
        resp.filter_results = everyone(error(ResponseError::SecurityDisabled, NO_AUTHORIZER));
        return Reply::Send(resp);
    }
    resp.filter_results = match change(broker, move |a| a.delete(&filters, MAX_CHANGES)).await {
        Ok(removed) => removed
            .iter()
            .map(|acls| {
                let mut r = filter_result((0, None));
                r.matching_acls = acls.iter().map(matching).collect();
                r
            })
            .collect(),
        Err(ChangeError::TooMany) => everyone(error(
            ResponseError::InvalidRequest,
            &format!("Cannot remove more than {MAX_CHANGES} acls in a single delete operation."),
        )),
        Err(ChangeError::Io(e)) => {
            tracing::error!(error = %e, "cannot delete ACLs");
            everyone(error(
                ResponseError::KafkaStorageError,
                "The ACLs could not be deleted.",
            ))
        }
    };
    Reply::Send(resp)
}
