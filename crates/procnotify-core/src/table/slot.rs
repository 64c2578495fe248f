//! [`Slot`]: one processor's lifecycle state and the user's value, padded to
//! a cache line.

use core::mem::MaybeUninit;

use crate::lifecycle::SlotState;
use crate::sync::{AtomicU8, Ordering, UnsafeCell};
use crate::values::ProcNumber;

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
    pub(super) value: UnsafeCell<MaybeUninit<T>>,
    /// Group and number. Written with the value, published the same way.
    pub(super) number: UnsafeCell<ProcNumber>,
    /// System-wide index. Written when the segment is allocated.
    pub(super) index: u32,
    /// A [`SlotState`]. `Release` stores by the writer after each hook;
    /// `Acquire` loads by readers, so a reader that sees a state also sees
    /// what the hook that led to it wrote into the value.
    pub(super) state: AtomicU8,
}

// SAFETY: `&Slot<T>` gives out `&T` on any thread, which needs `T: Sync`; the
// value is written only before the slot is published. Every other field is
// atomic or, likewise, written only before publication.
unsafe impl<T: Sync> Sync for Slot<T> {}
// SAFETY: a slot owns its `T`; sending the owner sends the `T`.
unsafe impl<T: Send> Send for Slot<T> {}

impl<T> Slot<T> {
    pub(super) fn vacant(index: u32) -> Self {
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
    /// in [`Writer::set_state`](crate::table::Writer::set_state), so what the
    /// hook wrote before it is visible.
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
