//! Segment reads that refuse to wait for the disk. The store runs a fetch's read pass on the
//! async worker itself inside [`without_waiting`]: every read is then `preadv2(RWF_NOWAIT)`, which
//! the page cache serves at once or refuses with `EAGAIN` rather than starting disk I/O; the store
//! then runs the pass again where blocking is allowed. Most fetches read what was just written, so
//! they cost no thread hand-off at all.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static NOWAIT: Cell<bool> = const { Cell::new(false) };
}

/// Set once a filesystem refused `RWF_NOWAIT` (EOPNOTSUPP): every read then waits.
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// A read found its bytes outside the page cache inside [`without_waiting`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WouldWait;

/// Runs `f` with every segment read on this thread refusing to wait for the disk (a read that
/// would fails with `io::ErrorKind::WouldBlock`, see [`would_wait`]).
pub fn without_waiting<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            NOWAIT.with(|n| n.set(self.0));
        }
    }
    let _reset = Reset(NOWAIT.with(|n| n.replace(true)));
    f()
}

/// Whether `e` is a read that refused to wait for the disk.
pub fn would_wait(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// `pread` of up to `len` bytes at `offset` into `buf` (without waiting for the disk inside
/// [`without_waiting`]); `Ok(0)` at the end of the file.
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes.
#[allow(unsafe_code)]
pub(super) unsafe fn pread(
    file: &File,
    buf: *mut u8,
    len: usize,
    offset: u64,
) -> io::Result<usize> {
    let offset = libc::off_t::try_from(offset).map_err(io::Error::other)?;
    let nowait = NOWAIT.with(Cell::get) && !UNSUPPORTED.load(Ordering::Relaxed);
    loop {
        // SAFETY: the caller guarantees `buf` is valid for `len` bytes of writes.
        let n = unsafe {
            if nowait {
                let iov = libc::iovec {
                    iov_base: buf.cast(),
                    iov_len: len,
                };
                libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT)
            } else {
                libc::pread(file.as_raw_fd(), buf.cast(), len, offset)
            }
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EOPNOTSUPP) if nowait => {
                UNSUPPORTED.store(true, Ordering::Relaxed);
                return Err(io::ErrorKind::WouldBlock.into());
            }
            _ => return Err(e),
        }
    }
}

/// Fills `buf` from `offset` (see [`pread`]).
pub(super) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: the rest of `buf` is valid for writes of its length.
        #[allow(unsafe_code)]
        let n = unsafe {
            pread(
                file,
                buf[filled..].as_mut_ptr(),
                buf.len() - filled,
                offset + filled as u64,
            )
        }?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        filled += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn cached_reads_do_not_wait_and_the_flag_is_scoped() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"hello, page cache").unwrap();
        let mut buf = [0u8; 5];
        without_waiting(|| read_exact_at(&f, &mut buf, 7)).unwrap();
        assert_eq!(&buf, b"page ");
        assert!(!NOWAIT.with(Cell::get), "reset after the closure");
        let past_end = without_waiting(|| read_exact_at(&f, &mut [0u8; 4], 16)).unwrap_err();
        assert_eq!(past_end.kind(), io::ErrorKind::UnexpectedEof);
    }
}
