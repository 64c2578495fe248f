//! The test kit: the one heap allocator and the one minimal OS that tests,
//! benchmarks and proofs use when they do not want the whole simulated
//! kernel.
//!
//! - [`Heap`]: the C heap as a [`PoolAllocator`] (zeroed, any alignment),
//!   with no bookkeeping, so code measured or proven over it carries none.
//! - [`MiniOs`]: an [`Os`] whose own methods cannot panic and do no I/O:
//!   `register` delivers the existing-processor notifications synchronously,
//!   as Windows does; `log` only counts lines; the current processor is a
//!   thread-local the caller sets with [`MiniOs::run_on`].

use core::alloc::Layout;
use core::cell::Cell;
use core::ffi::c_void;
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

use procnotify_core::monitor::Procnotify;
use procnotify_core::{AllocError, Level, NotifyState, Os, PoolAllocator, RawNotification, Sink};

/// The C heap, standing in for non-paged pool.
#[derive(Clone, Copy, Debug, Default)]
pub struct Heap;

// The C heap's aligned pair. C11's `aligned_alloc` + `free` everywhere but
// Windows, whose CRT has no `aligned_alloc` (its `free` cannot release an
// over-aligned block): there `_aligned_malloc` + `_aligned_free`, so that
// `cargo test --workspace` links on a Windows host too.
#[cfg(not(windows))]
unsafe extern "C" {
    #[link_name = "aligned_alloc"]
    fn c_aligned_alloc(align: usize, size: usize) -> *mut c_void;
    #[link_name = "free"]
    fn c_aligned_free(ptr: *mut c_void);
}

#[cfg(windows)]
unsafe extern "C" {
    fn _aligned_malloc(size: usize, align: usize) -> *mut c_void;
    #[link_name = "_aligned_free"]
    fn c_aligned_free(ptr: *mut c_void);
}

/// `_aligned_malloc` with `aligned_alloc`'s argument order.
///
/// # Safety
///
/// `align` is a power of two.
#[cfg(windows)]
unsafe fn c_aligned_alloc(align: usize, size: usize) -> *mut c_void {
    // SAFETY: FFI call; the caller passes a power-of-two alignment.
    unsafe { _aligned_malloc(size, align) }
}

// SAFETY: the C heap's aligned allocation returns memory aligned as asked (a
// power of two, from `Layout`) and valid for `size >= layout.size()` bytes;
// it is zeroed before being handed out and returned with its matching free.
unsafe impl PoolAllocator for Heap {
    fn allocate(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        // aligned_alloc wants a size that is a multiple of the alignment.
        let size = layout.size().max(1).checked_next_multiple_of(layout.align()).ok_or(AllocError)?;
        // SAFETY: FFI call; the alignment is a power of two.
        let ptr = NonNull::new(unsafe { c_aligned_alloc(layout.align(), size) }).ok_or(AllocError)?;
        // SAFETY: `ptr` is valid for `size` bytes.
        unsafe { ptr.cast::<u8>().write_bytes(0, size) };
        Ok(ptr.cast())
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, _layout: Layout) {
        // SAFETY: `ptr` came from `c_aligned_alloc`, whose pair this is.
        unsafe { c_aligned_free(ptr.as_ptr().cast()) };
    }
}

std::thread_local! {
    static CURRENT: Cell<u32> = const { Cell::new(0) };
}

/// Log lines [`MiniOs::log`] was asked to write, over all `MiniOs`es.
static LINES: AtomicU32 = AtomicU32::new(0);

/// An [`Os`] with `processors` present at registration and a maximum of
/// `max`; see the [module documentation](self).
#[derive(Clone, Copy, Debug)]
pub struct MiniOs {
    /// Processors present when the callback is registered.
    pub processors: u32,
    /// What `max_processors` reports.
    pub max: u32,
}

impl MiniOs {
    /// Runs `f` as if on processor `index` (for [`Os::current_processor`]).
    pub fn run_on<R>(index: u32, f: impl FnOnce() -> R) -> R {
        let previous = CURRENT.replace(index);
        let result = f();
        CURRENT.set(previous);
        result
    }

    /// Log lines requested so far, by every `MiniOs`.
    pub fn lines() -> u32 {
        LINES.load(Ordering::Relaxed)
    }
}

// SAFETY: `register` calls back only with the given sink, synchronously,
// before it returns; nothing is deferred, so `deregister` and
// `flush_deferred` have nothing to wait for.
unsafe impl Os for MiniOs {
    type Identity = Procnotify;
    type Allocator = Heap;
    type Registration = ();

    fn allocator(&self) -> Heap {
        Heap
    }

    fn max_processors(&self) -> u32 {
        self.max
    }

    fn current_processor(&self) -> u32 {
        CURRENT.get()
    }

    fn log(&self, _level: Level, _args: fmt::Arguments<'_>) {
        LINES.fetch_add(1, Ordering::Relaxed);
    }

    unsafe fn register<S: Sink>(&self, sink: NonNull<S>) -> Option<()> {
        // SAFETY: the caller keeps the sink alive for the registration.
        let sink = unsafe { sink.as_ref() };
        for index in 0..self.processors {
            if let Some(status) = sink.on_notification(RawNotification::dense(NotifyState::AddStart, index)) {
                for started in 0..index {
                    let mut failure = RawNotification::dense(NotifyState::AddFailure, started);
                    failure.status = status;
                    sink.on_notification(failure);
                }
                return None;
            }
        }
        for index in 0..self.processors {
            sink.on_notification(RawNotification::dense(NotifyState::AddComplete, index));
        }
        Some(())
    }

    fn deregister(&self, (): ()) {}

    fn flush_deferred(&self) {}
}
