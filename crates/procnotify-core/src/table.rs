//! The lock-free per-processor table, generic over the user's value `T`.
//!
//! Two structures, both in pool memory:
//!
//! - **The index**: one pointer per possible processor (`capacity` entries,
//!   8 bytes each: 16 KiB at 2048), allocated when the table is created. An
//!   entry is null until its slot is *linked*; a lookup is a bounds check and
//!   one `Acquire` load, the same work as a fixed array plus that load.
//! - **The slots**: in segments of doubling size (segment 0 holds index 0,
//!   segment `k >= 1` holds `2^(k-1) .. 2^k`), each allocated when an index
//!   inside it is first needed. At most twice the slots in use exist.
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
use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};

use crate::lifecycle::SlotState;
use crate::pool::PoolAllocator;
use crate::sync::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, Ordering, UnsafeCell};
use crate::values::{AllocError, MAX_PROCESSORS, NtStatus, ProcNumber};

mod reader;
pub use reader::Reader;

/// Doubling segments needed for [`MAX_PROCESSORS`].
pub const SEGMENTS: usize = 12;

const _: () = assert!(segment_of(MAX_PROCESSORS - 1) == SEGMENTS - 1);

/// The segment holding `index`: its bit length (0 for index 0).
#[inline]
const fn segment_of(index: u32) -> usize {
    // `leading_zeros() <= 32 == u32::BITS`: cannot underflow.
    u32::BITS.wrapping_sub(index.leading_zeros()) as usize
}

/// The first index in `segment` (`segment < SEGMENTS`): 0, 1, 2, 4, 8, ...
#[inline]
const fn segment_start(segment: usize) -> u32 {
    // `segment < SEGMENTS <= 32`, so the shift is in range.
    #[allow(clippy::cast_possible_truncation)]
    let shift = segment as u32;
    1_u32.wrapping_shl(shift) >> 1
}

/// How many slots `segment` spans when the table is unbounded: 1, 1, 2, 4, ...
#[inline]
const fn segment_span(segment: usize) -> u32 {
    let start = segment_start(segment);
    if start == 0 { 1 } else { start }
}

/// Cache-line size slots are padded to: 128 bytes on x86-64 and AArch64,
/// where the adjacent-line prefetcher pulls lines in pairs.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub const CACHE_LINE: usize = 128;
/// Cache-line size slots are padded to.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const CACHE_LINE: usize = 64;

/// One processor's slot: its lifecycle state and the user's `T`.
///
/// Only linked slots are ever handed out, so [`Slot::value`] is always a
/// whole `T`.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), repr(C, align(128)))]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), repr(C, align(64)))]
pub struct Slot<T> {
    /// The user's value. Written once, by the writer, before the slot is
    /// linked (the index entry's `Release` store publishes it); only shared
    /// afterwards; dropped with the table.
    value: UnsafeCell<MaybeUninit<T>>,
    /// Group and number. Written with the value, published the same way.
    number: UnsafeCell<ProcNumber>,
    /// System-wide index. Written when the segment is allocated.
    index: u32,
    /// A [`SlotState`]. `Release` stores by the writer after each hook;
    /// `Acquire` loads by readers, so a reader that sees a state also sees
    /// what the hook that led to it wrote into the value.
    state: AtomicU8,
}

// SAFETY: `&Slot<T>` gives out `&T` on any thread, which needs `T: Sync`; the
// value is written only before the slot is published. Every other field is
// atomic or, likewise, written only before publication.
unsafe impl<T: Sync> Sync for Slot<T> {}
// SAFETY: a slot owns its `T`; sending the owner sends the `T`.
unsafe impl<T: Send> Send for Slot<T> {}

impl<T> Slot<T> {
    fn vacant(index: u32) -> Self {
        Self {
            value: UnsafeCell::new(MaybeUninit::uninit()),
            number: UnsafeCell::new(ProcNumber::default()),
            index,
            state: AtomicU8::new(SlotState::Vacant as u8),
        }
    }

    /// The system-wide processor index (`NtNumber`).
    #[inline]
    #[must_use]
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Group and group-relative number, as the `AddStart` (or adopting
    /// `AddComplete`) that created the value reported them.
    #[inline]
    #[must_use]
    pub fn proc_number(&self) -> ProcNumber {
        // SAFETY: written before the slot was linked, never again; every
        // `&Slot` outside the writer comes from an `Acquire` load of the link.
        self.number.with(|number| unsafe { *number })
    }

    /// The lifecycle state. `Acquire`: pairs with the writer's `Release` store
    /// in [`Writer::set_state`], so what the hook wrote before it is visible.
    #[inline]
    #[must_use]
    pub fn state(&self) -> SlotState {
        SlotState::from_bits(self.state.load(Ordering::Acquire))
    }

    /// The user's value.
    #[inline]
    #[must_use]
    pub fn value(&self) -> &T {
        // Under loom the read is recorded here, and every later use of the
        // reference follows it in program order.
        self.value.with(|value| {
            // SAFETY: the cell's pointer is valid for the slot's lifetime, and
            // the value is only shared once the slot is linked.
            let value = unsafe { &*value };
            // SAFETY: a `&Slot` is only handed out once linked, and a slot is
            // linked only after its value was initialised
            // (`Writer::get_or_insert`); it is dropped only with the table,
            // which outlives `&self`.
            unsafe { value.assume_init_ref() }
        })
    }
}

/// Why [`Writer::get_or_insert`] produced no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The index is at or past the table's capacity.
    OutOfRange,
    /// The allocator failed.
    Alloc(AllocError),
    /// The initialiser failed with this status (or returned a reference to
    /// something other than the place it was given: `STATUS_UNSUCCESSFUL`).
    Init(NtStatus),
}

impl From<InsertError> for NtStatus {
    fn from(error: InsertError) -> Self {
        match error {
            InsertError::OutOfRange => Self::INVALID_PARAMETER,
            InsertError::Alloc(e) => e.into(),
            InsertError::Init(status) => status,
        }
    }
}

/// The per-processor table. See the [module documentation](self).
pub struct Table<T, A: PoolAllocator> {
    /// `capacity` entries: the linked slot for each index, or null. Each entry
    /// is stored once, with `Release`, by the writer (pairs with the `Acquire`
    /// load in [`Table::get`]).
    links: NonNull<AtomicPtr<Slot<T>>>,
    /// The most processors the partition can have (`1 ..= MAX_PROCESSORS`).
    capacity: u32,
    /// Each segment's base, or null. Touched only by the holder of the
    /// [`Writer`] (ordered by `writing`'s Acquire/Release) and by `Drop`.
    segments: UnsafeCell<[*mut Slot<T>; SEGMENTS]>,
    /// Whether a [`Writer`] exists. Acquire on taking it, Release on giving it
    /// back: successive writers see each other's segment directory.
    writing: AtomicBool,
    /// Slots allocated so far. Written by the writer, read by anyone:
    /// `Relaxed`, a statistic that publishes nothing.
    allocated: AtomicU32,
    allocator: A,
    _owns: PhantomData<Slot<T>>,
}

// SAFETY: readers on any thread get `&T` (needs `T: Sync`); the writer may run
// on any thread and creates `T`s that are dropped on the thread that drops the
// table (needs `T: Send`); the allocator is used from the writer's thread and
// the dropping thread (needs `A: Send + Sync`).
unsafe impl<T: Send + Sync, A: PoolAllocator + Send + Sync> Sync for Table<T, A> {}
// SAFETY: the table owns its slots, their `T`s and its allocator.
unsafe impl<T: Send, A: PoolAllocator + Send> Send for Table<T, A> {}

impl<T, A: PoolAllocator> Table<T, A> {
    /// An empty table for up to `capacity` processors, clamped to
    /// `1 ..= MAX_PROCESSORS`. Allocates the index (8 bytes a processor).
    ///
    /// # Errors
    ///
    /// [`AllocError`] when the index cannot be allocated.
    pub fn new(capacity: u32, allocator: A) -> Result<Self, AllocError> {
        let capacity = capacity.clamp(1, MAX_PROCESSORS);
        let layout = Self::links_layout(capacity)?;
        let links = allocator.allocate(layout)?.cast::<AtomicPtr<Slot<T>>>();
        for offset in 0..capacity as usize {
            // SAFETY: `offset < capacity`: inside the allocation.
            let entry = unsafe { links.add(offset) };
            // SAFETY: aligned for the entry type (the layout's alignment) and
            // writable.
            unsafe { entry.write(AtomicPtr::new(ptr::null_mut())) };
        }
        Ok(Self {
            links,
            capacity,
            segments: UnsafeCell::new([ptr::null_mut(); SEGMENTS]),
            writing: AtomicBool::new(false),
            allocated: AtomicU32::new(0),
            allocator,
            _owns: PhantomData,
        })
    }

    fn links_layout(capacity: u32) -> Result<Layout, AllocError> {
        Layout::array::<AtomicPtr<Slot<T>>>(capacity as usize).map_err(|_| AllocError)
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
        // SAFETY: initialised in `new`, lives until the table is dropped.
        unsafe { entry.as_ref() }
    }

    /// The slot for processor `index`, once linked. Wait-free: a bounds check
    /// and one `Acquire` load (the same as [`Reader::get`]).
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
        if self.writing.swap(true, Ordering::Acquire) { None } else { Some(Writer { table: self }) }
    }

    /// Every linked slot, in index order.
    pub fn slots(&self) -> impl Iterator<Item = &Slot<T>> + '_ {
        (0..self.capacity).filter_map(move |index| self.get(index))
    }

    /// Slots allocated so far, linked or not.
    #[must_use]
    pub fn allocated_slots(&self) -> u32 {
        // Relaxed: a statistic (see the field).
        self.allocated.load(Ordering::Relaxed)
    }

    /// Bytes of slot storage allocated so far.
    #[must_use]
    pub fn slot_bytes(&self) -> usize {
        (self.allocated_slots() as usize).saturating_mul(size_of::<Slot<T>>())
    }

    /// Bytes of the index (`capacity` pointers).
    #[must_use]
    pub fn index_bytes(&self) -> usize {
        (self.capacity as usize).saturating_mul(size_of::<AtomicPtr<Slot<T>>>())
    }

    /// The slots `segment` holds in this table (its span, cut at capacity).
    fn segment_len(&self, segment: usize) -> u32 {
        segment_span(segment).min(self.capacity.saturating_sub(segment_start(segment)))
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
        let segments = self.segments.with(|segments| {
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
        // SAFETY: the `capacity` entries written in `new`, unused from now on.
        unsafe { ptr::drop_in_place(entries) };
        if let Ok(layout) = Self::links_layout(self.capacity) {
            // SAFETY: allocated in `new` with this layout by this allocator.
            unsafe { self.allocator.deallocate(self.links.cast(), layout) };
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
        let start = segment_start(segment);
        for offset in 0..self.segment_len(segment) {
            // SAFETY: `offset < len`: inside the allocation of `len` slots.
            let place = unsafe { base.add(offset as usize) };
            // SAFETY: aligned (the layout's alignment) and writable.
            unsafe { place.write(Slot::vacant(start.wrapping_add(offset))) };
        }
        Ok(base)
    }
}

/// The table's only writer (see [`Table::writer`]). Dropping it lets the next
/// one in.
pub struct Writer<'a, T, A: PoolAllocator> {
    table: &'a Table<T, A>,
}

impl<T, A: PoolAllocator> Drop for Writer<'_, T, A> {
    fn drop(&mut self) {
        // Release: pairs with the next `Table::writer`'s Acquire.
        self.table.writing.store(false, Ordering::Release);
    }
}

impl<'a, T, A: PoolAllocator> Writer<'a, T, A> {
    /// The table written to.
    #[must_use]
    pub fn table(&self) -> &'a Table<T, A> {
        self.table
    }

    fn segments(&self) -> [*mut Slot<T>; SEGMENTS] {
        // SAFETY: the directory is only touched by the writer, which is us.
        self.table.segments.with(|segments| unsafe { *segments })
    }

    /// The (possibly unlinked) slot for `index < capacity`, allocating its
    /// segment if needed. Unlinked slots never leave this module.
    fn place(&mut self, index: u32) -> Result<&'a Slot<T>, InsertError> {
        let segment = segment_of(index);
        let mut base = self.segments().get(segment).copied().ok_or(InsertError::OutOfRange)?;
        if base.is_null() {
            base = self.table.allocate_segment(segment).map_err(InsertError::Alloc)?.as_ptr();
            // Relaxed: a statistic (see the field); one writer, so no lost update.
            let total = self.table.allocated.load(Ordering::Relaxed).saturating_add(self.table.segment_len(segment));
            self.table.allocated.store(total, Ordering::Relaxed);
            self.table.segments.with_mut(|segments| {
                // SAFETY: only the writer touches the directory, and `&mut self`
                // is the writer.
                if let Some(entry) = unsafe { (*segments).get_mut(segment) } {
                    *entry = base;
                }
            });
        }
        let offset = index.wrapping_sub(segment_start(segment)) as usize;
        // SAFETY: `segment_start(segment) <= index < min(start + span, capacity)`,
        // so `offset` is inside the segment's allocation.
        let slot = unsafe { base.add(offset) };
        // SAFETY: an initialised slot, which lives until the table is dropped
        // (after `'a`).
        Ok(unsafe { &*slot })
    }

    /// The slot for `index`, linking it first if needed: `init` gets the
    /// uninitialised value and must return it initialised (the reference it
    /// returns must be the one it was given; anything else is refused with
    /// `STATUS_UNSUCCESSFUL` and the slot stays unlinked). Readers can see the
    /// slot only after this returns `Ok`. A slot already linked is returned
    /// as it is and `init` is not called.
    ///
    /// # Errors
    ///
    /// [`InsertError`]: out of range, no memory, or `init` failed. The slot
    /// is then still unlinked: invisible to readers.
    pub fn get_or_insert(
        &mut self,
        index: u32,
        number: ProcNumber,
        init: impl FnOnce(&mut MaybeUninit<T>) -> Result<&mut T, NtStatus>,
    ) -> Result<&'a Slot<T>, InsertError> {
        if let Some(slot) = self.table.get(index) {
            return Ok(slot);
        }
        if index >= self.table.capacity {
            return Err(InsertError::OutOfRange);
        }
        let slot = self.place(index)?;
        slot.value.with_mut(|value| {
            // SAFETY: the slot is unlinked, so no reader can see it, and we are
            // the only writer: this is the only reference to its value.
            let place = unsafe { &mut *value };
            let expected = place.as_ptr();
            match init(place) {
                Ok(done) if ptr::eq(done, expected) => Ok(()),
                Ok(_) => Err(InsertError::Init(NtStatus::UNSUCCESSFUL)),
                Err(status) => Err(InsertError::Init(status)),
            }
        })?;
        // SAFETY: unlinked and we are the writer, as above.
        slot.number.with_mut(|place| unsafe { place.write(number) });
        // Release: publishes the value and number written above (and the
        // segment's slots) to readers that Acquire-load this entry in `get`.
        self.table.link(index).store(ptr::from_ref(slot).cast_mut(), Ordering::Release);
        Ok(slot)
    }

    /// Moves the linked slot for `index` to `state`. `false` when it is not
    /// linked.
    pub fn set_state(&self, index: u32, state: SlotState) -> bool {
        let Some(slot) = self.table.get(index) else { return false };
        // Release: pairs with the Acquire in `Slot::state`, so a reader that
        // sees `state` sees the writes to the value made before it (the hook).
        slot.state.store(state as u8, Ordering::Release);
        true
    }
}

#[cfg(all(test, not(procnotify_loom)))]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_every_index_once() {
        let mut expected_start = 0;
        for segment in 0..SEGMENTS {
            assert_eq!(segment_start(segment), expected_start);
            for index in expected_start..expected_start + segment_span(segment) {
                assert_eq!(segment_of(index), segment, "index {index}");
            }
            expected_start += segment_span(segment);
        }
        assert_eq!(expected_start, MAX_PROCESSORS);
    }

    #[test]
    fn slot_is_padded_to_a_cache_line() {
        assert_eq!(align_of::<Slot<()>>(), CACHE_LINE);
        assert_eq!(size_of::<Slot<u64>>() % CACHE_LINE, 0);
    }
}
