//! [`Writer`]: the table's only writer, which links slots once their value is
//! initialised and moves their state.

use core::mem::MaybeUninit;
use core::ptr;

use super::{SEGMENTS, Slot, Table};
use crate::lifecycle::SlotState;
use crate::pool::PoolAllocator;
use crate::sync::Ordering;
use crate::values::{AllocError, NtStatus, ProcNumber};

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

/// The table's only writer (see [`Table::writer`]). Dropping it lets the next
/// one in.
pub struct Writer<'a, T, A: PoolAllocator> {
    pub(super) table: &'a Table<T, A>,
}

impl<T, A: PoolAllocator> Drop for Writer<'_, T, A> {
    fn drop(&mut self) {
        // Release: pairs with the next `Table::writer`'s Acquire.
        self.table.control().writing.store(false, Ordering::Release);
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
        self.table.control().segments.with(|segments| unsafe { *segments })
    }

    /// The (possibly unlinked) slot for `index < capacity`, allocating its
    /// segment if needed. Unlinked slots never leave this module.
    fn place(&mut self, index: u32) -> Result<&'a Slot<T>, InsertError> {
        let segment = self.table.segment_of(index);
        let mut base = self.segments().get(segment).copied().ok_or(InsertError::OutOfRange)?;
        if base.is_null() {
            base = self.table.allocate_segment(segment).map_err(InsertError::Alloc)?.as_ptr();
            let control = self.table.control();
            // Relaxed: a statistic (see `Control::allocated`); one writer, so
            // no lost update.
            let total = control.allocated.load(Ordering::Relaxed).saturating_add(self.table.segment_len(segment));
            control.allocated.store(total, Ordering::Relaxed);
            control.segments.with_mut(|segments| {
                // SAFETY: only the writer touches the directory, and `&mut self`
                // is the writer.
                if let Some(entry) = unsafe { (*segments).get_mut(segment) } {
                    *entry = base;
                }
            });
        }
        let offset = index.wrapping_sub(self.table.segment_start(segment)) as usize;
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
    /// The table owns a value only once `init` returned `Ok` with the place's
    /// own reference. After `Err`, a foreign reference or a panic, the place
    /// counts as uninitialised: nothing there is ever dropped or read, and
    /// the next `init` for the index writes over it. An `init` that wrote the
    /// place and then fails must drop what it wrote itself, or leak it (see
    /// [`Hooks::init`](crate::Hooks::init)).
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
    //! What the writer does with what a failing `init` left in the place:
    //! the contract of `Hooks::init` (the table owns a value only after `Ok`
    //! with the place's own reference), checked with values that count their
    //! drops. Runs under Miri too.

    use core::alloc::Layout;
    use core::ptr::NonNull;
    use std::boxed::Box;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::table::Table;
    use crate::values::AllocError;

    /// The process heap, zeroed.
    #[derive(Clone, Copy)]
    struct TestHeap;

    // SAFETY: `alloc_zeroed` memory, valid for `layout`, returned with `dealloc`.
    unsafe impl PoolAllocator for TestHeap {
        fn allocate(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
            // SAFETY: non-zero size (the trait's contract).
            NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).ok_or(AllocError)
        }

        unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
            // SAFETY: allocated above with this layout (the caller's contract).
            unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
        }
    }

    /// A value that counts its drops (in a static: a leaked value holds no
    /// heap memory, so Miri's leak check sees only what the table leaks).
    struct Counted(&'static AtomicUsize);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn table() -> Table<Counted, TestHeap> {
        Table::new(4, TestHeap).expect("index")
    }

    #[test]
    fn a_value_written_then_refused_is_never_dropped_by_the_table() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        let drops = &DROPS;
        let table = table();
        let mut writer = table.writer().expect("writer");
        // `init` writes, then fails without cleaning up: a leak, not a drop
        // of something the table does not own.
        let failed = writer.get_or_insert(1, ProcNumber::dense(1), |place| {
            place.write(Counted(drops));
            Err(NtStatus::DEVICE_NOT_READY)
        });
        assert_eq!(failed.err(), Some(InsertError::Init(NtStatus::DEVICE_NOT_READY)));
        assert!(table.get(1).is_none(), "a refused value was linked");
        assert_eq!(drops.load(Ordering::Relaxed), 0);
        // The next `init` writes over the place; only its value is the table's.
        let slot = writer.get_or_insert(1, ProcNumber::dense(1), |place| Ok(place.write(Counted(drops))));
        assert!(slot.is_ok());
        drop(writer);
        drop(table);
        assert_eq!(drops.load(Ordering::Relaxed), 1, "the table dropped its own value once, the leaked one never");
    }

    #[test]
    fn an_init_that_cleans_up_before_failing_leaks_nothing() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        let drops = &DROPS;
        let table = table();
        let mut writer = table.writer().expect("writer");
        let failed = writer.get_or_insert(2, ProcNumber::dense(2), |place| {
            place.write(Counted(drops));
            // SAFETY: written just above, dropped once, here.
            unsafe { place.assume_init_drop() };
            Err(NtStatus::INSUFFICIENT_RESOURCES)
        });
        assert!(failed.is_err());
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        drop(writer);
        drop(table);
        assert_eq!(drops.load(Ordering::Relaxed), 1, "nothing else was dropped");
    }

    #[test]
    fn a_foreign_reference_is_refused_and_neither_value_is_dropped_by_the_table() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        let drops = &DROPS;
        let table = table();
        let mut writer = table.writer().expect("writer");
        let foreign_address = Box::into_raw(Box::new(Counted(drops)));
        // SAFETY: just allocated; this reference is the only use until it is
        // freed below, after the table let go of it.
        let foreign: &mut Counted = unsafe { &mut *foreign_address };
        let refused = writer.get_or_insert(0, ProcNumber::dense(0), |place| {
            place.write(Counted(drops));
            Ok(foreign)
        });
        assert_eq!(refused.err(), Some(InsertError::Init(NtStatus::UNSUCCESSFUL)));
        assert!(table.get(0).is_none());
        drop(writer);
        drop(table);
        assert_eq!(drops.load(Ordering::Relaxed), 0, "the table dropped a value it did not own");
        // SAFETY: leaked above and refused by the table, which kept nothing.
        drop(unsafe { Box::from_raw(foreign_address) });
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_panicking_init_leaves_the_slot_unlinked_and_the_writer_free() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        let drops = &DROPS;
        let table = table();
        let outcome = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            let mut writer = table.writer().expect("writer");
            let _ = writer.get_or_insert(3, ProcNumber::dense(3), |place| {
                place.write(Counted(drops));
                panic!("init panics after writing");
            });
        }));
        assert!(outcome.is_err());
        assert!(table.get(3).is_none());
        let mut writer = table.writer().expect("the writer was given back on unwind");
        assert!(writer.get_or_insert(3, ProcNumber::dense(3), |place| Ok(place.write(Counted(drops)))).is_ok());
        drop(writer);
        drop(table);
        assert_eq!(drops.load(Ordering::Relaxed), 1, "only the linked value is dropped");
    }
}
