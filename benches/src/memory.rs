//! Memory as the Windows pool sees it.
//!
//! The table makes one allocation for its index (`capacity` pointers after
//! a small header, 8-byte aligned: the table's control state and the
//! engine's counters, [`INDEX_HEADER`] bytes) and one per doubling segment
//! of slots (128-byte aligned on x86-64). Its first segment holds the processors active when it was
//! created (rounded up to a power of two), so how many segments the same
//! processors take depends on how many were present at load.
//! `procnotify-wdk`'s `NonPagedPool` (crates/procnotify-wdk/src/pool.rs,
//! Windows only, so not compiled here) asks `ExAllocatePool2` for exactly
//! the size when the alignment is at most 16 bytes (what the pool guarantees
//! on 64-bit Windows), and for `size + alignment + 8` otherwise: it places
//! the block at the first aligned address at least 8 bytes in and keeps the
//! pool's own pointer in the word below it. [`pool_request`] is that formula.
//!
//! [`footprint`] builds the table the driver keeps, through the engine (a
//! `Context` with procnotify's own `Monitor` hooks and `PerProcessor` values
//! with a 64-byte DPC, the size of an x64 `KDPC`, the processors brought up
//! and hot-added by notifications), over the simulator's accounting pool,
//! and reads procnotify-core's public figures (`allocated_slots`,
//! `slot_bytes`, `index_bytes`) and the pool's count of allocations; the
//! formula turns them into what the pool is asked for. (The context itself
//! is one more pool allocation when a `Driver` loads it; `simulate` counts
//! it, see docs/benchmarks.md.)
//! The pool's own per-block bookkeeping inside `ExAllocatePool2` is not
//! visible to a driver and not counted.

use std::sync::atomic::AtomicPtr;

use procnotify_core::monitor::Monitor;
use procnotify_core::table::CACHE_LINE;
use procnotify_core::{Context, Slot};
use procnotify_sim::SimAllocator;

use crate::dpc::{BenchDpc, Value};
use crate::os::{self, BenchOs};

/// Bytes of the index allocation before its entries in the driver's table:
/// the table's control state (segment directory, writer flag, slot count,
/// the allocation's layout) and the engine's counters kept beside it. The
/// sweep checks it is the same at every size.
pub const INDEX_HEADER: usize = 128;

/// `MEMORY_ALLOCATION_ALIGNMENT` on 64-bit Windows: what `ExAllocatePool2`
/// guarantees for any request (mirrors `procnotify-wdk`'s pool).
pub const POOL_ALIGNMENT: usize = 16;

/// The word `NonPagedPool` keeps below an over-aligned block.
pub const HEADER: usize = size_of::<*mut u8>();

/// Bytes `NonPagedPool` asks `ExAllocatePool2` for, for a block of `size`
/// bytes aligned to `align`.
pub const fn pool_request(size: usize, align: usize) -> usize {
    if align > POOL_ALIGNMENT { size + align + HEADER } else { size }
}

/// One table's memory with `present` of `max` processors online, `at_load`
/// of them present when the driver loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Processors online.
    pub present: u32,
    /// Processors present at load (the table's first-segment hint); the rest
    /// were hot-added.
    pub at_load: u32,
    /// The reported maximum: the table's capacity.
    pub max: u32,
    /// `Table::allocated_slots`.
    pub slots: u32,
    /// `Table::slot_bytes`.
    pub slot_bytes: usize,
    /// `Table::index_bytes`.
    pub index_bytes: usize,
    /// Slot segments allocated (the pool's allocations minus the index).
    pub segments: usize,
    /// What the pool is asked for: [`pool_request`] of the index and of each
    /// segment.
    pub pool_bytes: usize,
}

impl Footprint {
    /// Pool bytes for the slots alone (segments with their alignment
    /// overhead), without the index.
    pub fn slot_pool_bytes(&self) -> usize {
        self.pool_bytes - pool_request(self.index_bytes, align_of::<AtomicPtr<Slot<Value>>>())
    }
}

/// Size of one slot of the driver's table.
pub const SLOT_BYTES: usize = size_of::<Slot<Value>>();

/// The driver's table with `0 .. present` online out of `max`, `at_load` of
/// them present when it was created (the engine's hint,
/// `Os::active_processors`), measured.
///
/// # Panics
///
/// When the simulator's pool disagrees with the table's own figures (the
/// pool holds exactly the index and the slots), or allocation fails.
pub fn footprint(present: u32, at_load: u32, max: u32) -> Footprint {
    let pool = SimAllocator::new();
    let os = BenchOs { present: at_load, max, allocator: pool.clone() };
    // SAFETY: the hooks go straight to the context, which calls them only
    // with its own values; `BenchDpc` defers nothing.
    let hooks = unsafe { Monitor::<BenchDpc<SimAllocator>>::new(os.clone()) };
    let context = Context::new(os, hooks).expect("allocate the index");
    assert!(os::bring_up(&context, at_load), "bring up {at_load}");
    for index in at_load..present {
        assert!(os::hot_add(&context, index), "hot-add {index}");
    }
    let table = context.table();
    let stats = pool.stats();
    let (slot_bytes, index_bytes) = (table.slot_bytes(), table.index_bytes());
    assert_eq!(stats.bytes_live, slot_bytes + index_bytes, "the pool holds the index and the slots, nothing else");
    let segments = usize::try_from(stats.allocations).expect("allocation count") - 1;
    let index_request = pool_request(index_bytes, align_of::<AtomicPtr<Slot<Value>>>());
    // Every segment is one over-aligned request: its slots plus the
    // alignment and the saved pointer.
    let pool_bytes = index_request + slot_bytes + segments * pool_request(0, CACHE_LINE);
    Footprint { present, at_load, max, slots: table.allocated_slots(), slot_bytes, index_bytes, segments, pool_bytes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_is_one_cache_line_like_the_drivers() {
        assert_eq!(SLOT_BYTES, CACHE_LINE);
    }

    /// The memory bound of docs/benchmarks.md, over a sweep of present counts
    /// (every count up to 70, and each power of two up to 2048 with its
    /// neighbours) and of how many of them were present at load (all, one,
    /// and a few in between): slots at most twice those present, the index 8
    /// bytes per possible processor after its fixed header, and one
    /// over-aligned pool request per segment. The first segment holds the processors present at load
    /// (rounded up to a power of two), each further one doubles: 1 + the bit
    /// length of `(present - 1) >> log2(first)` segments, at most 12 (one
    /// present at load, 2048 now).
    #[test]
    fn memory_bound_holds_over_the_sweep() {
        let max = crate::MAX;
        let edges = (7..=11).flat_map(|k| [(1 << k) - 1, 1 << k, (1 << k) + 1]);
        for present in (1..=70).chain(edges).filter(|&p| p <= max) {
            for at_load in [present, 1, 2, 3, 4, present / 2, present - present / 4] {
                let at_load = at_load.clamp(1, present);
                let f = footprint(present, at_load, max);
                assert!(f.slots >= present && f.slots <= 2 * present, "{f:?}");
                assert_eq!(f.index_bytes, INDEX_HEADER + 8 * max as usize, "{f:?}");
                assert_eq!(f.slot_bytes, f.slots as usize * SLOT_BYTES, "{f:?}");
                let first_shift = at_load.next_power_of_two().trailing_zeros();
                let bits = (u32::BITS - ((present - 1) >> first_shift).leading_zeros()) as usize;
                assert_eq!(f.segments, 1 + bits, "{f:?}");
                assert!(f.segments <= 12, "{f:?}");
                let bound = 2 * present as usize * SLOT_BYTES
                    + INDEX_HEADER
                    + 8 * max as usize
                    + f.segments * (CACHE_LINE + HEADER);
                assert!(f.pool_bytes <= bound, "{f:?} over {bound}");
            }
        }
    }

    /// All present at load: one segment, whatever the count.
    #[test]
    fn processors_present_at_load_share_one_segment() {
        for present in [1, 2, 3, 4, 5, 8, 9, 64, 65, 1024, 1025, 2048] {
            let f = footprint(present, present, crate::MAX);
            assert_eq!((f.segments, f.slots), (1, present.next_power_of_two()), "{f:?}");
        }
    }

    #[test]
    fn pool_request_matches_the_windows_layer() {
        assert_eq!(pool_request(16_384, 8), 16_384);
        assert_eq!(pool_request(128, 128), 128 + 128 + 8);
        assert_eq!(pool_request(100, 16), 100);
    }
}
