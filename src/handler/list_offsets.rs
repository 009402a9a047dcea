//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), and by
//! timestamp through each segment's sparse time index (looked up by the store).

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::dispatch::Ctx;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: ListOffsetsRequest,
) -> Option<ListOffsetsResponse> {
    let version = ctx.header.request_api_version;
    let mut resp = ListOffsetsResponse::default();
    for t in req.topics {
        let topic = broker.topics.get(t.name.0.as_str());
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = t.name.clone();
        for p in t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            if version >= 4 {
                // The field exists from v4; setting it below makes the answer unencodable.
                pr.leader_epoch = 0;
            }
            match topic.as_ref().and_then(|t| t.partition(p.partition_index)) {
                None => pr.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(part) => match broker.store.list_offset(part, p.timestamp).await {
                    Ok((offset, ts)) => {
                        pr.offset = offset;
                        pr.timestamp = ts;
                    }
                    Err(e) => pr.error_code = e.code(),
                },
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    Some(resp)
}
