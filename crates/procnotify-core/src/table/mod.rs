//! The lock-free per-processor table, generic over the user's value `T`.
//!
//! Two structures, both in pool memory:
//!
//! - **The index**: one pointer per possible processor (`capacity` entries,
//!   8 bytes each: 16 KiB at 2048), allocated when the table is created. An
//!   entry is null until its slot is *linked*; a lookup is a bounds check and
//!   one `Acquire` load, the same work as a fixed array plus that load. The
//!   same allocation starts with the writer's state (the segment directory,
//!   the writer flag, the slot count), kept out of line so that `Table`
//!   itself has no interior mutability and a loop over `&Table` keeps the
//!   index pointer in a register (see [`Table::get`]).
//! - **The slots**: in segments of doubling size, each allocated when an
//!   index inside it is first needed. Segment 0 holds the first `F` indices,
//!   where `F` is the *first segment* given to [`Table::with_first_segment`]
//!   rounded up to a power of two (1 for [`Table::new`]); segment `k >= 1`
//!   holds `F·2^(k-1) .. F·2^k`. The engine passes the processors active when
//!   the table is created, so the processors present at load share one pool
//!   request instead of one per doubling. At most twice the slots in use
//!   exist, as long as `F` is at most the number of slots in use.
//!
//! Guarantees:
//!
//! - **Reads are wait-free** and write nothing shared: [`Table::get`].
//! - **A linked slot never moves and is never unlinked** until the table is
//!   dropped, so a reader may keep `&Slot<T>` (and `&T`) for as long as it
//!   holds `&Table`.
//! - **A slot is linked only after its value is initialised**, so every slot a
//!   reader can find has a whole `T`: there is no "half-initialised" state to
//!   check for.
//! - **Growth is fallible**: allocation failure is an error value.
//! - **One writer at a time**, enforced: [`Table::writer`] hands out at most
//!   one [`Writer`]; a second concurrent caller gets `None`, never a race.

use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use crate::pool::PoolAllocator;
use crate::sync::{AtomicPtr, Ordering};
use crate::values::{AllocError, MAX_PROCESSORS};

mod control;
mod reader;
mod slot;
mod writer;
use control::{Block, Control};
pub use reader::Reader;
pub use slot::{CACHE_LINE, Slot};
pub use writer::{InsertError, Writer};

/// Doubling segments needed for [`MAX_PROCESSORS`] with a first segment of
/// one slot (more first slots need fewer segments).
pub const SEGMENTS: usize = 12;

/// The largest `log2` of a first segment: [`MAX_PROCESSORS`] slots.
const MAX_FIRST_SHIFT: u32 = MAX_PROCESSORS.trailing_zeros();

const _: () = assert!(MAX_PROCESSORS.is_power_of_two());
const _: () = assert!(segment_of(MAX_PROCESSORS - 1, 0) == SEGMENTS - 1);

/// The segment holding `index` when the first segment spans `2^shift` slots:
/// the bit length of `index >> shift` (0 for the first `2^shift` indices).
#[inline]
const fn segment_of(index: u32, shift: u32) -> usize {
    // `leading_zeros() <= 32 == u32::BITS`: cannot underflow.
    u32::BITS.wrapping_sub(index.wrapping_shr(shift).leading_zeros()) as usize
}

/// The first index in `segment` (`segment < SEGMENTS`) when the first segment
/// spans `2^shift` slots: 0, 1, 2, 4, 8, ... times `2^shift`.
#[inline]
const fn segment_start(segment: usize, shift: u32) -> u32 {
    // `segment < SEGMENTS <= 32`, so the cast is lossless; the result is at
    // most `2^(SEGMENTS - 2 + MAX_FIRST_SHIFT) = 2^21`: no bit is lost.
    #[allow(clippy::cast_possible_truncation)]
    let unit = 1_u32.wrapping_shl(segment as u32) >> 1;
    unit.wrapping_shl(shift)
}

/// How many slots `segment` spans when the table is unbounded:
/// 1, 1, 2, 4, ... times `2^shift`.
#[inline]
const fn segment_span(segment: usize, shift: u32) -> u32 {
    let start = segment_start(segment, shift);
    if start == 0 { 1_u32.wrapping_shl(shift) } else { start }
}

/// The per-processor table. See the [module documentation](self).
///
/// Every field is plain data, fixed at creation: what the writer changes is
/// in the index's allocation, before the entries. So `Table` has no interior
/// mutability (when `A` has none), and `&Table` is, to the compiler,
/// read-only memory:
///
/// ```
/// use core::mem::MaybeUninit;
/// use procnotify_core::Table;
/// use procnotify_sim::kit::Heap;
///
/// // A constant may refer only to data without interior mutability.
/// const _: &MaybeUninit<Table<u64, Heap>> = &MaybeUninit::uninit();
/// ```
///
/// ```compile_fail,E0492
/// // The same check, failing on a type with an atomic in it.
/// const _: &core::mem::MaybeUninit<core::sync::atomic::AtomicU32> = &core::mem::MaybeUninit::uninit();
/// ```
pub struct Table<T, A: PoolAllocator> {
    /// `capacity` entries: the linked slot for each index, or null. Each entry
    /// is stored once, with `Release`, by the writer (pairs with the `Acquire`
    /// load in [`Table::get`]). The writer's state (`Control`) is right
    /// before them, at the start of the allocation (`Table::control`).
    links: NonNull<AtomicPtr<Slot<T>>>,
    /// The most processors the partition can have (`1 ..= MAX_PROCESSORS`).
    capacity: u32,
    /// `log2` of the first segment's span (`0 ..= MAX_FIRST_SHIFT`). Fixed at
    /// creation.
    first_shift: u32,
    allocator: A,
    _owns: PhantomData<Slot<T>>,
}

// SAFETY: readers on any thread get `&T` (needs `T: Sync`); the writer may run
// on any thread and creates `T`s that are dropped on the thread that drops the
// table (needs `T: Send`); the allocator is used from the writer's thread and
// the dropping thread (needs `A: Send + Sync`). The control state is atomics
// and a segment directory only the writer touches, ordered by the writer
// flag; an attached value is `Send + Sync` (`with_attached`'s bound).
unsafe impl<T: Send + Sync, A: PoolAllocator + Send + Sync> Sync for Table<T, A> {}
// SAFETY: the table owns its slots, their `T`s and its allocator.
unsafe impl<T: Send, A: PoolAllocator + Send> Send for Table<T, A> {}

impl<T, A: PoolAllocator> Table<T, A> {
    /// An empty table for up to `capacity` processors, clamped to
    /// `1 ..= MAX_PROCESSORS`, whose first segment holds one slot. Allocates
    /// the index (8 bytes a processor).
    ///
    /// # Errors
    ///
    /// [`AllocError`] when the index cannot be allocated.
    pub fn new(capacity: u32, allocator: A) -> Result<Self, AllocError> {
        Self::with_first_segment(capacity, 1, allocator)
    }

    /// An empty table for up to `capacity` processors (clamped to
    /// `1 ..= MAX_PROCESSORS`) whose first segment holds indices
    /// `0 .. first_segment`, `first_segment` clamped to `1 ..= capacity` and
    /// rounded up to a power of two. Pass the processors present now: they
    /// then share one allocation. Any value is safe; it only moves where the
    /// segments start.
    ///
    /// # Errors
    ///
    /// [`AllocError`] when the index cannot be allocated.
    ///
    /// # Examples
    ///
    /// ```
    /// use procnotify_core::{ProcNumber, Table};
    /// use procnotify_sim::SimAllocator;
    ///
    /// let pool = SimAllocator::new();
    /// let table = Table::<u64, _>::with_first_segment(64, 4, pool.clone()).expect("index");
    /// let mut writer = table.writer().expect("the only writer");
    /// for index in 0..4 {
    ///     writer.get_or_insert(index, ProcNumber::dense(index), |place| Ok(place.write(0))).expect("insert");
    /// }
    /// // The index, then one segment for the four slots.
    /// assert_eq!(pool.stats().allocations, 2);
    /// assert_eq!(table.allocated_slots(), 4);
    /// ```
    pub fn with_first_segment(capacity: u32, first_segment: u32, allocator: A) -> Result<Self, AllocError> {
        Self::with_attached(capacity, first_segment, allocator, ())
    }

    /// [`Table::with_first_segment`], with `value` kept in the index
    /// allocation after the entries: the engine's context keeps its counters
    /// there ([`Table::attached`]). The table frees it with the allocation;
    /// `X` has no drop glue, so nothing needs to run first.
    pub(crate) fn with_attached<X: Send + Sync>(
        capacity: u32,
        first_segment: u32,
        allocator: A,
        value: X,
    ) -> Result<Self, AllocError> {
        const { assert!(!core::mem::needs_drop::<X>(), "an attached value is freed, never dropped") };
        let capacity = capacity.clamp(1, MAX_PROCESSORS);
        // `first_segment <= capacity <= MAX_PROCESSORS = 2^MAX_FIRST_SHIFT`:
        // the power of two cannot overflow and its log is in range.
        let first_shift = first_segment.clamp(1, capacity).next_power_of_two().trailing_zeros().min(MAX_FIRST_SHIFT);
        let block = Block::<T>::new::<X>(capacity);
        let base = allocator.allocate(block.layout()?)?;
        // SAFETY: offset 0 of a fresh allocation of `block.layout()`, aligned
        // as `Control`; nothing else refers to it.
        unsafe { base.cast::<Control<T>>().write(block.control()) };
        // SAFETY: `Block::LINKS` is inside the allocation, with room for
        // `capacity` entries after it.
        let links = unsafe { base.add(Block::<T>::LINKS) }.cast::<AtomicPtr<Slot<T>>>();
        for offset in 0..capacity as usize {
            // SAFETY: `offset < capacity`: inside the allocation.
            let entry = unsafe { links.add(offset) };
            // SAFETY: aligned for the entry type (`Block`) and writable.
            unsafe { entry.write(AtomicPtr::new(ptr::null_mut())) };
        }
        // SAFETY: `block.attached()` is the end of the entries, with room for
        // `X` after it (`Block::new::<X>`).
        let attached = unsafe { base.add(block.attached()) }.cast::<X>();
        // SAFETY: aligned for `X` (`Block::new` checks it is aligned no more
        // than an entry) and writable.
        unsafe { attached.write(value) };
        Ok(Self { links, capacity, first_shift, allocator, _owns: PhantomData })
    }

    /// Where the writer's state is: `Block::LINKS` bytes before the entries,
    /// at the start of the allocation.
    #[inline]
    fn control_ptr(&self) -> NonNull<Control<T>> {
        // SAFETY: the entries start `Block::LINKS` bytes into the allocation
        // `links` was derived from (`with_attached`).
        unsafe { self.links.byte_sub(Block::<T>::LINKS) }.cast()
    }

    /// The writer's state.
    #[inline]
    fn control(&self) -> &Control<T> {
        // SAFETY: initialised in `with_attached`, freed only in `Drop`.
        unsafe { self.control_ptr().as_ref() }
    }

    /// The value attached by [`Table::with_attached`], after the entries.
    ///
    /// # Safety
    ///
    /// This table was made by `with_attached::<X>` (with this `X`).
    #[inline]
    pub(crate) unsafe fn attached<X>(&self) -> &X {
        // SAFETY: the attached value starts at the end of the `capacity`
        // entries, inside the allocation (`Block`).
        let value = unsafe { self.links.add(self.capacity as usize) }.cast::<X>();
        // SAFETY: an `X` written by `with_attached::<X>` (the caller's
        // contract), freed only with the table, only ever shared.
        unsafe { value.as_ref() }
    }

    /// The highest index plus one this table can hold.
    #[inline]
    #[must_use]
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The linked entry for `index`, which must be `< capacity`.
    #[inline]
    fn link(&self, index: u32) -> &AtomicPtr<Slot<T>> {
        debug_assert!(index < self.capacity);
        // SAFETY: `index < capacity` (every caller checks), so the entry is
        // inside the index allocation.
        let entry = unsafe { self.links.add(index as usize) };
        // SAFETY: initialised in `with_attached`, lives until the table is dropped.
        unsafe { entry.as_ref() }
    }

    /// The slot for processor `index`, once linked. Wait-free: a bounds check
    /// and one `Acquire` load, the same code as [`Reader::get`]. In a loop
    /// over a `&Table` the function received, the compiler keeps the index
    /// pointer and the capacity in registers (`Table` has no interior
    /// mutability); reached through a raw pointer, or a structure that has
    /// some, it reloads them after each `Acquire` load: take a
    /// [`Reader`] for such a loop.
    #[inline]
    #[must_use]
    #[cfg_attr(procnotify_no_panic, no_panic::no_panic)]
    pub fn get(&self, index: u32) -> Option<&Slot<T>> {
        self.reader().get(index)
    }

    /// A [`Reader`]: the index pointer and capacity copied once, for a loop
    /// that looks up many processors without reloading them after each
    /// `Acquire` load.
    #[inline]
    #[must_use]
    pub fn reader(&self) -> Reader<'_, T> {
        Reader::new(self)
    }

    /// The value for processor `index`, once its slot is linked.
    #[inline]
    #[must_use]
    pub fn value(&self, index: u32) -> Option<&T> {
        self.get(index).map(Slot::value)
    }

    /// The only writer, or `None` while another one exists.
    pub fn writer(&self) -> Option<Writer<'_, T, A>> {
        // Acquire: the previous writer's Release (in `Writer::drop`) makes its
        // segment directory and slot writes visible to this one.
        if self.control().writing.swap(true, Ordering::Acquire) { None } else { Some(Writer { table: self }) }
    }

    /// Every linked slot, in index order.
    pub fn slots(&self) -> impl Iterator<Item = &Slot<T>> + '_ {
        (0..self.capacity).filter_map(move |index| self.get(index))
    }

    /// Slots allocated so far, linked or not.
    #[must_use]
    pub fn allocated_slots(&self) -> u32 {
        // Relaxed: a statistic (see `Control::allocated`).
        self.control().allocated.load(Ordering::Relaxed)
    }

    /// Bytes of slot storage allocated so far.
    #[must_use]
    pub fn slot_bytes(&self) -> usize {
        (self.allocated_slots() as usize).saturating_mul(size_of::<Slot<T>>())
    }

    /// Bytes of the index allocation: `capacity` pointers, after the
    /// writer's state (the segment directory and its counters) and, for the
    /// engine's table, the context's counters.
    #[must_use]
    pub fn index_bytes(&self) -> usize {
        Block::<T>::with_attached_size(self.capacity, self.control().attached)
            .layout()
            .map_or(0, |layout| layout.size())
    }

    /// Slots in the first segment, before it is cut at capacity: a power of
    /// two.
    #[must_use]
    pub fn first_segment(&self) -> u32 {
        1_u32.wrapping_shl(self.first_shift)
    }

    /// The segment holding `index`.
    fn segment_of(&self, index: u32) -> usize {
        segment_of(index, self.first_shift)
    }

    /// The first index in `segment`.
    fn segment_start(&self, segment: usize) -> u32 {
        segment_start(segment, self.first_shift)
    }

    /// The slots `segment` holds in this table (its span, cut at capacity).
    fn segment_len(&self, segment: usize) -> u32 {
        segment_span(segment, self.first_shift).min(self.capacity.saturating_sub(self.segment_start(segment)))
    }

    fn segment_layout(&self, segment: usize) -> Result<Layout, AllocError> {
        Layout::array::<Slot<T>>(self.segment_len(segment) as usize).map_err(|_| AllocError)
    }
}

impl<T, A: PoolAllocator> Drop for Table<T, A> {
    fn drop(&mut self) {
        // `&mut self`: no reader or writer exists any more.
        for index in 0..self.capacity {
            if let Some(slot) = self.get(index) {
                slot.value.with_mut(|value| {
                    // SAFETY: `&mut self`: nobody else can observe the value.
                    let value = unsafe { &mut *value };
                    // SAFETY: linked, so initialised; dropped once, here.
                    unsafe { value.assume_init_drop() };
                });
            }
        }
        let segments = self.control().segments.with(|segments| {
            // SAFETY: `&mut self`: no writer is changing the directory.
            unsafe { *segments }
        });
        for (segment, base) in segments.into_iter().enumerate() {
            if let Some(base) = NonNull::new(base) {
                // SAFETY: a segment this table allocated; values already dropped.
                unsafe { self.free_segment(segment, base) };
            }
        }
        let entries = ptr::slice_from_raw_parts_mut(self.links.as_ptr(), self.capacity as usize);
        // SAFETY: the `capacity` entries written in `with_attached`, unused
        // from now on.
        unsafe { ptr::drop_in_place(entries) };
        let layout = Block::<T>::with_attached_size(self.capacity, self.control().attached).layout();
        let control = self.control_ptr();
        // SAFETY: written in `with_attached`, unused from now on (the attached
        // value has no drop glue: nothing to do for it).
        unsafe { control.drop_in_place() };
        if let Ok(layout) = layout {
            // SAFETY: allocated in `with_attached` with this layout (the same
            // capacity and attached size) by this allocator.
            unsafe { self.allocator.deallocate(control.cast(), layout) };
        }
    }
}

impl<T, A: PoolAllocator> Table<T, A> {
    /// Drops the slots of `segment` at `base` (not their values) and frees it.
    ///
    /// # Safety
    ///
    /// `base` came from `allocate_segment(segment)` on this table, every
    /// initialised value in it has been dropped, and nothing uses it again.
    unsafe fn free_segment(&self, segment: usize, base: NonNull<Slot<T>>) {
        let len = self.segment_len(segment) as usize;
        let slots = ptr::slice_from_raw_parts_mut(base.as_ptr(), len);
        // SAFETY: `len` slots written by `allocate_segment`; exclusive access
        // per the caller. `Slot` has no drop glue for its `MaybeUninit` value.
        unsafe { ptr::drop_in_place(slots) };
        if let Ok(layout) = self.segment_layout(segment) {
            // SAFETY: same allocator and layout as in `allocate_segment`.
            unsafe { self.allocator.deallocate(base.cast(), layout) };
        }
    }

    /// Allocates `segment` and writes a vacant, unlinked slot into each place.
    fn allocate_segment(&self, segment: usize) -> Result<NonNull<Slot<T>>, AllocError> {
        let base = self.allocator.allocate(self.segment_layout(segment)?)?.cast::<Slot<T>>();
        let start = self.segment_start(segment);
        for offset in 0..self.segment_len(segment) {
            // SAFETY: `offset < len`: inside the allocation of `len` slots.
            let place = unsafe { base.add(offset as usize) };
            // SAFETY: aligned (the layout's alignment) and writable.
            unsafe { place.write(Slot::vacant(start.wrapping_add(offset))) };
        }
        Ok(base)
    }
}

#[cfg(all(test, not(procnotify_loom)))]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_every_index_once_for_every_first_segment() {
        for shift in 0..=MAX_FIRST_SHIFT {
            let mut expected_start = 0;
            let mut segment = 0;
            while expected_start < MAX_PROCESSORS {
                assert!(segment < SEGMENTS, "shift {shift}: more than {SEGMENTS} segments");
                assert_eq!(segment_start(segment, shift), expected_start, "shift {shift}");
                let span = segment_span(segment, shift);
                assert_eq!(span, if segment == 0 { 1 << shift } else { expected_start }, "shift {shift}");
                for index in expected_start..expected_start + span {
                    assert_eq!(segment_of(index, shift), segment, "shift {shift}, index {index}");
                }
                expected_start += span;
                segment += 1;
            }
            assert_eq!(expected_start, MAX_PROCESSORS, "shift {shift}");
            assert_eq!(segment, SEGMENTS - shift as usize, "shift {shift}");
        }
    }

    #[test]
    fn slot_is_padded_to_a_cache_line() {
        assert_eq!(align_of::<Slot<()>>(), CACHE_LINE);
        assert_eq!(size_of::<Slot<u64>>() % CACHE_LINE, 0);
    }
}
