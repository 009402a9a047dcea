//! One module per API family. Each handler takes the decoded request and returns the response
//! (or `None` when no response is sent); Kafka errors travel as error codes inside responses.

pub mod acls;
pub mod admin;
pub mod api_versions;
pub(crate) mod authorize;
mod config_checks;
pub mod configs;
pub mod configs_alter;
pub mod fetch;
pub mod fetch_session;
pub mod group;
pub mod init_producer_id;
pub mod list_offsets;
pub mod log_dirs;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod quorum;
pub mod quotas;
pub mod replicas;
pub mod security;
pub mod topics;

use kafka_protocol::protocol::StrBytes;

/// A response string from a Rust string.
pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Kafka's default message for an error code, where clients print it (as Java's `Errors` does).
pub(crate) fn default_message(e: kafka_protocol::ResponseError) -> &'static str {
    use kafka_protocol::ResponseError as E;
    match e {
        E::UnknownTopicOrPartition => "This server does not host this topic-partition.",
        E::UnknownTopicId => "This server does not host this topic ID.",
        E::TopicAuthorizationFailed => "Topic authorization failed.",
        E::GroupAuthorizationFailed => "Group authorization failed.",
        E::ClusterAuthorizationFailed => "Cluster authorization failed.",
        E::TransactionalIdAuthorizationFailed => "Transactional Id authorization failed.",
        _ => "",
    }
}
