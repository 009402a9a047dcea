//! How many more partitions this broker can hold. Every partition keeps its segment files open (a
//! descriptor each), so partitions beyond the open-file limit would leave none for connections, or
//! fail half-created. As Kafka's controller refuses an operation of more than 10,000 metadata
//! records (a topic record per topic and one per partition, across a CreateTopics or
//! CreatePartitions request), so does gregor, and a topic creation or growth that would leave
//! fewer than a fifth of the open-file limit free is refused too; both with POLICY_VIOLATION.

use kafka_protocol::ResponseError;
use rustix::process::{getrlimit, setrlimit, Resource};

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

/// Raises the soft open-file limit to the hard one (as the JVM does for Kafka at start-up), and
/// returns it.
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "cannot raise the open file limit to the hard limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Refuses adding `partitions` partitions (with a topic record when `new_topic`) when that alone
/// is too large an operation, or when they would take descriptors connections need.
pub fn check(partitions: i32, new_topic: bool) -> Result<(), TopicError> {
    check_operation(i64::from(partitions) + i64::from(new_topic))?;
    let Some(limit) = getrlimit(Resource::Nofile).current else {
        return Ok(());
    };
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return Ok(());
    };
    let open = entries.count() as u64;
    let kept = (limit / 5).max(256);
    if open + partitions as u64 + kept > limit {
        metrics::counter!("gregor_partitions_refused_open_files_total").increment(1);
        return Err(TopicError::new(
            ResponseError::PolicyViolation,
            format!(
                "{partitions} more partitions would exceed this broker's open file limit: {open} of {limit} descriptors are open and {kept} are kept for connections (raise the limit, ulimit -n)"
            ),
        ));
    }
    Ok(())
}
