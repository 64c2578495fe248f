//! The lock-free per-processor table.
//!
//! Slots are indexed by system-wide processor index and stored in segments of
//! doubling size: segment 0 holds index 0, segment `k >= 1` holds indices
//! `2^(k-1) .. 2^k`. [`SEGMENTS`] (12) segments cover [`MAX_PROCESSORS`]
//! (2048) processors; the fixed directory has 16 entries.
//!
//! - **Reads are wait-free**: [`Table::get`] is a bounds check, a bit scan,
//!   one `Acquire` load of a directory entry and one addition (entries are
//!   stored pre-biased by their segment's first index). No locks, no
//!   read-modify-write, no writes to shared memory.
//! - **Growth never moves a slot**: a segment, once published, stays where it
//!   is until the table is dropped, so a reader may hold `&Slot` across any
//!   number of growths.
//! - **Growth is fallible**: [`Table::ensure`] returns an error value when the
//!   allocator fails; it never aborts.
//! - **Memory follows the processors present**: a segment is allocated only
//!   when an index inside it is first needed, so at most twice the slots in use
//!   are allocated (the newest segment is at most half full), plus the
//!   128-byte directory.
//! - **Slots are cache-line aligned**, so processors bumping their own
//!   counters never share a line.
//!
//! The table knows nothing of notifications: the slot lifecycle is written
//! only by [`crate::notify`], through the `pub(crate)` writer methods here.

use core::alloc::Layout;
use core::ffi::c_void;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};

use crate::os::{AllocError, MAX_PROCESSORS, NtStatus, PoolAllocator, ProcNumber, SlotPayload};
use crate::sync::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, Ordering, UnsafeCell};

/// Doubling segments needed for [`MAX_PROCESSORS`].
pub const SEGMENTS: usize = 12;

/// Directory entries: [`SEGMENTS`] rounded up to a power of two, so that
/// `segment & DIRECTORY_MASK` is provably in bounds and the lookup needs no
/// bounds check. The extra entries stay null.
const DIRECTORY: usize = SEGMENTS.next_power_of_two();
const DIRECTORY_MASK: usize = DIRECTORY - 1;

const _: () = assert!(segment_of(MAX_PROCESSORS - 1) == SEGMENTS - 1);
const _: () = assert!(DIRECTORY * size_of::<usize>() <= 1024);

/// The segment holding `index`: its bit length (0 for index 0).
#[inline]
const fn segment_of(index: u32) -> usize {
    // `leading_zeros() <= 32 == u32::BITS`: cannot underflow.
    u32::BITS.wrapping_sub(index.leading_zeros()) as usize
}

/// The first index in `segment` (`segment < 32`).
#[inline]
const fn segment_start(segment: usize) -> u32 {
    // 0, 1, 2, 4, 8, ...; `segment < SEGMENTS` so the shift is in range.
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

/// Cache-line size used to pad slots. 128 bytes on x86-64 and AArch64, where
/// the adjacent-line prefetcher pulls lines in pairs (crossbeam's choice too).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub const CACHE_LINE: usize = 128;
/// Cache-line size used to pad slots.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const CACHE_LINE: usize = 64;

/// Where a slot is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SlotState {
    /// Never started, or its last add failed: the processor is not running.
    Vacant = 0,
    /// `AddStart` was accepted: the slot is fully initialised and the
    /// processor may already run code that reads it.
    Starting = 1,
    /// `AddComplete` arrived: the processor is running.
    Online = 2,
}

impl SlotState {
    const fn from_bits(bits: u8) -> Self {
        match bits {
            1 => Self::Starting,
            2 => Self::Online,
            _ => Self::Vacant,
        }
    }

    /// The name WinDbg and the simulator print.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Vacant => "vacant",
            Self::Starting => "starting",
            Self::Online => "online",
        }
    }
}

/// One processor's state. Readers get `&Slot` from [`Table::get`] and may keep
/// it until the table is dropped.
///
/// Every field a reader can see is an atomic written by the single writer (the
/// processor change callback) before the `Release` store of `state`; a reader
/// that `Acquire`-loads `state` (every accessor below starts there or is a
/// plain counter) sees them complete.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), repr(C, align(128)))]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), repr(C, align(64)))]
pub struct Slot<P> {
    /// System-wide processor index. Written before the segment is published,
    /// never again.
    index: u32,
    /// `group << 8 | number`. Written by the callback before the `Release`
    /// store of `state` that makes it meaningful.
    location: AtomicU32,
    /// A [`SlotState`]. `Release` stores by the writer, `Acquire` loads by
    /// readers: the publication point of everything above.
    state: AtomicU8,
    /// Set once, with `Release`, after the payload is initialised; readers
    /// `Acquire` it before touching the payload.
    payload_ready: AtomicBool,
    /// `AddStart` notifications received. Single writer; `Relaxed` because the
    /// counts are statistics, not publication.
    starts: AtomicU32,
    /// `AddComplete` notifications received. As `starts`.
    completes: AtomicU32,
    /// `AddFailure` notifications received. As `starts`.
    failures: AtomicU32,
    /// Bumped by code running on this processor (the Windows layer's DPC).
    /// `Relaxed`: a counter; its line is written only by its own processor.
    visits: AtomicU64,
    /// The OS layer's per-processor data; initialised at the first `AddStart`,
    /// dropped with the table.
    payload: UnsafeCell<MaybeUninit<P>>,
}

// SAFETY: the payload is written once, by the single writer, before
// `payload_ready` is published with `Release`; afterwards it is only shared
// (`&P`, which needs `P: Sync`). Every other field is atomic.
unsafe impl<P: Sync> Sync for Slot<P> {}
// SAFETY: a slot owns its payload; moving the owner between threads moves `P`.
unsafe impl<P: Send> Send for Slot<P> {}

impl<P> Slot<P> {
    fn vacant(index: u32) -> Self {
        Self {
            index,
            location: AtomicU32::new(0),
            state: AtomicU8::new(SlotState::Vacant as u8),
            payload_ready: AtomicBool::new(false),
            starts: AtomicU32::new(0),
            completes: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            visits: AtomicU64::new(0),
            payload: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The system-wide processor index (`NtNumber`).
    #[inline]
    #[must_use]
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The lifecycle state. `Acquire`: pairs with the writer's `Release`
    /// store, so the location and payload written before it are visible.
    #[inline]
    #[must_use]
    pub fn state(&self) -> SlotState {
        SlotState::from_bits(self.state.load(Ordering::Acquire))
    }

    /// Group and group-relative number. Meaningful once [`Slot::state`] has
    /// been seen as `Starting` or `Online`.
    #[inline]
    #[must_use]
    pub fn proc_number(&self) -> ProcNumber {
        // Relaxed: callers order it after their Acquire load of `state`.
        let bits = self.location.load(Ordering::Relaxed);
        #[allow(clippy::cast_possible_truncation)] // both parts fit by construction
        ProcNumber { group: (bits >> 8) as u16, number: (bits & 0xFF) as u8 }
    }

    /// Bumps this processor's visit counter. Called by code running on the
    /// processor itself. `Relaxed`: a statistic on a line no other processor
    /// writes.
    #[inline]
    pub fn visit(&self) {
        self.visits.fetch_add(1, Ordering::Relaxed);
    }

    /// The OS layer's payload, once initialised.
    #[inline]
    #[must_use]
    pub fn payload(&self) -> Option<&P> {
        // Acquire: pairs with the Release store in `init_payload`, so the
        // payload's initialisation happens-before this read.
        if self.payload_ready.load(Ordering::Acquire) {
            let ptr = self.payload.read_ptr().cast::<P>();
            // SAFETY: `payload_ready` is set only after `P::init` succeeded at
            // this address, and the payload is dropped only with the table,
            // which outlives `&self`.
            Some(unsafe { &*ptr })
        } else {
            None
        }
    }

    /// A consistent-enough copy for display and checks: the state first
    /// (`Acquire`), then the fields it publishes.
    #[must_use]
    pub fn snapshot(&self) -> SlotSnapshot {
        let state = self.state();
        SlotSnapshot {
            index: self.index,
            proc_number: self.proc_number(),
            state,
            starts: self.starts.load(Ordering::Relaxed),
            completes: self.completes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            visits: self.visits.load(Ordering::Relaxed),
        }
    }

    // ---- writer side: only `crate::notify` calls these, from the serialised
    // ---- processor change callback.

    pub(crate) fn set_location(&self, proc_number: ProcNumber) {
        let bits = (u32::from(proc_number.group) << 8) | u32::from(proc_number.number);
        // Relaxed: published by the following Release store of `state`.
        self.location.store(bits, Ordering::Relaxed);
    }

    pub(crate) fn set_state(&self, state: SlotState) {
        // Release: publishes the location and payload written before it.
        self.state.store(state as u8, Ordering::Release);
    }

    pub(crate) fn count_start(&self) {
        self.starts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_complete(&self) {
        self.completes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}

impl<P: SlotPayload> Slot<P> {
    /// Initialises the payload in place unless it already is. Writer only.
    ///
    /// # Safety
    ///
    /// Only the single writer calls this; `context` is the live driver context
    /// that owns the table.
    pub(crate) unsafe fn init_payload(&self, context: *const c_void) -> Result<(), NtStatus> {
        // Relaxed: only the writer ever stores this flag, and it is the writer.
        if self.payload_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let place = NonNull::new(self.payload.write_ptr().cast::<P>()).ok_or(NtStatus::UNSUCCESSFUL)?;
        // SAFETY: `place` is this slot's payload storage: aligned, writable, not
        // yet initialised and not visible to readers (the flag is false). The
        // caller vouches for `context`.
        unsafe { P::init(place, context, self.index) }?;
        // Release: readers that Acquire the flag see the initialised payload.
        self.payload_ready.store(true, Ordering::Release);
        Ok(())
    }
}

impl<P> Drop for Slot<P> {
    fn drop(&mut self) {
        // Relaxed: `&mut self` means no other access is in flight.
        if self.payload_ready.load(Ordering::Relaxed) {
            let ptr = self.payload.write_ptr().cast::<P>();
            // SAFETY: the flag says the payload was initialised, and `&mut self`
            // means nobody else can observe it any more.
            unsafe { ptr::drop_in_place(ptr) };
        }
    }
}

/// A plain copy of a slot's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotSnapshot {
    /// System-wide index.
    pub index: u32,
    /// Group and number.
    pub proc_number: ProcNumber,
    /// Lifecycle state.
    pub state: SlotState,
    /// `AddStart` notifications received.
    pub starts: u32,
    /// `AddComplete` notifications received.
    pub completes: u32,
    /// `AddFailure` notifications received.
    pub failures: u32,
    /// Times code on this processor reached the slot through the read path.
    pub visits: u64,
}

/// Why [`Table::ensure`] could not produce a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrowError {
    /// The index is at or past the table's capacity.
    OutOfRange,
    /// The allocator failed.
    Alloc(AllocError),
}

impl From<GrowError> for NtStatus {
    fn from(error: GrowError) -> Self {
        match error {
            GrowError::OutOfRange => Self::INVALID_PARAMETER,
            GrowError::Alloc(e) => e.into(),
        }
    }
}

/// The per-processor table. See the [module documentation](self).
pub struct Table<P, A: PoolAllocator> {
    /// For segment `k`: where its first slot would be if the segment started
    /// at index 0 (`base - segment_start(k)` slots, wrapping), so that the
    /// slot for `index` is simply `entry + index`. Null until the segment is
    /// allocated. Published once with a `Release` compare-and-swap; read with
    /// `Acquire`.
    segments: [AtomicPtr<Slot<P>>; DIRECTORY],
    /// The most processors the partition can have (`1 ..= MAX_PROCESSORS`).
    capacity: u32,
    allocator: A,
    _owns: PhantomData<Slot<P>>,
}

impl<P, A: PoolAllocator> Table<P, A> {
    /// An empty table for up to `capacity` processors, clamped to
    /// `1 ..= MAX_PROCESSORS`. Allocates nothing.
    pub fn new(capacity: u32, allocator: A) -> Self {
        Self {
            segments: core::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            capacity: capacity.clamp(1, MAX_PROCESSORS),
            allocator,
            _owns: PhantomData,
        }
    }

    /// The highest index plus one this table can hold.
    #[inline]
    #[must_use]
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The slots `segment` holds in this table (its span, cut at capacity).
    fn segment_len(&self, segment: usize) -> u32 {
        segment_span(segment).min(self.capacity.saturating_sub(segment_start(segment)))
    }

    /// The slot for processor `index`, if its segment has been allocated.
    /// Wait-free: one `Acquire` load and arithmetic.
    #[inline]
    #[must_use]
    #[cfg_attr(procnotify_no_panic, no_panic::no_panic)]
    pub fn get(&self, index: u32) -> Option<&Slot<P>> {
        if index >= self.capacity {
            return None;
        }
        let segment = segment_of(index);
        // Acquire: pairs with the Release CAS in `ensure`, so every slot of the
        // segment was written before we can see the pointer.
        let biased = self.segments.get(segment & DIRECTORY_MASK)?.load(Ordering::Acquire);
        if biased.is_null() {
            return None;
        }
        // `biased + index` is `base + (index - segment_start)`: inside the
        // segment, because `segment_start <= index < min(segment_start + span,
        // capacity)` and the segment holds that many slots. `wrapping_add`
        // keeps the allocation's provenance while the bias is out of bounds.
        let slot = biased.wrapping_add(index as usize);
        // SAFETY: `slot` is an initialised slot of a published segment (see
        // above), which lives until the table is dropped, which `&self` prevents.
        Some(unsafe { &*slot })
    }

    /// The directory entry for `segment` allocated at `base`.
    fn bias(segment: usize, base: NonNull<Slot<P>>) -> *mut Slot<P> {
        base.as_ptr().wrapping_sub(segment_start(segment) as usize)
    }

    /// The allocation behind a non-null directory entry of `segment`.
    fn unbias(segment: usize, biased: *mut Slot<P>) -> Option<NonNull<Slot<P>>> {
        if biased.is_null() { None } else { NonNull::new(biased.wrapping_add(segment_start(segment) as usize)) }
    }

    /// The slot for `index`, allocating and publishing its segment if needed.
    /// Never moves or frees a published slot. Safe against concurrent callers:
    /// the loser of a publication race frees its own, never-published segment.
    ///
    /// # Errors
    ///
    /// [`GrowError::OutOfRange`] for `index >= capacity`;
    /// [`GrowError::Alloc`] when the allocator fails.
    pub fn ensure(&self, index: u32) -> Result<&Slot<P>, GrowError> {
        if index >= self.capacity {
            return Err(GrowError::OutOfRange);
        }
        let segment = segment_of(index);
        let cell = self.segments.get(segment & DIRECTORY_MASK).ok_or(GrowError::OutOfRange)?;
        // Acquire: as in `get`.
        if cell.load(Ordering::Acquire).is_null() {
            let fresh = self.allocate_segment(segment)?;
            let biased = Self::bias(segment, fresh);
            // A bias that happens to be null cannot be told from "not
            // allocated": give the memory back and report no memory.
            if biased.is_null() {
                // SAFETY: `fresh` was never published; nobody else has seen it.
                unsafe { self.free_segment(segment, fresh) };
                return Err(GrowError::Alloc(AllocError));
            }
            // Release on success: publishes the slots written by
            // `allocate_segment`. Acquire on failure: we will read the
            // winner's slots, so we need its writes.
            if cell.compare_exchange(ptr::null_mut(), biased, Ordering::Release, Ordering::Acquire).is_err() {
                // SAFETY: `fresh` was never published; nobody else has seen it.
                unsafe { self.free_segment(segment, fresh) };
            }
        }
        self.get(index).ok_or(GrowError::OutOfRange)
    }

    /// Allocates `segment` and writes a vacant slot into each place.
    fn allocate_segment(&self, segment: usize) -> Result<NonNull<Slot<P>>, GrowError> {
        let len = self.segment_len(segment);
        let layout = Layout::array::<Slot<P>>(len as usize).map_err(|_| GrowError::Alloc(AllocError))?;
        let base = self.allocator.allocate(layout).map_err(GrowError::Alloc)?.cast::<Slot<P>>();
        let start = segment_start(segment);
        for offset in 0..len {
            // SAFETY: `offset < len`, inside the allocation of `len` slots.
            let place = unsafe { base.as_ptr().add(offset as usize) };
            // SAFETY: `place` is aligned (the layout's alignment) and writable.
            unsafe { place.write(Slot::vacant(start.wrapping_add(offset))) };
        }
        Ok(base)
    }

    /// Drops every slot of `segment` at `base` and returns its memory.
    ///
    /// # Safety
    ///
    /// `base` came from `allocate_segment(segment)` and no reference into it
    /// is live or will be used again.
    unsafe fn free_segment(&self, segment: usize, base: NonNull<Slot<P>>) {
        let len = self.segment_len(segment);
        let slots = ptr::slice_from_raw_parts_mut(base.as_ptr(), len as usize);
        // SAFETY: the caller guarantees exclusive access to `len` initialised
        // slots at `base`.
        unsafe { ptr::drop_in_place(slots) };
        if let Ok(layout) = Layout::array::<Slot<P>>(len as usize) {
            // SAFETY: same allocator and layout as in `allocate_segment`.
            unsafe { self.allocator.deallocate(base.cast(), layout) };
        }
    }

    /// Every allocated slot, in index order (vacant ones included).
    pub fn slots(&self) -> impl Iterator<Item = &Slot<P>> + '_ {
        (0..self.capacity).filter_map(move |index| self.get(index))
    }

    /// Slots allocated so far.
    #[must_use]
    pub fn allocated_slots(&self) -> u32 {
        (0..SEGMENTS)
            .filter(|&segment| self.segments.get(segment).is_some_and(|cell| !cell.load(Ordering::Acquire).is_null()))
            .map(|segment| self.segment_len(segment))
            .fold(0, u32::saturating_add)
    }

    /// Bytes of slot storage allocated so far (the directory excluded).
    #[must_use]
    pub fn allocated_bytes(&self) -> usize {
        (self.allocated_slots() as usize).saturating_mul(size_of::<Slot<P>>())
    }

    /// Bytes of the fixed directory (the table struct's segment pointers).
    #[must_use]
    pub const fn directory_bytes() -> usize {
        size_of::<[AtomicPtr<Slot<P>>; DIRECTORY]>()
    }
}

impl<P, A: PoolAllocator> Drop for Table<P, A> {
    fn drop(&mut self) {
        for segment in 0..SEGMENTS {
            let Some(cell) = self.segments.get(segment) else { continue };
            // Acquire: `&mut self` already excludes other accesses; Acquire
            // keeps this correct even for a caller that only has that by
            // external synchronisation.
            let biased = cell.swap(ptr::null_mut(), Ordering::Acquire);
            if let Some(base) = Self::unbias(segment, biased) {
                // SAFETY: a published segment of this table; `&mut self` means no
                // reader holds a slot reference any more.
                unsafe { self.free_segment(segment, base) };
            }
        }
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
        assert_eq!(size_of::<Slot<()>>() % CACHE_LINE, 0);
        assert!(Table::<(), crate::sim::SimAllocator>::directory_bytes() <= 1024);
    }
}

#[cfg(all(test, procnotify_loom))]
pub(crate) mod loom_tests {
    //! Model-checked with `RUSTFLAGS="--cfg procnotify_loom" cargo test --lib --release loom`.
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// A heap allocator for the models (loom runs on the host); the driver's
    /// loom tests use it too.
    #[derive(Clone, Copy)]
    pub(crate) struct Heap;

    // SAFETY: forwards to the global allocator with the same layout.
    unsafe impl PoolAllocator for Heap {
        fn allocate(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
            // SAFETY: every layout the engine asks for has a non-zero size.
            NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).ok_or(AllocError)
        }
        unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
            // SAFETY: `ptr` came from `alloc_zeroed` with `layout`.
            unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
        }
    }

    /// A payload whose contents a model can check were published: its
    /// slot's index.
    pub(crate) struct Marker(pub(crate) u32);

    impl SlotPayload for Marker {
        unsafe fn init(place: NonNull<Self>, _: *const c_void, index: u32) -> Result<(), NtStatus> {
            // SAFETY: the caller hands us writable, aligned storage.
            unsafe { place.as_ptr().write(Marker(index)) };
            Ok(())
        }
    }

    /// A reader racing with growth sees either no segment or a fully
    /// initialised slot with the right index, never anything in between.
    #[test]
    fn reader_sees_whole_segment_or_none() {
        loom::model(|| {
            let table = Arc::new(Table::<Marker, Heap>::new(8, Heap));
            let writer = {
                let table = Arc::clone(&table);
                thread::spawn(move || {
                    let slot = table.ensure(5).unwrap();
                    slot.set_location(ProcNumber { group: 0, number: 5 });
                    // SAFETY: this thread is the only writer.
                    unsafe { slot.init_payload(ptr::null()) }.unwrap();
                    slot.set_state(SlotState::Starting);
                })
            };
            if let Some(slot) = table.get(5) {
                assert_eq!(slot.index(), 5);
                if slot.state() == SlotState::Starting {
                    assert_eq!(slot.proc_number().number, 5);
                    let payload = slot.payload().expect("payload published before state");
                    assert_eq!(payload.0, 5);
                }
            }
            writer.join().unwrap();
        });
    }

    /// Two growers racing for the same segment: exactly one allocation
    /// survives, both get the same slot, nothing leaks (loom checks leaks of
    /// its own objects; the table frees the loser's segment).
    #[test]
    fn racing_growers_publish_one_segment() {
        loom::model(|| {
            let table = Arc::new(Table::<Marker, Heap>::new(4, Heap));
            let other = {
                let table = Arc::clone(&table);
                thread::spawn(move || table.ensure(3).unwrap() as *const Slot<Marker> as usize)
            };
            let mine = table.ensure(2).unwrap() as *const Slot<Marker> as usize;
            let theirs = other.join().unwrap();
            assert_eq!(theirs - mine, size_of::<Slot<Marker>>());
            assert_eq!(table.allocated_slots(), 2);
        });
    }

    /// Three threads: a grower adding two segments and two readers, each of
    /// which must see the slots it finds fully formed.
    #[test]
    fn two_readers_during_two_growths() {
        loom::model(|| {
            let table = Arc::new(Table::<Marker, Heap>::new(4, Heap));
            let readers: std::vec::Vec<_> = [1_u32, 3]
                .into_iter()
                .map(|index| {
                    let table = Arc::clone(&table);
                    thread::spawn(move || {
                        if let Some(slot) = table.get(index) {
                            assert_eq!(slot.index(), index);
                            if slot.state() == SlotState::Online {
                                assert_eq!(slot.payload().map(|p| p.0), Some(index));
                            }
                        }
                    })
                })
                .collect();
            for index in [1_u32, 3] {
                let slot = table.ensure(index).unwrap();
                // SAFETY: the main thread is the only writer.
                unsafe { slot.init_payload(ptr::null()) }.unwrap();
                slot.set_state(SlotState::Online);
            }
            for reader in readers {
                reader.join().unwrap();
            }
        });
    }
}
