//! Link-time proof that the kernel paths cannot panic (issue 5, item 3).
//!
//! Built by `.ci/no-panic.sh` as
//!
//! ```text
//! RUSTFLAGS="--cfg procnotify_no_panic" CARGO_PROFILE_RELEASE_PANIC=unwind \
//!     cargo build --release --example no_panic_proof
//! ```
//!
//! Under `--cfg procnotify_no_panic`, [`Context::on_notification`] (the
//! processor change callback: the state machine, table growth, payload
//! initialisation, accounting), [`Context::visit_current`] (the DPC read path)
//! and [`Table::get`] carry `#[no_panic]`: if the optimiser cannot prove that
//! a call can never panic, the `no-panic` crate turns that into a link error
//! naming the function. The check needs optimisation and `panic = "unwind"`
//! (the driver itself ships with `abort`), and it needs the generic paths to
//! be instantiated and linked: this binary does that with [`MiniOs`], an
//! [`Os`] whose own methods cannot panic, and feeds them opaque
//! (`black_box`) inputs so nothing is proven only for constants.
//!
//! Under `--cfg procnotify_no_panic_canary` it also links a deliberately
//! panicking `#[no_panic]` function: that build must fail, which shows the
//! check is live (not defeated by `panic = "abort"` or dead code).
//!
//! Without those cfgs it is an ordinary example that runs the same calls.

use core::alloc::Layout;
use core::ffi::c_void;
use core::fmt;
use core::ptr::NonNull;
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};

use procnotify::os::{AllocError, PoolAllocator, SlotPayload};
use procnotify::{Context, Driver, Level, NtStatus, Os, ProcNumber, RawNotification, Slot, Table};

/// The processor the "read path" runs on.
static CURRENT: AtomicU32 = AtomicU32::new(0);
/// Deferred calls requested by the callback.
static KICKS: AtomicU32 = AtomicU32::new(0);
/// Log lines (discarded: formatting is the OS layer's job; see the README's
/// reliability section for what the proof does and does not cover).
static LINES: AtomicU32 = AtomicU32::new(0);

/// A payload like the Windows layer's KDPC: plain data written in place.
struct MiniPayload {
    context: *const c_void,
    index: u32,
}

// SAFETY: plain data; `context` is only an address.
unsafe impl Sync for MiniPayload {}

impl SlotPayload for MiniPayload {
    unsafe fn init(place: NonNull<Self>, context: *const c_void, index: u32) -> Result<(), NtStatus> {
        // SAFETY: the caller hands us aligned, writable, uninitialised storage.
        unsafe { place.as_ptr().write(Self { context, index }) };
        Ok(())
    }
}

/// The C heap, standing in for non-paged pool.
#[derive(Clone, Copy)]
struct Heap;

unsafe extern "C" {
    fn aligned_alloc(align: usize, size: usize) -> *mut c_void;
    fn memset(ptr: *mut c_void, byte: i32, size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
}

// SAFETY: `aligned_alloc` returns memory aligned as asked (a power of two,
// from `Layout`) and valid for `size >= layout.size()` bytes; it is zeroed
// before being handed out and returned with `free`.
unsafe impl PoolAllocator for Heap {
    fn allocate(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        // aligned_alloc wants a size that is a multiple of the alignment.
        let size = layout.size().checked_next_multiple_of(layout.align()).ok_or(AllocError)?;
        // SAFETY: FFI call; the alignment is a power of two.
        let ptr = NonNull::new(unsafe { aligned_alloc(layout.align(), size) }).ok_or(AllocError)?;
        // SAFETY: `ptr` is valid for `size` bytes.
        unsafe { memset(ptr.as_ptr(), 0, size) };
        Ok(ptr.cast())
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, _layout: Layout) {
        // SAFETY: `ptr` came from `aligned_alloc`.
        unsafe { free(ptr.as_ptr().cast()) };
    }
}

/// An [`Os`] whose own methods cannot panic.
struct MiniOs {
    processors: u32,
}

// SAFETY: `register` calls back only with the given context, synchronously,
// and `deregister` has nothing to wait for.
unsafe impl Os for MiniOs {
    type Payload = MiniPayload;
    type Allocator = Heap;
    type Registration = ();

    fn allocator(&self) -> Heap {
        Heap
    }

    fn max_processors(&self) -> u32 {
        black_box(64)
    }

    fn current_processor(&self) -> u32 {
        CURRENT.load(Ordering::Relaxed)
    }

    fn log(&self, _level: Level, _args: fmt::Arguments<'_>) {
        LINES.fetch_add(1, Ordering::Relaxed);
    }

    unsafe fn register(&self, context: NonNull<Context<Self>>) -> Option<()> {
        // SAFETY: the caller keeps the context alive for the registration.
        let context = unsafe { context.as_ref() };
        for state in [0, 1] {
            for index in 0..self.processors {
                let notification =
                    RawNotification { state, index, status: NtStatus::SUCCESS, proc_number: ProcNumber::dense(index) };
                if context.on_notification(black_box(notification)).is_some() {
                    return None;
                }
            }
        }
        Some(())
    }

    fn deregister(&self, (): ()) {}

    fn kick(&self, slot: &Slot<MiniPayload>) {
        if let Some(payload) = slot.payload() {
            KICKS.fetch_add(payload.index ^ u32::from(payload.context.is_null()), Ordering::Relaxed);
        }
    }

    fn flush_deferred(&self) {}
}

/// A reader's lookup (`Table::get`). Not inlined, so `.ci/stack.sh` can
/// measure its frame.
#[inline(never)]
fn lookup(table: &Table<MiniPayload, Heap>, index: u32) -> u32 {
    table.get(index).map_or(u32::MAX, Slot::index)
}

/// The DPC read path (`Context::visit_current`). Not inlined, so
/// `.ci/stack.sh` can measure its frame.
#[inline(never)]
fn read_path(context: &Context<MiniOs>) {
    context.visit_current();
}

#[cfg(procnotify_no_panic_canary)]
#[no_panic::no_panic]
fn canary(values: &[u32], index: usize) -> u32 {
    values[index]
}

fn main() {
    let driver = match Driver::load(MiniOs { processors: black_box(4) }) {
        Ok(driver) => driver,
        Err(status) => {
            println!("load failed: {status}");
            return;
        }
    };
    let context = driver.context();
    // Arbitrary notifications: any state, index, status and location.
    let mut seed = black_box(0x2545_F491_u32);
    for _ in 0..black_box(64) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let notification = RawNotification {
            state: seed % 5,
            index: seed.rotate_left(7) % 80,
            status: NtStatus(seed.cast_signed()),
            proc_number: ProcNumber { group: seed.to_le_bytes()[2].into(), number: seed.to_le_bytes()[0] },
        };
        let _ = black_box(context.on_notification(black_box(notification)));
        CURRENT.store(seed % 70, Ordering::Relaxed);
        read_path(black_box(context));
        black_box(lookup(context.table(), black_box(seed)));
    }
    #[cfg(procnotify_no_panic_canary)]
    black_box(canary(black_box(&[1, 2, 3]), black_box(7)));
    println!(
        "no-panic proof: {} present, {} kicks, {} log lines, stats {:?}",
        context.present(),
        KICKS.load(Ordering::Relaxed),
        LINES.load(Ordering::Relaxed),
        context.stats()
    );
    driver.unload();
}
