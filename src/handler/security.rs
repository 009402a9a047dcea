//! SASL requests that reach the dispatcher (after authentication, or on a listener without SASL),
//! answered as Kafka's KafkaApis answers them, and the SCRAM credential APIs (KIP-554).

use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::*;

use kafka_protocol::ResponseError;

use super::{authorize, default_message, str_bytes};
use crate::broker::Broker;
use crate::dispatch::{Ctx, Reply};
use crate::security::acl::Operation;
use crate::security::credentials::Change;
use crate::security::sasl::ILLEGAL_SASL_STATE;

pub async fn sasl_handshake(
    _broker: &Arc<Broker>,
    _ctx: &Ctx,
    _req: SaslHandshakeRequest,
) -> Option<SaslHandshakeResponse> {
    let mut r = SaslHandshakeResponse::default();
    r.error_code = ILLEGAL_SASL_STATE;
    Some(r)
}

pub async fn sasl_authenticate(
    _broker: &Arc<Broker>,
    _ctx: &Ctx,
    _req: SaslAuthenticateRequest,
) -> Option<SaslAuthenticateResponse> {
    let mut r = SaslAuthenticateResponse::default();
    r.error_code = ILLEGAL_SASL_STATE;
    r.error_message = Some(str_bytes(
        "SaslAuthenticate request received after successful authentication",
    ));
    Some(r)
}

pub async fn describe_scram_credentials(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: DescribeUserScramCredentialsRequest,
) -> Option<DescribeUserScramCredentialsResponse> {
    if !authorize::cluster(broker, ctx, Operation::Describe) {
        // As Kafka's error response: the error at the top and once per user asked about, with
        // the user left empty.
        let e = ResponseError::ClusterAuthorizationFailed;
        let message = Some(str_bytes(default_message(e)));
        let mut r = DescribeUserScramCredentialsResponse::default();
        r.error_code = e.code();
        r.error_message = message.clone();
        r.results = (0..req.users.map_or(0, |u| u.len()))
            .map(|_| {
                let mut res = DescribeUserScramCredentialsResult::default();
                res.error_code = e.code();
                res.error_message = message.clone();
                res
            })
            .collect();
        return Some(r);
    }
    let users: Vec<String> = req
        .users
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    // Kafka answers empty messages, not null, where there is no error (AlterUserScramCredentials
    // answers null).
    let mut r = DescribeUserScramCredentialsResponse::default();
    r.results = broker
        .credentials
        .describe(&users)
        .into_iter()
        .map(|((user, code, message), infos)| {
            let mut res = DescribeUserScramCredentialsResult::default();
            res.user = str_bytes(&user);
            res.error_code = code;
            res.error_message = Some(str_bytes(message.as_deref().unwrap_or("")));
            res.credential_infos = infos
                .into_iter()
                .map(|(mechanism, iterations)| {
                    let mut i = CredentialInfo::default();
                    i.mechanism = mechanism;
                    i.iterations = iterations;
                    i
                })
                .collect();
            res
        })
        .collect();
    Some(r)
}

pub async fn alter_scram_credentials(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: AlterUserScramCredentialsRequest,
) -> Reply<AlterUserScramCredentialsResponse> {
    if !authorize::cluster(broker, ctx, Operation::Alter) {
        // As Kafka's error response: once per distinct user named, in name order.
        let users: std::collections::BTreeSet<&str> = req
            .deletions
            .iter()
            .map(|d| d.name.as_str())
            .chain(req.upsertions.iter().map(|u| u.name.as_str()))
            .collect();
        let message = str_bytes(&authorize::needs(ctx, Operation::Alter));
        let mut r = AlterUserScramCredentialsResponse::default();
        r.results = users
            .into_iter()
            .map(|user| {
                let mut res = AlterUserScramCredentialsResult::default();
                res.user = str_bytes(user);
                res.error_code = ResponseError::ClusterAuthorizationFailed.code();
                res.error_message = Some(message.clone());
                res
            })
            .collect();
        return Reply::Send(r);
    }
    let deletions = req
        .deletions
        .into_iter()
        .map(|d| Change::Delete {
            user: d.name.to_string(),
            mechanism: d.mechanism,
        })
        .collect();
    let upsertions = req
        .upsertions
        .into_iter()
        .map(|u| Change::Upsert {
            user: u.name.to_string(),
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        })
        .collect();
    let b = broker.clone();
    // Applied and flushed to the meta store before the answer: blocking I/O.
    let outcomes =
        match tokio::task::spawn_blocking(move || b.credentials.alter(deletions, upsertions)).await
        {
            Ok(outcomes) => outcomes,
            Err(e) => return Reply::Close(format!("AlterUserScramCredentials failed: {e}")),
        };
    let mut r = AlterUserScramCredentialsResponse::default();
    r.results = outcomes
        .into_iter()
        .map(|(user, code, message)| {
            let mut res = AlterUserScramCredentialsResult::default();
            res.user = str_bytes(&user);
            res.error_code = code;
            res.error_message = message.as_deref().map(str_bytes);
            res
        })
        .collect();
    Reply::Send(r)
}
