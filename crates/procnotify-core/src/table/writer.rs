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
        let segment = self.table.segment_of(index);
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
