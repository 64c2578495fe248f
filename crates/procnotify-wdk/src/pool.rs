//! [`NonPagedPool`]: the tagged non-paged pool allocator the engine uses,
//! under the driver's own tag.

use core::alloc::Layout;
use core::ffi::c_void;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

use procnotify_core::{AllocError, Identity, PoolAllocator};
use wdk_sys::ntddk::{ExAllocatePool2, ExFreePoolWithTag};
use wdk_sys::{POOL_FLAG_NON_PAGED, SIZE_T};

/// `MEMORY_ALLOCATION_ALIGNMENT` on 64-bit Windows: what `ExAllocatePool2`
/// guarantees for any request.
const POOL_ALIGNMENT: usize = 16;

/// Bytes kept just below an over-aligned block for the pool's own pointer.
const HEADER: usize = size_of::<*mut u8>();

/// The non-paged pool under the driver's tag, `I::POOL_TAG` (checked when
/// the driver is compiled: see [`procnotify_core::identity`]; WinDbg's
/// `!poolused 2 Tag` and PoolMon show it in reading order). Honours any
/// power-of-two alignment (the table's slots need 128 bytes): a larger
/// alignment over-allocates, places the block at the first aligned address at
/// least [`HEADER`] bytes in, and keeps the pool's own pointer in the word
/// just below it.
pub struct NonPagedPool<I: Identity> {
    _identity: PhantomData<fn() -> I>,
}

impl<I: Identity> NonPagedPool<I> {
    /// The pool, under `I::POOL_TAG`.
    #[must_use]
    pub const fn new() -> Self {
        Self { _identity: PhantomData }
    }

    /// The tag as `ExAllocatePool2` and `ExFreePoolWithTag` take it.
    const TAG: u32 = I::POOL_TAG.value();

    /// Whether `layout` needs the over-aligned path.
    fn over_aligned(layout: Layout) -> bool {
        layout.align() > POOL_ALIGNMENT
    }
}

impl<I: Identity> Clone for NonPagedPool<I> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I: Identity> Copy for NonPagedPool<I> {}

impl<I: Identity> Default for NonPagedPool<I> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I: Identity> fmt::Debug for NonPagedPool<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonPagedPool").field("tag", &I::POOL_TAG).finish()
    }
}

// SAFETY: `ExAllocatePool2` returns zeroed (no `POOL_FLAG_UNINITIALIZED`),
// 16-aligned non-paged memory owned by the caller until `ExFreePoolWithTag`;
// larger alignments are served from inside a bigger block, see `allocate`.
unsafe impl<I: Identity> PoolAllocator for NonPagedPool<I> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let size = layout.size().max(1);
        let align = layout.align();
        let total = if Self::over_aligned(layout) {
            size.checked_add(align).and_then(|n| n.checked_add(HEADER)).ok_or(AllocError)?
        } else {
            size
        };
        let bytes = SIZE_T::try_from(total).map_err(|_| AllocError)?;
        // SAFETY: no preconditions beyond IRQL <= DISPATCH_LEVEL for non-paged
        // pool; the engine allocates at PASSIVE or APC level.
        let raw = unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, bytes, Self::TAG) };
        let raw = NonNull::new(raw.cast::<u8>()).ok_or(AllocError)?;
        if !Self::over_aligned(layout) {
            return Ok(raw);
        }
        // The first `align`-aligned address at least HEADER bytes in: the
        // offset is in HEADER ..= HEADER + align - 1, whatever `raw`'s alignment.
        let start = raw.as_ptr().addr().wrapping_add(HEADER);
        let aligned = start.wrapping_add(align.wrapping_sub(1)) & !align.wrapping_sub(1);
        let offset = aligned.wrapping_sub(raw.as_ptr().addr());
        // SAFETY: `offset <= HEADER + align - 1`, and the allocation is
        // `size + align + HEADER` bytes, so `raw + offset` and the `size` bytes
        // after it are inside it.
        let block = unsafe { raw.add(offset) };
        #[allow(clippy::cast_ptr_alignment)] // `block` is `align`-aligned, so this word is pointer-aligned
        let saved = block.as_ptr().wrapping_sub(HEADER).cast::<*mut u8>();
        // SAFETY: `offset >= HEADER`: the pointer-aligned word below `block` is
        // inside the allocation and not part of the caller's block.
        unsafe { saved.write(raw.as_ptr()) };
        Ok(block)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        let raw = if Self::over_aligned(layout) {
            #[allow(clippy::cast_ptr_alignment)] // `ptr` is `align`-aligned, so this word is pointer-aligned
            let saved = ptr.as_ptr().wrapping_sub(HEADER).cast::<*mut u8>();
            // SAFETY: `allocate` stored the pool's pointer in this word for every
            // over-aligned layout, and the caller passes the same layout.
            unsafe { saved.read() }
        } else {
            ptr.as_ptr()
        };
        // SAFETY: `raw` came from `ExAllocatePool2` with this tag (the same
        // `I`, so the same constant) and is freed once (the caller's contract).
        unsafe { ExFreePoolWithTag(raw.cast::<c_void>(), Self::TAG) };
    }
}
