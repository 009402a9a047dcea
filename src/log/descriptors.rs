//! Segment file descriptors, opened when used and closed when least recently used: partitions and
//! segments cost no descriptor while idle, so a broker holding more segments than its open-file
//! limit keeps descriptors for connections. The process-wide cap on files kept open is
//! `gregor.log.open.files.max` (by default half the open-file limit).
//!
//! A [`SegmentFile`] knows its file's current path (every rename goes through it) and holds an
//! open handle until the cache closes it. Handles given out (`Arc<File>`) stay valid after that:
//! closing only drops the cache's reference. A segment leaving the log while a reader still holds
//! it is pinned open ([`SegmentFile::retire`]), so a read never finds its file renamed or unlinked
//! under it.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// The cache of open segment files.
struct Cache {
    /// Files it may keep open before it closes the least recently used.
    cap: AtomicUsize,
    /// Files it keeps open now.
    open: AtomicUsize,
    /// Advanced on every open: a slot's recency is the value it last saw.
    tick: AtomicU64,
    /// Every slot it may close (some already closed or dropped, forgotten when it evicts).
    registry: Mutex<Vec<Weak<Slot>>>,
}

impl Cache {
    const fn new(cap: usize) -> Self {
        Cache {
            cap: AtomicUsize::new(cap),
            open: AtomicUsize::new(0),
            tick: AtomicU64::new(0),
            registry: Mutex::new(Vec::new()),
        }
    }
}

/// The process's cache (one per process, as the open-file limit is).
static CACHE: Cache = Cache::new(usize::MAX);

/// Files held open by responses waiting to be sent (see [`sending`]).
static SENDING: AtomicUsize = AtomicUsize::new(0);

/// A response's hold on one open file until it is sent, given back on drop.
pub struct Sending(());

impl Drop for Sending {
    fn drop(&mut self) {
        SENDING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A hold for one more file kept open by a response until it is sent (`sendfile` from the page
/// cache), or `None` when responses already hold a quarter of the cache's cap (at least 16): the
/// caller reads the bytes into memory instead, so a fetch of thousands of partitions, or many such
/// fetches, cannot take every descriptor the broker has.
pub fn sending() -> Option<Sending> {
    let max = (CACHE.cap.load(Ordering::Relaxed) / 4).max(16);
    let taken = SENDING.fetch_add(1, Ordering::Relaxed);
    if taken >= max {
        SENDING.fetch_sub(1, Ordering::Relaxed);
        metrics::counter!("gregor_fetch_regions_copied_total").increment(1);
        return None;
    }
    Some(Sending(()))
}

/// Sets how many segment files may stay open (at least 16).
pub fn set_cap(cap: usize) {
    CACHE.cap.store(cap.max(16), Ordering::Relaxed);
    metrics::gauge!("gregor_log_open_segment_files_max").set(cap.max(16) as f64);
}

/// Raises the soft open-file limit to the hard one (as the JVM does for Kafka at start-up), and
/// returns it.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "cannot raise the open file limit to the hard limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The default cap: half the open-file limit, the rest kept for connections and the meta store.
pub fn default_cap() -> usize {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map_or(usize::MAX, |l| usize::try_from(l / 2).unwrap_or(usize::MAX))
}

fn gauge(cache: &Cache) {
    if std::ptr::eq(cache, &CACHE) {
        metrics::gauge!("gregor_log_open_segment_files")
            .set(cache.open.load(Ordering::Relaxed) as f64);
    }
}

struct State {
    path: PathBuf,
    file: Option<Arc<File>>,
    /// Out of the cache's hands: open until the last holder drops it.
    pinned: bool,
    /// Retired without being kept open (it could not be opened): never opened again, as its
    /// path is about to name another file or none.
    lost: bool,
}

struct Slot {
    cache: &'static Cache,
    state: Mutex<State>,
    last_used: AtomicU64,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counted by the cache: open and not pinned.
    fn is_cached(&self) -> bool {
        let st = self.lock();
        st.file.is_some() && !st.pinned
    }

    fn touch(&self, tick: u64) {
        self.last_used.store(tick, Ordering::Relaxed);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if st.file.is_some() && !st.pinned {
            self.cache.open.fetch_sub(1, Ordering::Relaxed);
            gauge(self.cache);
        }
    }
}

/// A segment's file: its path, and an open handle while the cache keeps one.
#[derive(Clone)]
pub struct SegmentFile(Arc<Slot>);

impl SegmentFile {
    /// A file just opened (or created) at `path`, kept open by the cache.
    pub fn opened(path: PathBuf, file: File) -> Self {
        Self::opened_in(&CACHE, path, file)
    }

    fn opened_in(cache: &'static Cache, path: PathBuf, file: File) -> Self {
        let slot = Arc::new(Slot {
            cache,
            state: Mutex::new(State {
                path,
                file: Some(Arc::new(file)),
                pinned: false,
                lost: false,
            }),
            last_used: AtomicU64::new(cache.tick.fetch_add(1, Ordering::Relaxed)),
        });
        admitted(&slot);
        SegmentFile(slot)
    }

    /// The open file, opened again if the cache closed it.
    pub fn get(&self) -> io::Result<Arc<File>> {
        let cache = self.0.cache;
        let mut st = self.0.lock();
        if let Some(f) = &st.file {
            self.0.touch(cache.tick.load(Ordering::Relaxed));
            return Ok(f.clone());
        }
        if st.lost {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the segment left the log and its file could not be kept open",
            ));
        }
        let file = Arc::new(open(&st.path)?);
        st.file = Some(file.clone());
        let pinned = st.pinned;
        drop(st);
        metrics::counter!("gregor_log_segment_file_opens_total").increment(1);
        self.0.touch(cache.tick.fetch_add(1, Ordering::Relaxed));
        if !pinned {
            admitted(&self.0);
        }
        Ok(file)
    }

    /// The file's current path.
    pub fn path(&self) -> PathBuf {
        self.0.lock().path.clone()
    }

    /// Records that the file was renamed to `path` (an open handle follows the file; a closed one
    /// is opened there).
    pub fn renamed(&self, path: PathBuf) {
        self.0.lock().path = path;
    }

    /// Renames the file to `path`; a reader opening it meanwhile waits, then finds it there.
    pub fn rename(&self, path: PathBuf) -> io::Result<()> {
        let mut st = self.0.lock();
        std::fs::rename(&st.path, &path)?;
        st.path = path;
        Ok(())
    }

    /// Switches to another file (a copy at `path`): handles given out keep the old one.
    pub fn replace(&self, path: PathBuf, file: File) {
        let mut st = self.0.lock();
        st.path = path;
        let was_open = st.file.replace(Arc::new(file)).is_some();
        let pinned = st.pinned;
        drop(st);
        if !was_open && !pinned {
            admitted(&self.0);
        }
    }

    /// The segment left the log (its file is about to be renamed, unlinked or replaced by another
    /// at its path): while a reader still holds it, it stays open, out of the cache, until the
    /// last holder drops it. If it cannot be opened (out of descriptors), reads of it fail from
    /// now on (they never find another file at its path); its path stays, to rename or unlink.
    pub fn retire(&self) {
        if Arc::strong_count(&self.0) == 1 {
            return;
        }
        let mut st = self.0.lock();
        if st.pinned {
            return;
        }
        if st.file.is_some() {
            self.0.cache.open.fetch_sub(1, Ordering::Relaxed);
            gauge(self.0.cache);
        } else {
            match open(&st.path) {
                Ok(f) => st.file = Some(Arc::new(f)),
                Err(e) => {
                    tracing::warn!(file = %st.path.display(), error = %e, "cannot keep a retired segment open for its readers");
                    st.lost = true;
                    return;
                }
            }
        }
        st.pinned = true;
    }
}

fn open(path: &Path) -> io::Result<File> {
    // Not O_APPEND: appends are positioned at the segment's logical end (see `Segment::append`).
    OpenOptions::new().read(true).write(true).open(path)
}

/// Counts a slot's newly opened file and closes the least recently used ones past the cap.
fn admitted(slot: &Arc<Slot>) {
    let cache = slot.cache;
    let open = cache.open.fetch_add(1, Ordering::Relaxed) + 1;
    let mut registry = cache.registry.lock().unwrap_or_else(|p| p.into_inner());
    registry.push(Arc::downgrade(slot));
    let cap = cache.cap.load(Ordering::Relaxed);
    if open > cap {
        evict(cache, &mut registry, cap - cap / 8);
    } else if registry.len() > cap.saturating_mul(2).max(1024) {
        // Dropped and closed slots leave entries behind; forget them now and then.
        registry.retain(|w| w.upgrade().is_some_and(|s| s.is_cached()));
    }
    drop(registry);
    gauge(cache);
}

/// Closes the least recently used open files until at most `target` stay open.
fn evict(cache: &Cache, registry: &mut Vec<Weak<Slot>>, target: usize) {
    let mut cached: Vec<(u64, Arc<Slot>)> = registry
        .drain(..)
        .filter_map(|w| w.upgrade())
        .filter(|s| s.is_cached())
        .map(|s| (s.last_used.load(Ordering::Relaxed), s))
        .collect();
    // A slot closed and opened again between evictions is listed twice.
    cached.sort_by_key(|(_, s)| Arc::as_ptr(s) as usize);
    cached.dedup_by_key(|(_, s)| Arc::as_ptr(s) as usize);
    cached.sort_by_key(|(used, _)| *used);
    let mut closed = 0u64;
    let mut kept = Vec::with_capacity(cached.len());
    for (_, slot) in cached {
        if cache.open.load(Ordering::Relaxed) > target {
            let mut st = slot.lock();
            if !st.pinned && st.file.take().is_some() {
                cache.open.fetch_sub(1, Ordering::Relaxed);
                closed += 1;
                continue;
            }
        }
        kept.push(Arc::downgrade(&slot));
    }
    *registry = kept;
    metrics::counter!("gregor_log_segment_file_closes_total").increment(closed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(cap: usize) -> &'static Cache {
        Box::leak(Box::new(Cache::new(cap)))
    }

    fn byte(f: &SegmentFile) -> u8 {
        let mut b = [0u8];
        std::os::unix::fs::FileExt::read_exact_at(&*f.get().unwrap(), &mut b, 0).unwrap();
        b[0]
    }

    fn files(cache: &'static Cache, dir: &Path, n: usize) -> Vec<SegmentFile> {
        (0..n)
            .map(|i| {
                let path = dir.join(format!("{i}.log"));
                std::fs::write(&path, [i as u8]).unwrap();
                SegmentFile::opened_in(cache, path.clone(), open(&path).unwrap())
            })
            .collect()
    }

    fn open_count(files: &[SegmentFile]) -> usize {
        files.iter().filter(|f| f.0.lock().file.is_some()).count()
    }

    #[test]
    fn files_past_the_cap_are_closed_least_recently_used_first_and_opened_again_on_use() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache(16);
        let files = files(cache, dir.path(), 100);
        assert!(open_count(&files) <= 16);
        assert_eq!(cache.open.load(Ordering::Relaxed), open_count(&files));
        // The last opened are the ones kept.
        assert!(files[99].0.lock().file.is_some());
        assert!(files[0].0.lock().file.is_none());
        for round in 0..3 {
            for (i, f) in files.iter().enumerate() {
                assert_eq!(byte(f), i as u8, "round {round}");
                assert!(cache.open.load(Ordering::Relaxed) <= 16);
            }
        }
        drop(files);
        assert_eq!(cache.open.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_renamed_file_is_opened_again_at_its_new_path() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache(16);
        let files = files(cache, dir.path(), 40);
        let moved = dir.path().join("0.log.deleted");
        std::fs::rename(files[0].path(), &moved).unwrap();
        files[0].renamed(moved.clone());
        assert!(files[0].0.lock().file.is_none());
        assert_eq!(byte(&files[0]), 0);
        assert_eq!(files[0].path(), moved);
    }

    #[test]
    fn a_retired_file_held_by_a_reader_stays_readable_after_it_is_unlinked() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache(16);
        let mut files = files(cache, dir.path(), 40);
        let reader = files[0].clone();
        let unheld = files[1].clone();
        drop(unheld);
        assert!(reader.0.lock().file.is_none(), "closed by the cache");
        files[0].retire();
        files[1].retire();
        std::fs::remove_file(files[0].path()).unwrap();
        drop(files.remove(0));
        // Pinned: out of the cache's count, never closed by it.
        for f in &files {
            byte(f);
        }
        assert_eq!(byte(&reader), 0);
        assert!(cache.open.load(Ordering::Relaxed) <= 16);
        drop(files);
        assert_eq!(cache.open.load(Ordering::Relaxed), 0);
        drop(reader);
    }

    #[test]
    fn a_retired_file_that_cannot_be_kept_open_keeps_its_path_and_is_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache(16);
        let files = files(cache, dir.path(), 40);
        let reader = files[0].clone();
        assert!(reader.0.lock().file.is_none(), "closed by the cache");
        let path = files[0].path();
        // Opening it fails (here: it is gone; out of descriptors in production).
        std::fs::rename(&path, dir.path().join("elsewhere")).unwrap();
        files[0].retire();
        assert_eq!(
            files[0].path(),
            path,
            "still renamed or unlinked by its path"
        );
        // Another file at its path is never read in its place.
        std::fs::write(&path, [0xff]).unwrap();
        let e = reader.get().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
