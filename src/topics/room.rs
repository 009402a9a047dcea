//! How many more partitions this broker takes. As Kafka's controller refuses an operation of more
//! than 10,000 metadata records (a topic record per topic and one per partition, across a
//! CreateTopics or CreatePartitions request), so does gregor; and a creation or growth past
//! `gregor.max.broker.partitions` partitions on this broker is refused too, both with
//! POLICY_VIOLATION. Partitions hold no descriptor while idle (see `log::descriptors`), so the
//! open-file limit bounds nothing here.

use kafka_protocol::ResponseError;

use super::TopicError;

/// Most metadata records one operation may write (Kafka's `MAX_RECORDS_PER_USER_OP`): a topic
/// record per topic created and a partition record per partition added, across a whole request.
pub const MAX_RECORDS_PER_OPERATION: i64 = 10_000;

/// Refuses an operation writing `records` metadata records, as Kafka's controller does.
pub fn check_operation(records: i64) -> Result<(), TopicError> {
    if records > MAX_RECORDS_PER_OPERATION {
        return Err(TopicError::new(
            ResponseError::PolicyViolation,
            "Unable to perform excessively large batch operation.",
        ));
    }
    Ok(())
}

/// Refuses adding `partitions` partitions (with a topic record when `new_topic`) to a broker
/// holding `held`, when that alone is too large an operation or would pass `max`.
pub fn check(partitions: i32, new_topic: bool, held: usize, max: usize) -> Result<(), TopicError> {
    check_operation(i64::from(partitions) + i64::from(new_topic))?;
    let adding = usize::try_from(partitions).unwrap_or(0);
    if held.saturating_add(adding) > max {
        metrics::counter!("gregor_partitions_refused_total").increment(1);
        return Err(TopicError::new(
            ResponseError::PolicyViolation,
            format!(
                "{partitions} more partitions would exceed this broker's limit of {max} (gregor.max.broker.partitions); it holds {held}"
            ),
        ));
    }
    Ok(())
}
