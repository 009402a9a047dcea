//! Which log dir holds each partition (JBOD): where new partitions go, finding a partition's or a
//! named dir, and moving a partition between dirs (AlterReplicaLogDirs) with its placement
//! recorded durably on each side of the switch.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::dirs::{delete_name, future_name, next_log_dirs, partition_dir, remove_copy};
use super::{Topic, Topics};
use crate::log::Partition;
use crate::meta::Placement;

impl Topics {
    pub(super) fn dir_index(&self, dir: &str) -> Option<usize> {
        self.log_dirs.iter().position(|d| d.as_os_str() == dir)
    }

    pub(super) fn dir_string(&self, i: usize) -> String {
        self.log_dirs[i].display().to_string()
    }

    /// The log dirs for `n` new partitions, each to the dir with the fewest partitions then.
    pub(super) fn place(&self, n: i32) -> Vec<usize> {
        let mut counts: HashMap<PathBuf, usize> = HashMap::new();
        for topic in self.all() {
            for p in &topic.partitions {
                if let Some(parent) = p.dir().parent() {
                    *counts.entry(parent.to_path_buf()).or_default() += 1;
                }
            }
        }
        (0..n)
            .map(|_| {
                let i = next_log_dirs(&self.log_dirs, &counts)[0];
                *counts.entry(self.log_dirs[i].clone()).or_default() += 1;
                i
            })
            .collect()
    }

    /// The configured log dirs (canonical), in order.
    pub fn log_dirs(&self) -> &[PathBuf] {
        &self.log_dirs
    }

    /// The index in `log.dirs` of the directory holding `p`.
    pub fn log_dir_of(&self, p: &Partition) -> Option<usize> {
        let dir = p.dir();
        let parent = dir.parent()?;
        self.log_dirs.iter().position(|d| d == parent)
    }

    /// Index of a log dir named exactly as DescribeLogDirs reports it (its canonical absolute
    /// path): Kafka compares the request's string with its dirs' paths, unnormalised.
    pub fn find_log_dir(&self, path: &str) -> Option<usize> {
        self.dir_index(path)
    }

    /// Moves a partition to log dir `to` (AlterReplicaLogDirs): copies it there, switches over
    /// durably, removes the old copy. `Ok(None)` when it already lives there. Blocking.
    pub fn move_partition(
        &self,
        topic: &Topic,
        partition: &Arc<Partition>,
        to: usize,
    ) -> io::Result<Option<crate::log::Moved>> {
        let p = partition.key.partition;
        let target = partition_dir(&self.log_dirs[to], &topic.name, p);
        let future = self.log_dirs[to].join(future_name(&topic.name, p, &topic.id));
        let source_dir = self.log_dir_of(partition).map(|i| self.dir_string(i));
        let key = partition.key;
        let record = |switched: bool| -> io::Result<()> {
            let placement = if switched {
                Placement {
                    dir: self.dir_string(to),
                    moved_from: source_dir.clone(),
                }
            } else {
                Placement {
                    dir: source_dir.clone().unwrap_or_else(|| self.dir_string(0)),
                    moved_from: None,
                }
            };
            self.meta.put_placement(key, &placement)?;
            self.meta.flush_blocking()
        };
        let finish = |old: &Path| -> io::Result<()> {
            let doomed =
                old.parent()
                    .unwrap_or(Path::new("."))
                    .join(delete_name(&topic.name, p, &topic.id));
            if let Err(e) = remove_copy(old, &doomed) {
                // Start-up removes it (the switch is recorded with where it came from).
                tracing::warn!(dir = %old.display(), error = %e, "cannot remove a moved partition's old copy");
                return Ok(());
            }
            self.meta.put_placement(
                key,
                &Placement {
                    dir: self.dir_string(to),
                    moved_from: None,
                },
            )?;
            self.meta.flush_blocking()
        };
        partition.move_dir(&future, &target, record, finish)
    }
}
