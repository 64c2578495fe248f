//! A tracking, fault-injecting pool allocator: the simulator's non-paged pool.
//!
//! Every allocation is recorded with its layout and its pool tag; freeing an
//! address that is not live (a double free, or a pointer the pool never
//! handed out), with another layout, or under another tag
//! (`ExFreePoolWithTag` bugchecks on that) is recorded as a violation
//! instead of corrupting the heap. Faults are planned by allocation ordinal
//! ("fail the 3rd allocation") or from an ordinal on.
//!
//! Code that must not run on freed memory (a DPC routine, see
//! `kernel/dpc.rs`) *pins* the allocation it uses for as long as it runs
//! ([`SimAllocator::pin`]): checking that the memory is live and keeping it
//! so are one step, so a free on another thread cannot slip in between. A
//! free of a pinned allocation is recorded as a violation and the memory is
//! only returned when the last pin goes, so the host process itself never
//! touches freed memory.

use std::alloc::Layout;
use std::collections::{BTreeSet, HashMap};
use std::ptr::NonNull;
use std::string::String;
use std::sync::Arc;

use crate::locks::{Mutex, MutexGuard};
use std::vec::Vec;

use procnotify_core::{AllocError, PoolAllocator, PoolTag};

/// Byte written over freed memory, so a use after free reads garbage.
pub const POISON: u8 = 0xDD;

/// A pointer the pool holds on to: a block freed while pinned, returned to
/// the heap when the last pin goes.
struct Held(NonNull<u8>);

// SAFETY: the pool only hands the pointer to `dealloc`, under its lock; no
// thread reads or writes through it.
unsafe impl Send for Held {}

/// One live allocation: its layout, the tag it was made under (`None`: an
/// untagged allocator, as tests that use the pool directly have), and how
/// many pins hold it.
struct Block {
    layout: Layout,
    tag: Option<PoolTag>,
    pins: u32,
    /// Freed while pinned: the pointer to return to the heap when the last
    /// pin goes.
    freed: Option<Held>,
}

/// Allocations and frees under one tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagCount {
    /// The tag (`None`: untagged).
    pub tag: Option<PoolTag>,
    /// Successful allocations under it.
    pub allocations: u64,
    /// Frees of them.
    pub frees: u64,
}

#[derive(Default)]
struct State {
    /// Allocations not yet freed (and blocks freed while pinned, until the
    /// last pin goes), by start address.
    live: HashMap<usize, Block>,
    /// Allocations and frees per tag, in order of first use.
    tags: Vec<TagCount>,
    /// Allocation attempts so far (1-based ordinals; failed attempts count).
    attempts: u64,
    allocations: u64,
    frees: u64,
    failures_injected: u64,
    bytes_live: usize,
    bytes_peak: usize,
    fail_at: BTreeSet<u64>,
    fail_from: Option<u64>,
    violations: Vec<String>,
}

impl State {
    /// The live, not yet freed, allocation holding `address`: its start and block.
    fn block_at(&self, address: usize) -> Option<(usize, &Block)> {
        self.live
            .iter()
            .find(|(start, block)| block.freed.is_none() && (**start..**start + block.layout.size()).contains(&address))
            .map(|(start, block)| (*start, block))
    }

    fn tag_count(&mut self, tag: Option<PoolTag>) -> &mut TagCount {
        let at = match self.tags.iter().position(|count| count.tag == tag) {
            Some(at) => at,
            None => {
                self.tags.push(TagCount { tag, allocations: 0, frees: 0 });
                self.tags.len() - 1
            }
        };
        &mut self.tags[at]
    }
}

/// Counters of a [`SimAllocator`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// Allocation attempts, failed ones included.
    pub attempts: u64,
    /// Successful allocations.
    pub allocations: u64,
    /// Frees of live allocations.
    pub frees: u64,
    /// Attempts failed on purpose.
    pub failures_injected: u64,
    /// Allocations not yet freed.
    pub live: usize,
    /// Bytes not yet freed.
    pub bytes_live: usize,
    /// The most bytes live at once.
    pub bytes_peak: usize,
}

/// The simulator's pool. Clones share one account; each handle allocates
/// under its own tag ([`SimAllocator::tagged`]), as each driver passes its
/// own to `ExAllocatePool2`. One pointer wide, as it was before tags, so the
/// simulated context (which holds one) keeps its size and the simulator's
/// byte counts stay comparable across versions.
#[derive(Clone, Default)]
pub struct SimAllocator(Arc<Handle>);

/// A handle's account and tag.
#[derive(Default)]
struct Handle {
    state: Arc<Mutex<State>>,
    tag: Option<PoolTag>,
}

/// A pinned allocation (see [`SimAllocator::pin`]); unpins when dropped.
pub struct Pinned {
    pool: SimAllocator,
    start: usize,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        self.pool.unpin(self.start);
    }
}

impl SimAllocator {
    /// A fresh pool with nothing planned.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock()
    }

    /// A handle on the same pool that allocates under `tag`.
    #[must_use]
    pub fn tagged(&self, tag: PoolTag) -> Self {
        Self(Arc::new(Handle { state: Arc::clone(&self.0.state), tag: Some(tag) }))
    }

    /// The tag this handle allocates under (`None`: untagged).
    #[must_use]
    pub fn tag(&self) -> Option<PoolTag> {
        self.0.tag
    }

    /// Allocations and frees per tag, in order of first use.
    #[must_use]
    pub fn tags(&self) -> Vec<TagCount> {
        self.state().tags.clone()
    }

    /// The tag the live allocation holding `address` was made under, if one
    /// holds it.
    #[must_use]
    pub fn tag_of(&self, address: usize) -> Option<Option<PoolTag>> {
        self.state().block_at(address).map(|(_, block)| block.tag)
    }

    /// Pins the live allocation that holds `address`, if there is one: until
    /// the [`Pinned`] is dropped, a free of it is a violation and its memory
    /// stays (see the module documentation). `None` when no live
    /// allocation holds `address`.
    #[must_use]
    pub fn pin(&self, address: usize) -> Option<Pinned> {
        let mut state = self.state();
        let (start, _) = state.block_at(address)?;
        let block = state.live.get_mut(&start)?;
        block.pins += 1;
        Some(Pinned { pool: self.clone(), start })
    }

    fn unpin(&self, start: usize) {
        let mut state = self.state();
        let Some(block) = state.live.get_mut(&start) else { return };
        block.pins -= 1;
        if block.pins > 0 || block.freed.is_none() {
            return;
        }
        let Some(Block { layout, freed: Some(Held(ptr)), .. }) = state.live.remove(&start) else { return };
        drop(state);
        // SAFETY: freed while pinned: `deallocate` kept the block for the
        // last pin, which just went, and it is no longer recorded.
        unsafe { poison_and_free(ptr, layout) };
    }

    /// Fails the `ordinal`-th allocation attempt from now on counting from the
    /// first attempt ever made (1-based).
    pub fn fail_attempt(&self, ordinal: u64) {
        self.state().fail_at.insert(ordinal);
    }

    /// Fails the next allocation attempt.
    pub fn fail_next(&self) {
        let mut state = self.state();
        let next = state.attempts + 1;
        state.fail_at.insert(next);
    }

    /// Fails every attempt from the `ordinal`-th on (low-resources simulation).
    pub fn fail_from(&self, ordinal: u64) {
        self.state().fail_from = Some(ordinal);
    }

    /// Removes every planned failure.
    pub fn clear_faults(&self) {
        let mut state = self.state();
        state.fail_at.clear();
        state.fail_from = None;
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> AllocStats {
        let state = self.state();
        AllocStats {
            attempts: state.attempts,
            allocations: state.allocations,
            frees: state.frees,
            failures_injected: state.failures_injected,
            live: state.live.values().filter(|block| block.freed.is_none()).count(),
            bytes_live: state.bytes_live,
            bytes_peak: state.bytes_peak,
        }
    }

    /// Double frees and foreign frees seen so far.
    #[must_use]
    pub fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }

    /// Whether `address` is the start of a live allocation.
    #[must_use]
    pub fn is_live(&self, address: usize) -> bool {
        self.state().block_at(address).is_some_and(|(start, _)| start == address)
    }

    /// Whether `address` lies inside a live allocation.
    #[must_use]
    pub fn contains(&self, address: usize) -> bool {
        self.state().block_at(address).is_some()
    }

    pub(crate) fn record_violation(&self, what: String) {
        self.state().violations.push(what);
    }
}

// SAFETY: memory comes from the global allocator with the requested layout,
// zeroed, and is not handed out again until freed here (a block freed while
// pinned stays allocated until the last pin goes).
unsafe impl PoolAllocator for SimAllocator {
    fn allocate(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let mut state = self.state();
        state.attempts += 1;
        let ordinal = state.attempts;
        let planned = state.fail_at.remove(&ordinal) || state.fail_from.is_some_and(|from| ordinal >= from);
        if planned || layout.size() == 0 {
            state.failures_injected += u64::from(planned);
            return Err(AllocError);
        }
        // SAFETY: the layout has a non-zero size (checked above).
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).ok_or(AllocError)?;
        state.live.insert(ptr.as_ptr().addr(), Block { layout, tag: self.0.tag, pins: 0, freed: None });
        state.tag_count(self.0.tag).allocations += 1;
        state.allocations += 1;
        state.bytes_live += layout.size();
        state.bytes_peak = state.bytes_peak.max(state.bytes_live);
        Ok(ptr)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        let mut state = self.state();
        let address = ptr.as_ptr().addr();
        let Some(block) = state.live.get_mut(&address).filter(|block| block.freed.is_none()) else {
            state.violations.push(std::format!("free of {ptr:p}, which is not a live allocation (double free?)"));
            return;
        };
        if block.layout != layout {
            let recorded = block.layout;
            state.violations.push(std::format!("free of {ptr:p} with layout {layout:?}, allocated with {recorded:?}"));
            return;
        }
        // `ExFreePoolWithTag` checks the tag; an untagged handle frees as
        // `ExFreePool` does, without checking.
        if let (Some(tag), Some(recorded)) = (self.0.tag, block.tag)
            && tag != recorded
        {
            state.violations.push(std::format!("free of {ptr:p} under tag {tag}, allocated under tag {recorded}"));
            return;
        }
        let (tag, pinned) = (block.tag, block.pins > 0);
        if pinned {
            block.freed = Some(Held(ptr));
        } else {
            state.live.remove(&address);
        }
        state.tag_count(tag).frees += 1;
        state.frees += 1;
        state.bytes_live -= layout.size();
        if pinned {
            state.violations.push(std::format!("free of {ptr:p} while a DPC or callback was using it"));
        }
        drop(state);
        if !pinned {
            // SAFETY: allocated above by the global allocator with `layout`,
            // and no longer recorded, so nobody else frees or pins it.
            unsafe { poison_and_free(ptr, layout) };
        }
    }
}

/// Poisons a block (a use after free then reads garbage) and returns it to
/// the heap.
///
/// # Safety
///
/// `ptr` came from `alloc_zeroed` with `layout`, is freed once, here, and
/// nothing else uses it.
unsafe fn poison_and_free(ptr: NonNull<u8>, layout: Layout) {
    // SAFETY: valid for `layout.size()` bytes (the caller's contract).
    unsafe { ptr.as_ptr().write_bytes(POISON, layout.size()) };
    // SAFETY: allocated by the global allocator with `layout`.
    unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
}
