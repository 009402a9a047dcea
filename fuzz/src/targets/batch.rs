//! Record batches from untrusted bytes: header views, CRC, the record walks (plain and
//! decompressed, produce-time and stored-log forms) never panic, and a batch the partition store
//! accepts on append is stored and served byte for byte (but for the offset and leader epoch it
//! patches). Input: a flags byte, then the batch. Flags: bit 0 repairs the CRC and bit 1 the
//! length field (so the fuzzer gets past them), bit 2 appends to a compacted topic (records must
//! have keys), bit 3 turns off decompress-to-validate, bit 4 clears the producer fields (so the
//! idempotence checks do not refuse every mutation of a seed's sequence).
use std::sync::{Arc, Mutex};

use super::{scratch_dir, NoMeta};
use gregor::log::batch::{self, BatchView};
use gregor::log::{records, LogConfig, Partition, PartitionKey};

/// Appends before the partition is replaced by a fresh one (its files grow with every append).
const APPENDS_PER_LOG: usize = 20_000;
const NOW_MS: i64 = 1_700_000_000_000;

struct Log {
    _dir: tempfile::TempDir,
    partitions: [Partition; 4],
    appends: usize,
}

fn open_log() -> Log {
    let dir = scratch_dir();
    let partitions = std::array::from_fn(|i| {
        let config = LogConfig {
            cleanup_compact: i & 1 != 0,
            validate_compressed: i & 2 == 0,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            ..LogConfig::default()
        };
        let key = PartitionKey {
            topic_id: uuid::Uuid::nil(),
            partition: i as i32,
        };
        Partition::open(
            key,
            Arc::from("fuzz"),
            dir.path().join(format!("p{i}")),
            config,
            Arc::new(NoMeta),
            Arc::new(gregor::log::dir_failure::LogDirFailures::new()),
            NOW_MS,
        )
        .expect("partition")
    });
    Log {
        _dir: dir,
        partitions,
        appends: 0,
    }
}

static LOG: Mutex<Option<Log>> = Mutex::new(None);

pub fn run(data: &[u8]) {
    let [flags, rest @ ..] = data else {
        return;
    };
    let mut bytes = rest.to_vec();
    if flags & 16 != 0 && bytes.len() >= 57 {
        bytes[43..57].copy_from_slice(&[0xff; 14]);
    }
    if flags & 2 != 0 && bytes.len() >= 12 {
        let len = (bytes.len() - 12) as i32;
        bytes[8..12].copy_from_slice(&len.to_be_bytes());
    }
    if flags & 1 != 0 && bytes.len() >= 21 {
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    for frame in batch::frames(&bytes) {
        let _ = BatchView::new(frame).map(|v| v.crc_ok());
    }
    if let Ok(view) = BatchView::new(&bytes) {
        let _ = (
            view.last_offset(),
            view.last_sequence(),
            view.compression(),
            view.crc_ok(),
        );
        let _ = records::walk(&view, true, 1 << 20, |_| {});
        let _ = records::walk_stored(&view, 1 << 20, |_| {});
    }

    let mut guard = LOG.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_ref().is_none_or(|l| l.appends >= APPENDS_PER_LOG) {
        *guard = Some(open_log());
    }
    let log = guard.as_mut().expect("opened");
    log.appends += 1;
    let p = &log.partitions[usize::from((flags >> 2) & 3)];
    if let Ok(a) =
        p.append(&bytes, NOW_MS)
            .map_err(drop)
            .and_then(|a| if a.duplicate { Err(()) } else { Ok(a) })
    {
        let served = p
            .read(a.base_offset, 1 << 30, true)
            .expect("an acked batch is readable")
            .records;
        let stored = batch::frames(&served)
            .next()
            .expect("the acked batch is served");
        assert_eq!(stored.len(), bytes.len());
        assert_eq!(&stored[0..8], &a.base_offset.to_be_bytes());
        assert_eq!(&stored[8..12], &bytes[8..12]);
        assert_eq!(
            &stored[16..],
            &bytes[16..],
            "stored bytes differ from those sent"
        );
        assert_eq!(BatchView::new(stored).map(|v| v.crc_ok()), Ok(true));
    }
}
