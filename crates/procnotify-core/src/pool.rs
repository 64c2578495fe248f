//! [`PoolAllocator`]: raw, fallible, tagged allocation. The engine never
//! uses a global allocator, so every allocation failure is a value.

use core::alloc::Layout;
use core::ptr::NonNull;

use crate::values::AllocError;

/// Memory that may be touched at any IRQL (non-paged pool on Windows).
///
/// # Safety
///
/// Implementations must return memory that is valid for `layout`, zeroed,
/// suitably aligned, and not handed out again until it is deallocated.
pub unsafe trait PoolAllocator {
    /// Allocates zeroed memory for `layout` (never called with size 0).
    ///
    /// # Errors
    ///
    /// [`AllocError`] when the memory cannot be had.
    fn allocate(&self, layout: Layout) -> Result<NonNull<u8>, AllocError>;

    /// Returns memory to the pool.
    ///
    /// # Safety
    ///
    /// `ptr` came from `allocate` on this allocator (or a clone of it) with
    /// this `layout` and has not been deallocated since.
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout);
}
