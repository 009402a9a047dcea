//! ApiVersions: the supported-API table, generated from the dispatcher's table.

use std::sync::Arc;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::codec;
use crate::dispatch::{Ctx, Outcome, SUPPORTED};

fn table(error: i16) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = error;
    r.api_keys = SUPPORTED
        .iter()
        .map(|s| {
            let mut v = ApiVersion::default();
            v.api_key = s.key as i16;
            v.min_version = s.min;
            v.max_version = s.max;
            v
        })
        .collect();
    r.finalized_features_epoch = -1;
    r
}

/// Kafka's rule for client software names and versions (v3+): `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
}

pub async fn handle(
    _broker: &Arc<Broker>,
    ctx: &Ctx,
    req: ApiVersionsRequest,
) -> Option<ApiVersionsResponse> {
    if ctx.header.request_api_version >= 3
        && !(valid_software_field(&req.client_software_name)
            && valid_software_field(&req.client_software_version))
    {
        return Some(table(ResponseError::InvalidRequest.code()));
    }
    Some(table(0))
}

/// The v0 answer to an ApiVersions version newer than ours: UNSUPPORTED_VERSION plus our table,
/// from which the client picks a version it shares with us and retries.
pub fn unsupported_version_answer(correlation_id: i32) -> Outcome {
    match codec::encode_response(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &table(ResponseError::UnsupportedVersion.code()),
        crate::wire::Attached::default(),
    ) {
        Ok(b) => Outcome::Respond(b),
        Err(e) => Outcome::Close(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_fields() {
        assert!(valid_software_field("apache-kafka-java"));
        assert!(valid_software_field("4.1.1"));
        assert!(!valid_software_field(""));
        assert!(!valid_software_field("-x"));
        assert!(!valid_software_field("a b"));
    }
}
