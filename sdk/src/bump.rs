//! An optional bump allocator for policies (feature `bump-alloc`, wasm32
//! only).
//!
//! The host runs every decision in a fresh instance and throws it away
//! afterwards, so memory never needs to be reused within one: allocation can
//! be a pointer increment and freeing a no-op. That is faster than the
//! default allocator (dlmalloc) for the short JSON-in, JSON-out work of a
//! policy. The price: memory freed during a decision is not reused, so a
//! policy that allocates and frees a lot in a loop reaches the host's memory
//! cap (16 MiB by default) sooner; such a policy should leave the feature
//! off.
//!
//! ```toml
//! k8s-oci-operator-policy-sdk = { version = "...", features = ["bump-alloc"] }
//! ```

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;

const PAGE: usize = 64 * 1024;

/// The allocator; installed as the global allocator by the feature.
pub struct BumpAllocator {
    /// Next free byte, and the end of the memory grown for the heap so far.
    next: Cell<usize>,
    end: Cell<usize>,
}

// SAFETY: a wasm32 policy instance runs on one thread (no threads proposal).
unsafe impl Sync for BumpAllocator {}

impl BumpAllocator {
    /// An allocator with no heap yet; the first allocation grows memory.
    /// The SDK installs one as the global allocator when the feature is on.
    pub const fn new() -> Self {
        Self {
            next: Cell::new(0),
            end: Cell::new(0),
        }
    }
}

impl Default for BumpAllocator {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let align = layout.align();
        let Some(start) = self
            .next
            .get()
            .checked_add(align - 1)
            .map(|n| n & !(align - 1))
        else {
            return core::ptr::null_mut();
        };
        let Some(new_next) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        if self.end.get() == 0 || new_next > self.end.get() {
            // Grow linear memory; new pages start where memory ended, and
            // nothing else grows it, so the heap stays contiguous.
            let need = if self.end.get() == 0 {
                layout.size() + align
            } else {
                new_next - self.end.get()
            };
            let pages = need.div_ceil(PAGE).max(1);
            let previous = core::arch::wasm32::memory_grow(0, pages);
            if previous == usize::MAX {
                return core::ptr::null_mut();
            }
            if self.end.get() == 0 || previous * PAGE != self.end.get() {
                // First growth (or someone else grew memory): start afresh
                // at the new pages.
                self.next.set(previous * PAGE);
                self.end.set((previous + pages) * PAGE);
                return unsafe { self.alloc(layout) };
            }
            self.end.set((previous + pages) * PAGE);
        }
        self.next.set(new_next);
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // The last allocation can be taken back; others are left.
        if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Growing the last allocation in place avoids a copy (a Vec or
        // String being built, the common case).
        if ptr as usize + layout.size() == self.next.get()
            && let Some(new_next) = (ptr as usize).checked_add(new_size)
            && new_next <= self.end.get()
        {
            self.next.set(new_next);
            return ptr;
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}
