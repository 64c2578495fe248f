//! A tracking, fault-injecting pool allocator: the simulator's non-paged pool.
//!
//! Every allocation is recorded with its layout; freeing an address that is
//! not live (a double free, or a pointer the pool never handed out) is
//! recorded as a violation instead of corrupting the heap. Faults are planned
//! by allocation ordinal ("fail the 3rd allocation") or from an ordinal on.

use std::alloc::Layout;
use std::collections::{BTreeSet, HashMap};
use std::ptr::NonNull;
use std::string::String;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::vec::Vec;

use procnotify_core::{AllocError, PoolAllocator};

/// Byte written over freed memory, so a use after free reads garbage.
pub const POISON: u8 = 0xDD;

#[derive(Default)]
struct State {
    live: HashMap<usize, Layout>,
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

/// The simulator's pool. Clones share one account.
#[derive(Clone, Default)]
pub struct SimAllocator(Arc<Mutex<State>>);

impl SimAllocator {
    /// A fresh pool with nothing planned.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock()
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
            live: state.live.len(),
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
        self.state().live.contains_key(&address)
    }

    /// Whether `address` lies inside a live allocation.
    #[must_use]
    pub fn contains(&self, address: usize) -> bool {
        self.state().live.iter().any(|(&start, layout)| (start..start + layout.size()).contains(&address))
    }

    pub(crate) fn record_violation(&self, what: String) {
        self.state().violations.push(what);
    }
}

// SAFETY: memory comes from the global allocator with the requested layout,
// zeroed, and is not handed out again until freed here.
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
        state.live.insert(ptr.as_ptr() as usize, layout);
        state.allocations += 1;
        state.bytes_live += layout.size();
        state.bytes_peak = state.bytes_peak.max(state.bytes_live);
        Ok(ptr)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        let mut state = self.state();
        match state.live.remove(&(ptr.as_ptr() as usize)) {
            Some(recorded) if recorded == layout => {
                state.frees += 1;
                state.bytes_live -= layout.size();
                drop(state);
                // SAFETY: live allocation of `layout.size()` bytes, ours to poison.
                unsafe { ptr.as_ptr().write_bytes(POISON, layout.size()) };
                // SAFETY: allocated above by the global allocator with `layout`.
                unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
            }
            Some(recorded) => {
                state.live.insert(ptr.as_ptr() as usize, recorded);
                state
                    .violations
                    .push(std::format!("free of {ptr:p} with layout {layout:?}, allocated with {recorded:?}"));
            }
            None => {
                state.violations.push(std::format!("free of {ptr:p}, which is not a live allocation (double free?)"));
            }
        }
    }
}
