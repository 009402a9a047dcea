//! What gregor keeps in a log dir besides segments: partition directory names (`<topic>-<n>`, and
//! the `-future` / `-delete` copies of a move or a delete in passing), each partition's
//! `partition.metadata` (Kafka's format: the topic id, so a directory says which topic it belongs
//! to), and the order new partitions are placed in.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::TopicError;

pub(super) fn partition_dir(log_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    log_dir.join(partition_name(topic, partition))
}

pub(super) fn partition_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// Where a move to another log dir copies a partition before the switch (Kafka's `-future`).
pub(super) fn future_name(topic: &str, partition: i32, id: &Uuid) -> String {
    format!("{topic}-{partition}.{}-future", id.simple())
}

/// Where a partition copy goes to be removed (a deleted topic's, or a moved partition's source).
pub(super) fn delete_name(topic: &str, partition: i32, id: &Uuid) -> String {
    format!("{topic}-{partition}.{}-delete", id.simple())
}

/// Whether `name` is one gregor gives a copy in passing (`<partition>.<32 hex>-future|-delete`).
pub(super) fn is_transient_name(name: &str) -> bool {
    let Some(stem) = name
        .strip_suffix("-future")
        .or_else(|| name.strip_suffix("-delete"))
    else {
        return false;
    };
    stem.rsplit_once('.')
        .is_some_and(|(_, id)| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Renames a partition copy out of the way (durably), then removes it.
pub(super) fn remove_copy(dir: &Path, doomed: &Path) -> io::Result<()> {
    std::fs::rename(dir, doomed)?;
    if let Some(parent) = doomed.parent() {
        crate::log::sync::sync_dir(parent)?;
    }
    std::fs::remove_dir_all(doomed)
}

/// Log dirs in the order new partitions go to them, as Kafka's `LogManager.nextLogDirs`: fewest
/// partitions first, ties in configured order.
pub(super) fn next_log_dirs(log_dirs: &[PathBuf], counts: &HashMap<PathBuf, usize>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..log_dirs.len()).collect();
    order.sort_by_key(|&i| counts.get(&log_dirs[i]).copied().unwrap_or(0));
    order
}

/// Kafka's per-partition file naming its topic's id (`PartitionMetadataFile`).
pub(super) const PARTITION_METADATA: &str = "partition.metadata";

/// A topic id as Kafka writes it: URL-safe base64 of its 16 bytes, without padding.
fn kafka_uuid(id: &Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn parse_kafka_uuid(s: &str) -> Option<Uuid> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    Uuid::from_slice(&bytes).ok().filter(|id| !id.is_nil())
}

/// Writes a partition directory's `partition.metadata` (durably) unless it already names `id`.
pub(super) fn write_partition_metadata(dir: &Path, id: &Uuid) -> io::Result<()> {
    let path = dir.join(PARTITION_METADATA);
    let text = format!("version: 0\ntopic_id: {}\n", kafka_uuid(id));
    if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    let tmp = dir.join(format!("{PARTITION_METADATA}.tmp"));
    std::fs::write(&tmp, &text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    crate::log::sync::sync_dir(dir)
}

/// Checks that a partition directory about to be opened for topic `id` is that topic's: a
/// `partition.metadata` naming another id means the meta store and the directory disagree (a meta
/// store from another broker or an older backup): nothing is opened, truncated or rewritten (Kafka
/// refuses it too, with InconsistentTopicIdException).
pub(super) fn check_owner(dir: &Path, id: &Uuid) -> io::Result<()> {
    if !dir.join(PARTITION_METADATA).exists() {
        return Ok(());
    }
    match read_partition_metadata(dir) {
        Some(found) if found == *id => Ok(()),
        found => Err(io::Error::other(format!(
            "{} belongs to topic id {}, but the meta store gives the topic id {}: the meta store \
             is not this data's (another broker's, or an older backup?); gregor will not open it. \
             Move the directory or the meta store away",
            dir.display(),
            found.map_or_else(|| "(unreadable)".to_string(), |f| kafka_uuid(&f)),
            kafka_uuid(id),
        ))),
    }
}

/// The topic id a partition directory's `partition.metadata` names, if it is readable and valid.
fn read_partition_metadata(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA)).ok()?;
    let mut lines = text.lines();
    if lines.next()?.trim() != "version: 0" {
        return None;
    }
    parse_kafka_uuid(lines.next()?.trim().strip_prefix("topic_id:")?.trim())
}

/// A directory found in a log dir that no known topic owns.
#[derive(Debug, PartialEq)]
pub(super) enum Stray {
    /// A `-future` or `-delete` copy gregor made in passing: removed.
    Transient,
    /// A partition directory that names its topic: its topic is rebuilt from it.
    Partition {
        topic: String,
        partition: i32,
        id: Uuid,
    },
    /// Anything else: not gregor's, left alone.
    Foreign,
}

/// The topic id in a transient copy's name (`<partition>.<32 hex>-future|-delete`).
fn transient_id(name: &str) -> Option<Uuid> {
    let stem = name
        .strip_suffix("-future")
        .or_else(|| name.strip_suffix("-delete"))?;
    Uuid::try_parse(stem.rsplit_once('.')?.1).ok()
}

pub(super) fn classify(path: &Path, name: &str) -> Stray {
    // gregor's own copy only if its partition.metadata names the id in its name: a directory a
    // user happened to name so is left alone.
    if is_transient_name(name) {
        return match transient_id(name) {
            Some(id) if read_partition_metadata(path) == Some(id) => Stray::Transient,
            _ => Stray::Foreign,
        };
    }
    let Some((topic, partition)) = name.rsplit_once('-') else {
        return Stray::Foreign;
    };
    let partition = match partition.parse::<i32>() {
        Ok(p) if p >= 0 && p.to_string() == partition => p,
        _ => return Stray::Foreign,
    };
    if super::validate_name(topic).is_err() {
        return Stray::Foreign;
    }
    match read_partition_metadata(path) {
        Some(id) => Stray::Partition {
            topic: topic.to_string(),
            partition,
            id,
        },
        None => Stray::Foreign,
    }
}

impl super::Topics {
    /// New partitions never take over a directory that is already there (a user's, or a stray
    /// copy): the create is refused, naming it.
    pub(super) fn check_free(
        &self,
        topic: &str,
        partitions: std::ops::Range<i32>,
    ) -> Result<(), TopicError> {
        for p in partitions {
            for d in &self.log_dirs {
                let dir = partition_dir(d, topic, p);
                if dir.exists() {
                    return Err(TopicError::new(
                        ResponseError::KafkaStorageError,
                        format!("{} already exists and is not one of gregor's partitions: move it away to create this partition", dir.display()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Makes new partition directories' entries in their log dirs durable (each dir once), before
    /// the topic is recorded: a power cut must not keep the topic and lose its directories.
    pub(super) fn sync_log_dirs(&self, dirs: &[usize]) -> io::Result<()> {
        let used: std::collections::BTreeSet<usize> = dirs.iter().copied().collect();
        used.into_iter()
            .try_for_each(|d| crate::log::sync::sync_dir(&self.log_dirs[d]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_metadata_round_trips_in_kafkas_format() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        write_partition_metadata(dir.path(), &id).unwrap();
        let text = std::fs::read_to_string(dir.path().join(PARTITION_METADATA)).unwrap();
        assert_eq!(text, "version: 0\ntopic_id: ASNFZ4mrze8BI0VniavN7w\n");
        assert_eq!(read_partition_metadata(dir.path()), Some(id));
    }

    #[test]
    fn only_named_partition_dirs_and_transient_copies_are_gregors() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::from_u128(7);
        let part = dir.path().join("orders-3");
        std::fs::create_dir(&part).unwrap();
        write_partition_metadata(&part, &id).unwrap();
        let want = Stray::Partition {
            topic: "orders".into(),
            partition: 3,
            id,
        };
        assert_eq!(classify(&part, "orders-3"), want);
        // A copy gregor made (renamed from its partition directory) carries the id in its name
        // and in its file; a user's directory named like one does not.
        let copy = format!("orders-3.{}-delete", id.simple());
        std::fs::rename(&part, dir.path().join(&copy)).unwrap();
        assert_eq!(classify(&dir.path().join(&copy), &copy), Stray::Transient);
        let fake = format!("userstuff.{}-delete", Uuid::from_u128(8).simple());
        std::fs::create_dir_all(dir.path().join(&fake)).unwrap();
        assert_eq!(classify(&dir.path().join(&fake), &fake), Stray::Foreign);
        std::fs::rename(dir.path().join(&copy), &part).unwrap();
        // A look-alike without gregor's file, and other names, are someone else's.
        for name in ["photos", "lost+found", ".git", "orders-4", "x-01", "y--1"] {
            std::fs::create_dir_all(dir.path().join(name)).unwrap();
            assert_eq!(
                classify(&dir.path().join(name), name),
                Stray::Foreign,
                "{name}"
            );
        }
    }
}
