//! ApiKey → handler routing. The supported-API table and the routing `match` are generated from one
//! list, so the ApiVersions answer cannot drift from what is actually handled.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Message, Request};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::broker::Broker;
use crate::codec::{self, DecodeError};
use crate::config::Listener;
use crate::handler;
use crate::security::authorizer::Session;
use crate::wire::{Attached, Chunk};

/// What the connection does with a request.
pub enum Outcome {
    /// A response frame, as chunks to write in order.
    Respond(Vec<Chunk>),
    /// acks=0 produce: nothing is sent back.
    NoResponse,
    /// Close the connection, logging the reason.
    Close(String),
    /// Send this response, then close the connection (a failed authentication).
    RespondThenClose(Vec<Chunk>, String),
}

/// What a handler knows about the request besides its body.
pub struct Ctx {
    pub header: RequestHeader,
    pub peer: SocketAddr,
    /// Who sent it, for the authorizer.
    pub session: Arc<Session>,
    /// The listener the request arrived on (clients are told its advertised endpoint).
    pub listener: Arc<Listener>,
    /// Cancelled when the client's connection is gone: a delayed operation stops waiting (its
    /// answer would go nowhere) so the connection's slot is freed at once.
    pub gone: CancellationToken,
}

/// What a handler asks for: a response, nothing (acks=0), or closing the connection.
pub enum Reply<R> {
    Send(R),
    /// A response carrying record sets, sent without copying them (see `wire`).
    SendAttached(R, Attached),
    Silent,
    Close(String),
}

impl<R> From<Option<R>> for Reply<R> {
    fn from(r: Option<R>) -> Self {
        match r {
            Some(r) => Reply::Send(r),
            None => Reply::Silent,
        }
    }
}

/// One supported API: its key and the version range advertised in ApiVersions.
#[derive(Debug, Clone, Copy)]
pub struct ApiSupport {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

macro_rules! apis {
    ($( $key:ident : $req:ty => $handler:path, $min:expr, $max:expr; )*) => {
        /// Every API gregor handles, with the versions it advertises.
        pub const SUPPORTED: &[ApiSupport] = &[ $( ApiSupport { key: ApiKey::$key, min: $min, max: $max }, )* ];

        /// Decodes (and drops) the body of a request whose api and version are supported; the
        /// request decoders' fuzzing entry point.
        pub fn decode_request_body(api: ApiKey, version: i16, body: &mut Bytes) -> Result<(), DecodeError> {
            match api {
                $( ApiKey::$key => codec::decode_body::<$req>(api, version, body).map(drop), )*
                other => Err(DecodeError::UnknownApiKey(other as i16)),
            }
        }

        async fn route(broker: &Arc<Broker>, api: ApiKey, ctx: &Ctx, body: &mut Bytes) -> Result<Outcome, DecodeError> {
            let version = ctx.header.request_api_version;
            match api {
                $( ApiKey::$key => {
                    let request = codec::decode_body::<$req>(api, version, body)?;
                    let reply: Reply<<$req as Request>::Response> = $handler(broker, ctx, request).await.into();
                    Ok(match reply {
                        Reply::Send(response) => encode(api, &ctx.header, &response, Attached::default()),
                        Reply::SendAttached(response, attached) => encode(api, &ctx.header, &response, attached),
                        Reply::Silent => Outcome::NoResponse,
                        Reply::Close(reason) => Outcome::Close(reason),
                    })
                } )*
                other => Ok(Outcome::Close(format!("{other:?} is not supported"))),
            }
        }
    };
}

apis! {
    Produce: ProduceRequest => handler::produce::handle, 0, 13;
    Fetch: FetchRequest => handler::fetch::handle, 4, 18;
    ListOffsets: ListOffsetsRequest => handler::list_offsets::handle, 1, 10;
    Metadata: MetadataRequest => handler::metadata::handle, 0, 13;
    ApiVersions: ApiVersionsRequest => handler::api_versions::handle, 0, 4;
    CreateTopics: CreateTopicsRequest => handler::topics::create, 2, 7;
    DeleteTopics: DeleteTopicsRequest => handler::topics::delete, 1, 6;
    InitProducerId: InitProducerIdRequest => handler::init_producer_id::handle, 0, 5;
    FindCoordinator: FindCoordinatorRequest => handler::group::find_coordinator, 0, 6;
    JoinGroup: JoinGroupRequest => handler::group::join, 0, 9;
    SyncGroup: SyncGroupRequest => handler::group::sync, 0, 5;
    Heartbeat: HeartbeatRequest => handler::group::heartbeat, 0, 4;
    LeaveGroup: LeaveGroupRequest => handler::group::leave, 0, 5;
    ListGroups: ListGroupsRequest => handler::group::list, 0, 5;
    DescribeGroups: DescribeGroupsRequest => handler::group::describe, 0, 6;
    DeleteGroups: DeleteGroupsRequest => handler::group::delete, 0, 2;
    OffsetCommit: OffsetCommitRequest => handler::offsets::commit, 2, 9;
    OffsetFetch: OffsetFetchRequest => handler::offsets::fetch, 1, 9;
    OffsetDelete: OffsetDeleteRequest => handler::offsets::delete, 0, 0;
    DescribeConfigs: DescribeConfigsRequest => handler::configs::describe, 1, 4;
    AlterConfigs: AlterConfigsRequest => handler::configs_alter::alter, 0, 2;
    IncrementalAlterConfigs: IncrementalAlterConfigsRequest => handler::configs_alter::incremental_alter, 0, 1;
    CreatePartitions: CreatePartitionsRequest => handler::admin::create_partitions, 0, 3;
    DescribeCluster: DescribeClusterRequest => handler::admin::describe_cluster, 0, 2;
    DescribeTopicPartitions: DescribeTopicPartitionsRequest => handler::admin::describe_topic_partitions, 0, 0;
    ElectLeaders: ElectLeadersRequest => handler::replicas::elect_leaders, 0, 2;
    AlterPartitionReassignments: AlterPartitionReassignmentsRequest => handler::replicas::alter_partition_reassignments, 0, 1;
    ListPartitionReassignments: ListPartitionReassignmentsRequest => handler::replicas::list_partition_reassignments, 0, 0;
    DescribeQuorum: DescribeQuorumRequest => handler::quorum::describe, 0, 2;
    ListConfigResources: ListConfigResourcesRequest => handler::configs::list_resources, 0, 1;
    DescribeLogDirs: DescribeLogDirsRequest => handler::log_dirs::describe, 1, 4;
    AlterReplicaLogDirs: AlterReplicaLogDirsRequest => handler::log_dirs::alter, 1, 2;
    DeleteRecords: DeleteRecordsRequest => handler::admin::delete_records, 0, 2;
    SaslHandshake: SaslHandshakeRequest => handler::security::sasl_handshake, 0, 1;
    SaslAuthenticate: SaslAuthenticateRequest => handler::security::sasl_authenticate, 0, 2;
    DescribeUserScramCredentials: DescribeUserScramCredentialsRequest => handler::security::describe_scram_credentials, 0, 0;
    AlterUserScramCredentials: AlterUserScramCredentialsRequest => handler::security::alter_scram_credentials, 0, 0;
    DescribeClientQuotas: DescribeClientQuotasRequest => handler::quotas::describe, 0, 1;
    DescribeAcls: DescribeAclsRequest => handler::acls::describe, 1, 3;
    CreateAcls: CreateAclsRequest => handler::acls::create, 1, 3;
    DeleteAcls: DeleteAclsRequest => handler::acls::delete, 1, 3;
}

/// Produce v0–v2 are advertised (librdkafka needs it, KAFKA-18659) but refused, as Kafka 4 does.
const PRODUCE_FLOOR: i16 = 3;

pub fn supported(api: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|s| s.key == api && (s.min..=s.max).contains(&version))
}

/// A response frame for `header`'s request; closes the connection if it cannot be encoded.
pub(crate) fn encode<T: kafka_protocol::protocol::Encodable>(
    api: ApiKey,
    header: &RequestHeader,
    body: &T,
    attached: Attached,
) -> Outcome {
    match codec::encode_response(
        api,
        header.request_api_version,
        header.correlation_id,
        body,
        attached,
    ) {
        Ok(bytes) => Outcome::Respond(bytes),
        Err(e) => {
            tracing::error!(error = %e, "response encoding failed");
            Outcome::Close(e.to_string())
        }
    }
}

/// Decodes one request frame, runs its handler and returns what to send back.
pub async fn dispatch(
    broker: &Arc<Broker>,
    session: &Arc<Session>,
    listener: &Arc<Listener>,
    gone: CancellationToken,
    mut frame: Bytes,
) -> Outcome {
    let started = Instant::now();
    if let Some((key, version, correlation_id)) = codec::peek_header(&frame) {
        if key == ApiKey::ApiVersions as i16
            && !(0..=ApiVersionsRequest::VERSIONS.max).contains(&version)
        {
            // Unknown ApiVersions version: answer in v0 with UNSUPPORTED_VERSION and our table.
            metrics::counter!("gregor_requests_total", "api" => "ApiVersions").increment(1);
            return handler::api_versions::unsupported_version_answer(correlation_id);
        }
    }
    let (api, header) = match codec::decode_header(&mut frame) {
        Ok(h) => h,
        Err(e) => return Outcome::Close(e.to_string()),
    };
    let version = header.request_api_version;
    let correlation_id = header.correlation_id;
    let ctx = Ctx {
        header,
        peer: session.peer,
        session: session.clone(),
        listener: listener.clone(),
        gone,
    };
    let name = api_name(api);
    metrics::counter!("gregor_requests_total", "api" => name).increment(1);
    let outcome = if api == ApiKey::Produce && (0..PRODUCE_FLOOR).contains(&version) {
        handler::produce::refuse_legacy(&ctx, frame)
    } else if !supported(api, version) {
        Outcome::Close(format!("{api:?} v{version} is not supported"))
    } else {
        let span = tracing::debug_span!("request", api = name, version, correlation_id);
        match route(broker, api, &ctx, &mut frame).instrument(span).await {
            Ok(o) => o,
            Err(e) => Outcome::Close(e.to_string()),
        }
    };
    metrics::histogram!("gregor_request_seconds", "api" => name)
        .record(started.elapsed().as_secs_f64());
    outcome
}

/// The API label of a frame, from its header (before decoding it).
pub fn api_label(frame: &[u8]) -> &'static str {
    codec::peek_header(frame)
        .and_then(|(key, _, _)| ApiKey::try_from(key).ok())
        .map_or("unknown", api_name)
}

/// A static label for metrics and logs.
pub fn api_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::DescribeTopicPartitions => "DescribeTopicPartitions",
        ApiKey::ElectLeaders => "ElectLeaders",
        ApiKey::AlterPartitionReassignments => "AlterPartitionReassignments",
        ApiKey::ListPartitionReassignments => "ListPartitionReassignments",
        ApiKey::DescribeQuorum => "DescribeQuorum",
        ApiKey::ListConfigResources => "ListConfigResources",
        ApiKey::DescribeLogDirs => "DescribeLogDirs",
        ApiKey::AlterReplicaLogDirs => "AlterReplicaLogDirs",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::SaslAuthenticate => "SaslAuthenticate",
        ApiKey::DescribeUserScramCredentials => "DescribeUserScramCredentials",
        ApiKey::AlterUserScramCredentials => "AlterUserScramCredentials",
        ApiKey::DescribeClientQuotas => "DescribeClientQuotas",
        ApiKey::DescribeAcls => "DescribeAcls",
        ApiKey::CreateAcls => "CreateAcls",
        ApiKey::DeleteAcls => "DeleteAcls",
        _ => "other",
    }
}
