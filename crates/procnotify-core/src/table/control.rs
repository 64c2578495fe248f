//! The table's mutable state, out of line: [`Control`], at the start of the
//! index's allocation, and the layout of that allocation, [`Block`], which
//! may also hold a value the table's owner attaches after the entries.
//!
//! Why out of line: a `&T` whose `T` contains no `UnsafeCell` (no atomic, no
//! cell) is, to the compiler, a reference to memory nobody changes while it
//! is held (rustc marks such a function argument `noalias readonly`). Only
//! then may a loop that calls [`Table::get`](super::Table::get) keep the
//! index pointer and the capacity in registers across the `Acquire` load of
//! each entry, as it keeps a slice's pointer and length; otherwise it must
//! reload both after every lookup. So [`Table`](super::Table) holds only
//! plain fields (the index pointer, the capacity, the first segment's shift
//! and the allocator), and everything the writer changes lives here, found
//! at a fixed offset before the entries. The engine's
//! [`Context`](crate::Context) does the same with its counters: they are the
//! value attached after the entries. Neither takes an allocation or a byte
//! of its own: the bytes moved from the context into the index allocation.

use core::alloc::Layout;

use super::{SEGMENTS, Slot};
use crate::sync::{AtomicBool, AtomicPtr, AtomicU32, UnsafeCell};
use crate::values::AllocError;

/// What the table's writer changes after creation. One per table, at the
/// start of its index allocation (no allocation of its own), written in
/// `Table::with_attached` before the table exists and dropped in its `Drop`.
pub(super) struct Control<T> {
    /// Each segment's base, or null. Touched only by the holder of the
    /// [`Writer`](super::Writer) (ordered by `writing`'s Acquire/Release) and
    /// by `Drop`.
    pub(super) segments: UnsafeCell<[*mut Slot<T>; SEGMENTS]>,
    /// Whether a [`Writer`](super::Writer) exists. Acquire on taking it
    /// (`Table::writer`), Release on giving it back (`Writer::drop`):
    /// successive writers see each other's segment directory.
    pub(super) writing: AtomicBool,
    /// Slots allocated so far. Written by the writer, read by anyone:
    /// `Relaxed`, a statistic that publishes nothing.
    pub(super) allocated: AtomicU32,
    /// Size of the attached value after the index, to free the allocation
    /// with its layout. Plain: written before the table exists, read only by
    /// `Drop`. (A `u16` fits in the padding: `Control` is no larger for it.)
    pub(super) attached: u16,
}

impl<T> Control<T> {
    fn new(attached: u16) -> Self {
        Self {
            segments: UnsafeCell::new([core::ptr::null_mut(); SEGMENTS]),
            writing: AtomicBool::new(false),
            allocated: AtomicU32::new(0),
            attached,
        }
    }
}

/// A table's index allocation: its [`Control`] at 0, the `capacity` entries
/// at [`Block::links`], then the attached value (no room when zero-sized).
/// Nothing else: the entries start where `Control` ends (its size is a
/// multiple of its alignment, at least the entries'), and the attached value
/// where they end (its alignment is at most the entries').
pub(super) struct Block<T> {
    capacity: u32,
    attached: u16,
    _control: core::marker::PhantomData<Control<T>>,
}

impl<T> Block<T> {
    /// Offset of the entries: `Control`'s size.
    pub(super) const LINKS: usize = size_of::<Control<T>>();

    const ENTRY: Layout = Layout::new::<AtomicPtr<Slot<T>>>();

    const _LAID_OUT: () = assert!(
        align_of::<Control<T>>() >= Self::ENTRY.align() && Self::LINKS.is_multiple_of(Self::ENTRY.align()),
        "the entries start right after the control state"
    );

    /// The block of a table of `capacity` entries with an attached `X`,
    /// which must be aligned no more than an entry and smaller than 64 KiB
    /// (checked at compile time).
    pub(super) const fn new<X>(capacity: u32) -> Self {
        const { assert!(align_of::<X>() <= Self::ENTRY.align(), "an attached value is aligned at most as a pointer") };
        const { assert!(size_of::<X>() <= u16::MAX as usize, "an attached value is smaller than 64 KiB") };
        #[allow(clippy::cast_possible_truncation)] // at most `u16::MAX`: checked above
        let attached = size_of::<X>() as u16;
        Self::with_attached_size(capacity, attached)
    }

    /// The block of a table of `capacity` entries and an attached value of
    /// `attached` bytes (`Drop`'s view: the size it kept).
    pub(super) const fn with_attached_size(capacity: u32, attached: u16) -> Self {
        let () = Self::_LAID_OUT;
        Self { capacity, attached, _control: core::marker::PhantomData }
    }

    /// The control state to write at the start.
    pub(super) fn control(&self) -> Control<T> {
        Control::new(self.attached)
    }

    /// Offset of the attached value: the end of the entries.
    pub(super) fn attached(&self) -> usize {
        // `capacity <= MAX_PROCESSORS`: no overflow (and `layout` checks).
        Self::LINKS.saturating_add((self.capacity as usize).saturating_mul(Self::ENTRY.size()))
    }

    /// The allocation's layout.
    pub(super) fn layout(&self) -> Result<Layout, AllocError> {
        let size = Self::ENTRY
            .size()
            .checked_mul(self.capacity as usize)
            .and_then(|entries| entries.checked_add(Self::LINKS))
            .and_then(|head| head.checked_add(usize::from(self.attached)))
            .ok_or(AllocError)?;
        Layout::from_size_align(size, align_of::<Control<T>>()).map_err(|_| AllocError)
    }
}
