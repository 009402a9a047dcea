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

/// Validates `bytes` as exactly one batch for this log.
pub(super) fn validate<'a>(
    bytes: &'a [u8],
    config: &LogConfig,
    now_ms: i64,
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
    let check_ts = !view.is_log_append_time();
    records::walk(
        &view,
        config.validate_compressed,
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
    Ok(ValidatedBatch {
        view,
        max_timestamp_delta: max_delta,
    })
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

    fn code(r: Result<ValidatedBatch<'_>, AppendError>) -> ResponseError {
        r.err().map(|e| e.code()).expect("rejected")
    }

    #[test]
    fn accepts_good_batch_and_rejects_each_fault() {
        let cfg = LogConfig::default();
        let good = build_batch(0, &[(Some(b"k"), Some(b"v"))]);
        assert!(validate(&good, &cfg, 1000).is_ok());
        let mut crc = good.clone();
        let last = crc.len() - 1;
        crc[last] ^= 0xff;
        assert_eq!(
            code(validate(&crc, &cfg, 1000)),
            ResponseError::CorruptMessage
        );
        assert_eq!(
            code(validate(&good[..good.len() - 1], &cfg, 1000)),
            ResponseError::CorruptMessage
        );
        let small = LogConfig {
            max_message_bytes: 10,
            ..LogConfig::default()
        };
        assert_eq!(
            code(validate(&good, &small, 1000)),
            ResponseError::MessageTooLarge
        );
        let mut control = good.clone();
        control[22] |= 0x20;
        fix_crc(&mut control);
        assert_eq!(
            code(validate(&control, &cfg, 1000)),
            ResponseError::InvalidRecord
        );
        let future = build_batch_with(0, 10_000_000, -1, -1, -1, &[(None, Some(b"v"))]);
        assert_eq!(
            code(validate(&future, &cfg, 1000)),
            ResponseError::InvalidTimestamp
        );
        let noseq = build_batch_with(0, 0, 5, 0, -1, &[(None, Some(b"v"))]);
        assert_eq!(
            code(validate(&noseq, &cfg, 1000)),
            ResponseError::InvalidRecord
        );
    }
}
