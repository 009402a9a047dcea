//! The global allocator: the system allocator, except that very large requests are served by
//! anonymous `mmap(MAP_NORESERVE)` mappings, which cost address space rather than memory until
//! touched.
//!
//! Why: kafka-protocol 0.18 decodes arrays with `Vec::with_capacity(count)` taken straight from
//! the wire, so a 4-byte body claiming 2^31 elements asks for ~150 GB. The system allocator would
//! fail that request and Rust would abort the whole broker. Here the reservation succeeds, nothing
//! is touched, the decoder then fails on missing bytes and the mapping is returned: the RSS stays
//! flat and the connection is closed with a logged reason. Only allocations of at least
//! [`LAZY_THRESHOLD`] take this path, so ordinary allocation is unaffected. This relies on Linux's
//! default overcommit policy (`vm.overcommit_memory` 0 or 1), under which `MAP_NORESERVE` mappings
//! are not charged.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// Allocations at least this large are lazily reserved.
pub const LAZY_THRESHOLD: usize = 1 << 30;
const PAGE: usize = 4096;

/// Bytes currently reserved through the lazy path (exported as a metric).
pub static LAZY_RESERVED: AtomicU64 = AtomicU64::new(0);

pub struct LazyReserve;

fn lazy(layout: &Layout) -> bool {
    layout.size() >= LAZY_THRESHOLD && layout.align() <= PAGE
}

// SAFETY: every pointer handed out is either the system allocator's (and returned to it with the
// same layout) or a fresh private anonymous mapping of exactly `layout.size()` bytes, page aligned
// (so any alignment <= PAGE holds), unmapped with the same size. Which path a block took is a pure
// function of its layout, which Rust passes unchanged to `dealloc` and `realloc`.
unsafe impl GlobalAlloc for LazyReserve {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if lazy(&layout) {
            map(layout.size())
        } else {
            System.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if lazy(&layout) {
            map(layout.size()) // anonymous mappings are zero-filled
        } else {
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if lazy(&layout) {
            libc::munmap(ptr.cast(), layout.size());
            LAZY_RESERVED.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        } else {
            System.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (lazy(&layout), lazy(&new_layout)) {
            (false, false) => System.realloc(ptr, layout, new_size),
            (true, true) => {
                let p = libc::mremap(ptr.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE);
                if p == libc::MAP_FAILED {
                    return std::ptr::null_mut();
                }
                LAZY_RESERVED.fetch_add(new_size as u64, Ordering::Relaxed);
                LAZY_RESERVED.fetch_sub(layout.size() as u64, Ordering::Relaxed);
                p.cast()
            }
            _ => {
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}

unsafe fn map(size: usize) -> *mut u8 {
    let p = libc::mmap(
        std::ptr::null_mut(),
        size,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
        0,
    );
    if p == libc::MAP_FAILED {
        return std::ptr::null_mut();
    }
    LAZY_RESERVED.fetch_add(size as u64, Ordering::Relaxed);
    p.cast()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_lying_capacity_costs_no_memory() {
        // 64 GiB: far more than this machine has; succeeds because nothing is touched.
        let mut v: Vec<u64> = Vec::with_capacity(8 << 30);
        v.push(1);
        v.extend_from_slice(&[2, 3]);
        assert_eq!(v.iter().sum::<u64>(), 6);
        v.shrink_to_fit();
        assert_eq!(v.capacity(), 3);
    }
}
