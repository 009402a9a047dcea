//! Every fsync the log makes of a segment file or a partition directory, and every segment file it
//! creates, goes through here, so a test can watch them: the power-loss test models what a power
//! cut keeps (what was fsynced, files whose directory entry was fsynced), and the disk-failure
//! tests make an fsync fail. With no observer installed (always, outside tests) each call is the
//! plain system call plus one atomic load.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// Watches the log's fsyncs and file creations under the paths it chooses to care about.
pub trait SyncObserver: Send + Sync {
    /// Before an fsync of `path` (a file or a directory): an error is returned instead of syncing.
    fn before_sync(&self, path: &Path) -> io::Result<()>;
    /// `path` was fsynced with `len` bytes.
    fn synced_file(&self, path: &Path, len: u64);
    /// The directory `dir` was fsynced: the entries created in it so far are durable.
    fn synced_dir(&self, dir: &Path);
    /// A segment file was created at `path`.
    fn created(&self, path: &Path);
    /// Before a directory is opened to be fsynced: an error is returned instead of opening it
    /// (as when out of descriptors).
    fn before_open_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}

static ANY: AtomicBool = AtomicBool::new(false);
static OBSERVERS: RwLock<Vec<Arc<dyn SyncObserver>>> = RwLock::new(Vec::new());

/// Installs an observer for the life of the process (tests only).
pub fn observe(observer: Arc<dyn SyncObserver>) {
    OBSERVERS
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .push(observer);
    ANY.store(true, Ordering::Release);
}

fn each(f: impl Fn(&dyn SyncObserver) -> io::Result<()>) -> io::Result<()> {
    if !ANY.load(Ordering::Acquire) {
        return Ok(());
    }
    for o in OBSERVERS.read().unwrap_or_else(|p| p.into_inner()).iter() {
        f(o.as_ref())?;
    }
    Ok(())
}

/// fdatasync of the segment file `file` at `path`.
pub fn sync_file(file: &File, path: &Path) -> io::Result<()> {
    each(|o| o.before_sync(path))?;
    file.sync_data()?;
    each(|o| {
        o.synced_file(path, file.metadata()?.len());
        Ok(())
    })
}

/// fsync of a directory, making the entries created, renamed or removed in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    open_dir(dir)?.sync()
}

/// A directory opened to be fsynced: failing to open it (out of descriptors) is no failed fsync,
/// so callers that take a log dir offline for a failed fsync open it first.
pub struct OpenDir<'a> {
    file: File,
    path: &'a Path,
}

pub fn open_dir(dir: &Path) -> io::Result<OpenDir<'_>> {
    each(|o| o.before_open_dir(dir))?;
    Ok(OpenDir {
        file: File::open(dir)?,
        path: dir,
    })
}

impl OpenDir<'_> {
    pub fn sync(&self) -> io::Result<()> {
        each(|o| o.before_sync(self.path))?;
        self.file.sync_all()?;
        each(|o| {
            o.synced_dir(self.path);
            Ok(())
        })
    }
}

/// A segment file was just created at `path`.
pub fn created(path: &Path) {
    let _ = each(|o| {
        o.created(path);
        Ok(())
    });
}
