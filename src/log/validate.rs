//! Produce-side validation of one batch before it is appended, following Kafka's `LogValidator`:
//! framing, magic, CRC, size limit, record framing, timestamps, control/transactional flags.

use kafka_protocol::ResponseError;

use super::batch::{BatchView, HeaderError};
use super::records;
use super::{AppendError, LogConfig};

/// A batch that passed validation, with what the append needs to index it.
pub(super) struct ValidatedBatch<'a> {
    pub(super) view: BatchView<'a>,
    /// Offset delta of the record carrying the batch's largest timestamp.
    pub(super) max_timestamp_delta: i32,
}

/// Names the partition in error messages (`topic-partition`, as Kafka's `TopicPartition` prints).
pub(super) struct PartitionName<'a>(pub(super) &'a str, pub(super) i32);

impl std::fmt::Display for PartitionName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// Validates `bytes` as exactly one batch for the log of `partition`.
pub(super) fn validate<'a>(
    bytes: &'a [u8],
    config: &LogConfig,
    now_ms: i64,
    partition: PartitionName<'_>,
) -> Result<ValidatedBatch<'a>, AppendError> {
    let view = BatchView::checked(bytes).map_err(|e| match e {
        HeaderError::Size => AppendError::rejected(ResponseError::CorruptMessage, "record batch size does not match its length field"),
        HeaderError::Magic(m) if (0..2).contains(&m) => AppendError::rejected(
            ResponseError::InvalidRecord,
            "produce requests with version 3 and above may only contain record batches with magic 2",
        ),
        HeaderError::Magic(m) => AppendError::rejected(ResponseError::CorruptMessage, format!("unknown record batch magic {m}")),
        HeaderError::Crc => AppendError::rejected(ResponseError::CorruptMessage, "record batch CRC mismatch"),
    })?;
    if view.size() > config.max_message_bytes {
        return Err(AppendError::rejected(
            ResponseError::MessageTooLarge,
            format!(
                "the batch is {} bytes, larger than the maximum allowed {} (max.message.bytes)",
                view.size(),
                config.max_message_bytes
            ),
        ));
    }
    if view.is_control() {
        return Err(AppendError::rejected(
            ResponseError::InvalidRecord,
            "clients may not append control batches",
        ));
    }
    if view.is_transactional() {
        return Err(AppendError::rejected(
            ResponseError::InvalidTxnState,
            "transactions are not supported by this broker",
        ));
    }
    if view.producer_id() >= 0 && view.base_sequence() < 0 {
        return Err(AppendError::rejected(
            ResponseError::InvalidRecord,
            "idempotent batch without a base sequence",
        ));
    }
    let (mut max_ts, mut max_delta) = (i64::MIN, view.last_offset_delta());
    let mut bad_ts: Option<(i32, i64)> = None;
    let mut keyless: Vec<i32> = Vec::new();
    let check_ts = !view.is_log_append_time();
    // A compacted topic needs every record's key, so its compressed batches are always walked.
    records::walk(
        &view,
        config.validate_compressed || config.cleanup_compact,
        decompress_limit(config),
        |r| {
            if r.timestamp > max_ts {
                max_ts = r.timestamp;
                max_delta = r.offset_delta;
            }
            if check_ts
                && bad_ts.is_none()
                && r.timestamp >= 0
                && !timestamp_ok(r.timestamp, now_ms, config)
            {
                bad_ts = Some((r.offset_delta, r.timestamp));
            }
            if config.cleanup_compact && !r.has_key {
                keyless.push(r.offset_delta);
            }
        },
    )
    .map_err(|e| AppendError::Rejected {
        error: ResponseError::InvalidRecord,
        record_errors: e
            .record_index
            .map(|i| vec![(i, e.message.clone())])
            .unwrap_or_default(),
        message: e.message,
    })?;
    if check_ts && bad_ts.is_none() && !timestamp_ok(view.max_timestamp(), now_ms, config) {
        bad_ts = Some((view.last_offset_delta(), view.max_timestamp()));
    }
    if let Some((index, ts)) = bad_ts {
        let message = format!("timestamp {ts} of record {index} is out of the range allowed by message.timestamp.before/after.max.ms");
        return Err(AppendError::Rejected {
            error: ResponseError::InvalidTimestamp,
            record_errors: vec![(index, message.clone())],
            message,
        });
    }
    if !keyless.is_empty() {
        return Err(keyless_rejected(&keyless, &partition));
    }
    Ok(ValidatedBatch {
        view,
        max_timestamp_delta: max_delta,
    })
}

/// The most record errors a produce answer carries for one batch. Kafka lists one per rejected
/// record (a 763 KB batch of a million keyless records made an 80 MB answer); beyond this, the
/// records are covered by the partition's error and message, which count them all (Java's
/// producer gives such records the batch's generic error).
const MAX_RECORD_ERRORS: usize = 1000;

/// INVALID_RECORD for records without a key on a compacted topic, worded as Kafka's
/// `LogValidator` words it (one record error per record up to [`MAX_RECORD_ERRORS`], the first
/// three in the message).
fn keyless_rejected(indexes: &[i32], partition: &PartitionName<'_>) -> AppendError {
    let text =
        format!("Compacted topic cannot accept message without key in topic partition {partition}");
    let shown: Vec<String> = indexes
        .iter()
        .take(3)
        .map(|i| format!("RecordError(batchIndex={i}, message='{text}')"))
        .collect();
    AppendError::Rejected {
        error: ResponseError::InvalidRecord,
        message: format!(
            "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
            indexes.len(),
            shown.join(", ")
        ),
        record_errors: indexes
            .iter()
            .take(MAX_RECORD_ERRORS)
            .map(|&i| (i, text.clone()))
            .collect(),
    }
}

fn timestamp_ok(ts: i64, now_ms: i64, config: &LogConfig) -> bool {
    ts <= now_ms.saturating_add(config.timestamp_after_max_ms)
        && ts >= now_ms.saturating_sub(config.timestamp_before_max_ms)
}

/// How far a compressed batch may expand while being validated: generous for real data, bounded
/// so a decompression bomb cannot exhaust memory.
pub(super) fn decompress_limit(config: &LogConfig) -> usize {
    config
        .max_message_bytes
        .saturating_mul(64)
        .clamp(64 << 20, 1 << 30)
}

#[cfg(test)]
mod tests {
    use super::super::batch::tests::{build_batch, build_batch_with, fix_crc};
    use super::*;

    const NAME: PartitionName<'static> = PartitionName("t", 0);

    fn code(r: Result<ValidatedBatch<'_>, AppendError>) -> ResponseError {
        r.err().map(|e| e.code()).expect("rejected")
    }

    #[test]
    fn accepts_good_batch_and_rejects_each_fault() {
        let cfg = LogConfig::default();
        let good = build_batch(0, &[(Some(b"k"), Some(b"v"))]);
        assert!(validate(&good, &cfg, 1000, NAME).is_ok());
        let mut crc = good.clone();
        let last = crc.len() - 1;
        crc[last] ^= 0xff;
        assert_eq!(
            code(validate(&crc, &cfg, 1000, NAME)),
            ResponseError::CorruptMessage
        );
        assert_eq!(
            code(validate(&good[..good.len() - 1], &cfg, 1000, NAME)),
            ResponseError::CorruptMessage
        );
        let small = LogConfig {
            max_message_bytes: 10,
            ..LogConfig::default()
        };
        assert_eq!(
            code(validate(&good, &small, 1000, NAME)),
            ResponseError::MessageTooLarge
        );
        let mut control = good.clone();
        control[22] |= 0x20;
        fix_crc(&mut control);
        assert_eq!(
            code(validate(&control, &cfg, 1000, NAME)),
            ResponseError::InvalidRecord
        );
        let future = build_batch_with(0, 10_000_000, -1, -1, -1, &[(None, Some(b"v"))]);
        assert_eq!(
            code(validate(&future, &cfg, 1000, NAME)),
            ResponseError::InvalidTimestamp
        );
        let noseq = build_batch_with(0, 0, 5, 0, -1, &[(None, Some(b"v"))]);
        assert_eq!(
            code(validate(&noseq, &cfg, 1000, NAME)),
            ResponseError::InvalidRecord
        );
    }

    #[test]
    fn compacted_topics_refuse_records_without_keys() {
        let compact = LogConfig {
            cleanup_compact: true,
            ..LogConfig::default()
        };
        let keyed = build_batch(0, &[(Some(b"k"), Some(b"v")), (Some(b"k"), None)]);
        assert!(validate(&keyed, &compact, 1000, NAME).is_ok());
        let mixed = build_batch(
            0,
            &[(None, Some(b"a")), (Some(b"k"), Some(b"v")), (None, None)],
        );
        assert!(validate(&mixed, &LogConfig::default(), 1000, NAME).is_ok());
        let Err(AppendError::Rejected {
            error,
            message,
            record_errors,
        }) = validate(&mixed, &compact, 1000, NAME)
        else {
            panic!("keyless records accepted on a compacted topic")
        };
        assert_eq!(error, ResponseError::InvalidRecord);
        let text = "Compacted topic cannot accept message without key in topic partition t-0";
        assert_eq!(
            record_errors,
            vec![(0, text.to_string()), (2, text.to_string())]
        );
        assert_eq!(message, format!("One or more records have been rejected due to 2 record errors in total, and only showing the first three errors at most: [RecordError(batchIndex=0, message='{text}'), RecordError(batchIndex=2, message='{text}')]"));
    }
}
