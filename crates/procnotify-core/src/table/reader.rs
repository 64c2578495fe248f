//! [`Reader`]: the table's index held in two registers, for loops that look
//! up many processors.

use core::marker::PhantomData;
use core::ptr::NonNull;

use super::{Slot, Table};
use crate::pool::PoolAllocator;
use crate::sync::{AtomicPtr, Ordering};

/// A copy of where a [`Table`]'s index is and how many entries it has, taken
/// once by [`Table::reader`]. Looking up through it is the same bounds check
/// and `Acquire` load as [`Table::get`] (which is implemented with it). In a
/// loop over a `&Table` function argument the two compile to the same code;
/// where the table is reached through a raw pointer (inside a context that
/// [`Driver::context`](crate::Driver::context) returns, say) the compiler
/// cannot tell that the table's fields stay put, and reloads the index
/// pointer and the capacity after each `Acquire` load. A `Reader` is a plain
/// `Copy` value the loop keeps in registers however the table was reached.
///
/// It borrows the table, so the slots it returns live as long as that
/// borrow. It is neither `Send` nor `Sync`: take one per thread.
///
/// ```
/// use procnotify_core::{ProcNumber, Table};
/// use procnotify_sim::kit::Heap;
///
/// let table = Table::<u64, Heap>::new(8, Heap).expect("index");
/// let mut writer = table.writer().expect("the only writer");
/// for index in [1, 3] {
///     let value = u64::from(index) * 10;
///     writer.get_or_insert(index, ProcNumber::dense(index), |place| Ok(place.write(value))).expect("insert");
/// }
/// drop(writer);
/// let reader = table.reader();
/// let sum: u64 = (0..reader.capacity()).filter_map(|index| reader.get(index)).map(|slot| *slot.value()).sum();
/// assert_eq!(sum, 40);
/// assert!(reader.get(2).is_none() && reader.get(8).is_none());
/// ```
pub struct Reader<'a, T> {
    /// The table's `links`: `capacity` initialised entries, never freed while
    /// the table is borrowed.
    links: NonNull<AtomicPtr<Slot<T>>>,
    /// The table's capacity, which never changes.
    capacity: u32,
    _table: PhantomData<&'a Slot<T>>,
}

impl<T> Clone for Reader<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Reader<'_, T> {}

impl<'a, T> Reader<'a, T> {
    /// The view of `table`.
    #[inline]
    pub(super) fn new<A: PoolAllocator>(table: &'a Table<T, A>) -> Self {
        Self { links: table.links, capacity: table.capacity, _table: PhantomData }
    }

    /// The highest index plus one the table can hold.
    #[inline]
    #[must_use]
    pub fn capacity(self) -> u32 {
        self.capacity
    }

    /// The slot for processor `index`, once linked: a bounds check and one
    /// `Acquire` load. Wait-free.
    #[inline]
    #[must_use]
    #[cfg_attr(procnotify_no_panic, no_panic::no_panic)]
    pub fn get(self, index: u32) -> Option<&'a Slot<T>> {
        if index >= self.capacity {
            return None;
        }
        // SAFETY: `index < capacity`, so the entry is inside the index
        // allocation of `capacity` entries.
        let entry = unsafe { self.links.add(index as usize) };
        // SAFETY: every entry was initialised in `Table::new` and lives until
        // the table is dropped, which the borrow `'a` prevents.
        let entry = unsafe { entry.as_ref() };
        // Acquire: pairs with the Release store in `Writer::get_or_insert`, so
        // the slot's value and number are initialised before we read them.
        let slot = entry.load(Ordering::Acquire);
        // SAFETY: non-null entries point at linked slots, which stay in place
        // until the table is dropped; the borrow `'a` prevents that.
        unsafe { slot.as_ref() }
    }
}
