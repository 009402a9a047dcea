//! Replacing a group of segments by their cleaned copy so that a crash at any point leaves either
//! the old segments or the new one, never a mix (Kafka's `.cleaned` / `.swap` protocol):
//!
//! 1. the cleaned copy is written to `<base>.log.cleaned` and fsynced (a crash here: the partial
//!    copy is deleted at start-up);
//! 2. the meta store forgets the group's indexes, durably (start-up rescans whatever file is there);
//! 3. `<base>.log.cleaned` is renamed to `<base>-<end>.swap` and the directory fsynced: the commit
//!    point, after which start-up completes the swap;
//! 4. the group's other segments are unlinked, the swap file renamed over `<base>.log`, the directory
//!    fsynced.

use std::io;
use std::path::{Path, PathBuf};

use super::super::segment::{file_name, parse_file_name};
use super::super::sync::sync_dir;
use super::super::{LogMetaStore, PartitionKey};

const CLEANED_SUFFIX: &str = ".log.cleaned";
const SWAP_SUFFIX: &str = ".swap";

pub(super) fn cleaned_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}{CLEANED_SUFFIX}"))
}

fn swap_path(dir: &Path, base: i64, end: i64) -> PathBuf {
    dir.join(format!("{base:020}-{end:020}{SWAP_SUFFIX}"))
}

fn parse_swap(name: &str) -> Option<(i64, i64)> {
    let stem = name.strip_suffix(SWAP_SUFFIX)?;
    let (base, end) = stem.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    (digits(base) && digits(end)).then(|| Some((base.parse().ok()?, end.parse().ok()?)))?
}

/// Step 3: makes the fsynced cleaned copy of segments `[base, end)` the committed replacement.
pub(super) fn commit(dir: &Path, base: i64, end: i64) -> io::Result<PathBuf> {
    let swap = swap_path(dir, base, end);
    std::fs::rename(cleaned_path(dir, base), &swap)?;
    sync_dir(dir)?;
    Ok(swap)
}

/// Step 4: installs the committed swap file as `<base>.log`, removing the group's other segments
/// first, durably (the swap file is what tells start-up to finish the job, so it goes last).
/// `rename` renames the swap file to the path it is given.
pub(super) fn install(
    dir: &Path,
    base: i64,
    others: &[i64],
    rename: impl FnOnce(PathBuf) -> io::Result<()>,
) -> io::Result<()> {
    for b in others {
        match std::fs::remove_file(dir.join(file_name(*b))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    if !others.is_empty() {
        sync_dir(dir)?;
    }
    rename(dir.join(file_name(base)))?;
    sync_dir(dir)
}

/// At start-up, before segments are listed: deletes unfinished cleaned copies and completes
/// committed swaps (forgetting the replaced segments' indexes so they are rescanned).
pub(in crate::log) fn finish_interrupted(
    dir: &Path,
    key: PartitionKey,
    meta: &dyn LogMetaStore,
) -> io::Result<()> {
    let mut swaps = Vec::new();
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(CLEANED_SUFFIX) {
            tracing::warn!(file = name, "removing an unfinished cleaned segment");
            std::fs::remove_file(dir.join(name))?;
        } else if let Some(range) = parse_swap(name) {
            swaps.push((range, dir.join(name)));
        } else if let Some(base) = parse_file_name(name) {
            segments.push(base);
        }
    }
    for ((base, end), path) in swaps {
        let replaced: Vec<i64> = segments
            .iter()
            .copied()
            .filter(|b| (base..end).contains(b))
            .collect();
        tracing::warn!(
            base_offset = base,
            end_offset = end,
            "completing an interrupted segment swap"
        );
        meta.replace_segments(key, &replaced, &[], None, Some(end))?;
        let others: Vec<i64> = replaced.into_iter().filter(|b| *b != base).collect();
        install(dir, base, &others, |to| std::fs::rename(&path, to))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_names_round_trip() {
        let p = swap_path(Path::new("/x"), 5, 1000);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "00000000000000000005-00000000000000001000.swap");
        assert_eq!(parse_swap(name), Some((5, 1000)));
        assert_eq!(parse_swap("5-1000.swap"), None);
        assert_eq!(parse_file_name(name), None, "never taken for a segment");
    }
}
