//! DescribeClientQuotas: gregor enforces no client quotas and has none set (AlterClientQuotas is
//! not offered), so every valid filter matches nothing; filters are checked as Kafka's
//! `ClientQuotasImage.describe` checks them, with its errors. `kafka-configs.sh --describe
//! --entity-type users` asks this before listing a user's SCRAM credentials.

use std::sync::Arc;

use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::ResponseError;

use super::{authorize, default_message, str_bytes};
use crate::broker::Broker;
use crate::dispatch::Ctx;
use crate::security::acl::Operation;

const MATCH_TYPE_EXACT: i8 = 0;
const MATCH_TYPE_DEFAULT: i8 = 1;
const MATCH_TYPE_SPECIFIED: i8 = 2;

/// Kafka's first objection to a filter: (error, message).
fn check(req: &DescribeClientQuotasRequest) -> Result<(), (ResponseError, String)> {
    let invalid = |m: String| Err((ResponseError::InvalidRequest, m));
    let mut seen: Vec<&str> = Vec::new();
    for c in &req.components {
        let t = c.entity_type.as_str();
        if t.is_empty() {
            return invalid("Invalid empty entity type.".into());
        }
        if seen.contains(&t) {
            return invalid(format!(
                "Entity type {t} cannot appear more than once in the filter."
            ));
        }
        if !["ip", "user", "client-id"].contains(&t) {
            return Err((
                ResponseError::UnsupportedVersion,
                format!("Unsupported entity type {t}"),
            ));
        }
        seen.push(t);
        match (c.match_type, c._match.is_some()) {
            (MATCH_TYPE_EXACT, false) => {
                return invalid(
                    "Request specified MATCH_TYPE_EXACT, but set match string to null.".into(),
                )
            }
            (MATCH_TYPE_DEFAULT, true) => {
                return invalid(
                    "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
                        .into(),
                )
            }
            (MATCH_TYPE_SPECIFIED, true) => {
                return invalid(
                    "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."
                        .into(),
                )
            }
            (MATCH_TYPE_EXACT | MATCH_TYPE_DEFAULT | MATCH_TYPE_SPECIFIED, _) => {}
            (other, _) => return invalid(format!("Unknown match type {other}")),
        }
    }
    if seen.contains(&"ip") && seen.len() > 1 {
        return invalid("Invalid entity filter component combination, IP filter component should not be used with user or clientId filter component.".into());
    }
    Ok(())
}

pub async fn describe(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: DescribeClientQuotasRequest,
) -> Option<DescribeClientQuotasResponse> {
    let mut r = DescribeClientQuotasResponse::default();
    // As Kafka: DESCRIBE_CONFIGS on the cluster before the filter is looked at.
    let refused = ResponseError::ClusterAuthorizationFailed;
    let checked = match authorize::cluster(broker, ctx, Operation::DescribeConfigs) {
        true => check(&req),
        false => Err((refused, default_message(refused).to_string())),
    };
    match checked {
        Ok(()) => r.entries = Some(Vec::new()),
        Err((error, message)) => {
            r.error_code = error.code();
            r.error_message = Some(str_bytes(&message));
            r.entries = None;
        }
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
    use kafka_protocol::protocol::StrBytes;

    fn filter(components: &[(&str, i8, Option<&str>)]) -> DescribeClientQuotasRequest {
        let mut r = DescribeClientQuotasRequest::default();
        r.components = components
            .iter()
            .map(|(t, m, v)| {
                let mut c = ComponentData::default();
                c.entity_type = StrBytes::from_string(t.to_string());
                c.match_type = *m;
                c._match = v.map(|v| StrBytes::from_string(v.to_string()));
                c
            })
            .collect();
        r
    }

    #[test]
    fn kafkas_filter_rules() {
        assert!(check(&filter(&[("user", 0, Some("carol"))])).is_ok());
        assert!(check(&filter(&[("user", 2, None), ("client-id", 1, None)])).is_ok());
        let e = |c: &[(&str, i8, Option<&str>)]| check(&filter(c)).unwrap_err();
        assert_eq!(e(&[("", 0, Some("x"))]).1, "Invalid empty entity type.");
        assert_eq!(
            e(&[("user", 0, Some("a")), ("user", 2, None)]).1,
            "Entity type user cannot appear more than once in the filter."
        );
        assert_eq!(
            e(&[("topic", 2, None)]).0,
            ResponseError::UnsupportedVersion
        );
        assert!(e(&[("user", 0, None)]).1.contains("MATCH_TYPE_EXACT"));
        assert!(e(&[("user", 1, Some("x"))])
            .1
            .contains("MATCH_TYPE_DEFAULT"));
        assert_eq!(e(&[("user", 7, None)]).1, "Unknown match type 7");
        assert!(e(&[("ip", 2, None), ("user", 2, None)])
            .1
            .contains("IP filter component"));
    }
}
