//! The process's allocator: the system's, with large blocks (model
//! weights) marked for transparent huge pages. On a machine whose kernel
//! gives huge pages only where asked (`madvise` mode, the common default),
//! the weights a command reads and re-lays are otherwise faulted in 4 KiB
//! at a time, and on a virtual machine those faults dominate a whole
//! command (issue 19's profiles: most of `graft prune`'s time on
//! ResNet-50 was the kernel clearing fresh pages one by one). Written here
//! because it is a hint on top of the system allocator, not an allocator.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks at least this large are advised (two huge pages: a block must
/// hold an aligned 2 MiB page to use one).
const LARGE: usize = 4 << 20;

pub struct Graft;

#[cfg(target_os = "linux")]
fn advise(p: *mut u8, size: usize) {
    const HUGE: usize = 2 << 20;
    let start = (p as usize).next_multiple_of(HUGE);
    let end = (p as usize + size) & !(HUGE - 1);
    if end > start {
        // SAFETY: the range lies inside the block just allocated; the
        // advice changes how the kernel backs it, never its contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_: *mut u8, _: usize) {}

// SAFETY: every call is the system allocator's, unchanged; large blocks
// get an advice after allocation.
unsafe impl GlobalAlloc for Graft {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if layout.size() >= LARGE && !p.is_null() {
            advise(p, layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if layout.size() >= LARGE && !p.is_null() {
            advise(p, layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) }
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new) };
        if new >= LARGE && !q.is_null() {
            advise(q, new);
        }
        q
    }
}
