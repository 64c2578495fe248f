//! The load / unload protocol, written once over [`Os`] and [`Hooks`]:
//!
//! - **Load**: create every piece of state the callback touches (the
//!   [`Context`] with its empty table, in one pool allocation), *then*
//!   register with `KE_PROCESSOR_CHANGE_ADD_EXISTING`. On a NULL
//!   registration, return the status the callback recorded (else
//!   `STATUS_UNSUCCESSFUL`) and free everything.
//! - **Unload**: deregister (after which no callback runs), flush deferred
//!   work (after which no DPC runs), *then* drop the table and free the
//!   context.
//!
//! The registration handle is never stored where the callback can see it: the
//! callback runs for existing processors before the handle is returned.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use crate::engine::Context;
use crate::hooks::Hooks;
use crate::os::Os;
use crate::pool::PoolAllocator;
use crate::sync::{AtomicPtr, AtomicU8, Ordering, UnsafeCell};
use crate::values::{Level, NtStatus};

/// A loaded driver: a registered callback and the context it uses. Dropping
/// it unloads.
pub struct Driver<O: Os, H: Hooks> {
    context: NonNull<Context<O, H>>,
    registration: Option<O::Registration>,
}

// SAFETY: the OS's threads share the context while this handle is owned
// elsewhere, and dropping the handle drops the context on the dropping thread:
// the context must be `Send + Sync`. The registration is handed back to the OS
// on the dropping thread: `Send`.
unsafe impl<O: Os, H: Hooks> Send for Driver<O, H> where Context<O, H>: Send + Sync {}
// SAFETY: `&Driver` only gives out `&Context`, which is shared with the OS's
// threads anyway: the context must be `Sync`.
unsafe impl<O: Os, H: Hooks> Sync for Driver<O, H> where Context<O, H>: Sync {}

impl<O: Os, H: Hooks> Driver<O, H> {
    /// Creates the context, then registers the callback.
    ///
    /// # Errors
    ///
    /// The status the callback recorded when registration failed
    /// (`STATUS_UNSUCCESSFUL` if it recorded none), or
    /// `STATUS_INSUFFICIENT_RESOURCES` when the context cannot be allocated.
    /// Nothing stays allocated on error.
    pub fn load(os: O, hooks: H) -> Result<Self, NtStatus> {
        let allocator = os.allocator();
        let Ok(context) = Context::new(os, hooks) else {
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        };
        let Ok(memory) = allocator.allocate(Layout::new::<Context<O, H>>()) else {
            context.log(Level::Error, format_args!("load failed: no memory for the context"));
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        };
        let address = memory.cast::<Context<O, H>>();
        // SAFETY: fresh, aligned, writable memory of the context's layout.
        unsafe { address.write(context) };
        // Until `register` returns, only this raw pointer holds the context,
        // and nothing frees it if the call unwinds (a hook panicked, on a
        // host: in the kernel a panic is a bugcheck): a leak, never a free of
        // a context the OS may still call. The `Driver` that frees it exists
        // only once the OS returned a registration.
        // SAFETY: initialised just above; freed only by `free` (below, after
        // a failed registration) or by the `Driver`'s `Drop`.
        let context = unsafe { address.as_ref() };
        context.log(Level::Info, format_args!("load: capacity={} registering", context.table().capacity()));
        // SAFETY: the context stays at this address until the `Driver`'s
        // `Drop`, which deregisters first; on `None` it is freed only after
        // the call returned, when no callback can run any more.
        match unsafe { context.os().register(address) } {
            Some(registration) => {
                context.log(Level::Info, format_args!("load: registered, {} present", context.present()));
                Ok(Self { context: address, registration: Some(registration) })
            }
            None => {
                let status = context.recorded_status().unwrap_or(NtStatus::UNSUCCESSFUL);
                let present = context.present();
                if present != 0 {
                    // The OS owes every started processor an AddFailure.
                    context.log(
                        Level::Error,
                        format_args!("load: {present} slots still present after failed registration"),
                    );
                }
                context.log(Level::Error, format_args!("load failed: status={status}"));
                // SAFETY: allocated above; the registration failed, so no
                // callback runs any more, and nothing uses it after this.
                unsafe { Self::free(address) };
                Err(status)
            }
        }
    }

    /// Flushes deferred work (after which no DPC runs), then drops the
    /// context (its table and values) and frees it.
    ///
    /// # Safety
    ///
    /// `address` is a context `load` allocated and initialised, no callback
    /// can run on it any more (deregistered, or never registered), and
    /// nothing uses it afterwards.
    unsafe fn free(address: NonNull<Context<O, H>>) {
        // SAFETY: initialised and not yet freed (the caller's contract).
        let context = unsafe { address.as_ref() };
        // After this returns no DPC runs: nothing uses the context any more.
        context.os().flush_deferred();
        context.log(Level::Info, format_args!("freeing {} slots and the context", context.table().allocated_slots()));
        let allocator = context.os().allocator();
        // SAFETY: no callback or DPC can use the context (above and the
        // caller's contract); dropped once, here. (Its own `Drop` flushes
        // again, which finds nothing left.)
        unsafe { address.drop_in_place() };
        // SAFETY: allocated in `load` with this layout by an allocator of the
        // same OS (clones allocate from the same pool under the same tag).
        unsafe { allocator.deallocate(address.cast(), Layout::new::<Context<O, H>>()) };
    }

    /// The context the callback uses.
    pub fn context(&self) -> &Context<O, H> {
        // SAFETY: initialised in `load` and freed only in `Drop`, which `&self`
        // prevents.
        unsafe { self.context.as_ref() }
    }

    /// Deregisters, flushes deferred work, frees. Same as dropping.
    pub fn unload(self) {
        drop(self);
    }
}

impl<O: Os, H: Hooks> Drop for Driver<O, H> {
    /// Deregisters (after which no callback runs), then frees (see
    /// `free`). From inside the driver's own callback (a hook that drops its
    /// own driver) deregistration would wait for itself forever: the driver
    /// is then leaked, still registered, with a logged error, instead.
    fn drop(&mut self) {
        let registration = self.registration.take();
        let context = self.context();
        if context.in_own_callback() {
            context.log(
                Level::Error,
                format_args!("unload refused: called from inside the driver's own callback; the driver is leaked"),
            );
            // The OS keeps the registration: its handle stays unused.
            core::mem::forget(registration);
            return;
        }
        if let Some(registration) = registration {
            context.log(Level::Info, format_args!("unload: deregistering"));
            // After this returns no callback runs.
            context.os().deregister(registration);
        }
        // SAFETY: allocated in `load`; deregistered above (a `Driver` always
        // holds its registration until here), so no callback runs, and
        // `Drop` runs once.
        unsafe { Self::free(self.context) };
    }
}

const EMPTY: u8 = 0;
const BUSY: u8 = 1;
const LOADED: u8 = 2;

/// Holds at most one [`Driver`] in a `static`, for `DriverEntry` and the
/// unload routine to share. Load and unload are serialised by the I/O
/// manager; the state word turns a violation into an error, not a race.
///
/// Its atomics and cell are loom's under `procnotify_loom` (`crate::sync`):
/// the loom models race loads and unloads on it (`loom_tests::driver_cell`).
pub struct DriverCell<O: Os, H: Hooks> {
    /// `EMPTY`, `BUSY` or `LOADED`. Whoever moves it to `BUSY` (an Acquire
    /// compare-exchange in `load` or `unload`) owns `driver` until it stores
    /// the next state (Release): each Release store pairs with the next
    /// owner's Acquire, so the next owner's accesses to `driver` come after
    /// the previous owner's.
    state: AtomicU8,
    driver: UnsafeCell<Option<Driver<O, H>>>,
    /// The loaded context's address, for debuggers; null otherwise. Stored
    /// before `LOADED` is published and cleared before the context is freed.
    /// `Relaxed`: nothing is read through it by this crate.
    address: AtomicPtr<Context<O, H>>,
}

// SAFETY: `driver` is only touched by the thread that moved `state` to
// `BUSY`, so the `Driver` moves between threads but is never shared: it
// must be `Send`.
unsafe impl<O: Os, H: Hooks> Sync for DriverCell<O, H> where Driver<O, H>: Send {}

impl<O: Os, H: Hooks> Default for DriverCell<O, H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O: Os, H: Hooks> DriverCell<O, H> {
    /// An empty cell.
    #[cfg(not(procnotify_loom))]
    pub const fn new() -> Self {
        Self { state: AtomicU8::new(EMPTY), driver: UnsafeCell::new(None), address: AtomicPtr::new(ptr::null_mut()) }
    }

    /// An empty cell (loom's atomics cannot be built in a `const fn`).
    #[cfg(procnotify_loom)]
    pub fn new() -> Self {
        Self { state: AtomicU8::new(EMPTY), driver: UnsafeCell::new(None), address: AtomicPtr::new(ptr::null_mut()) }
    }

    /// Loads the driver into the cell. Returns `STATUS_SUCCESS` or the failure
    /// [`Driver::load`] reported, with the cell left empty;
    /// `STATUS_DEVICE_BUSY` if the cell is not empty.
    pub fn load(&self, os: O, hooks: H) -> NtStatus {
        // Acquire: pairs with the Release store that emptied the cell (the
        // last unload's `take`, or a failed load), so this write of `driver`
        // comes after that owner's accesses.
        if self.state.compare_exchange(EMPTY, BUSY, Ordering::Acquire, Ordering::Relaxed).is_err() {
            crate::trace::log(&os, Level::Error, format_args!("load while already loaded"));
            return NtStatus::DEVICE_BUSY;
        }
        let (status, next) = match Driver::load(os, hooks) {
            Ok(driver) => {
                self.address.store(driver.context.as_ptr(), Ordering::Relaxed);
                // SAFETY: this thread owns `driver` while the state is BUSY.
                self.driver.with_mut(|cell| unsafe { *cell = Some(driver) });
                (NtStatus::SUCCESS, LOADED)
            }
            Err(status) => (status, EMPTY),
        };
        // Release: hands the stored driver to the next owner (pairs with the
        // Acquire compare-exchange of the next `unload` or `load`).
        self.state.store(next, Ordering::Release);
        status
    }

    /// Unloads the driver if one is loaded; a no-op otherwise (e.g. after a
    /// failed load). Returns whether a driver was unloaded.
    ///
    /// Refused (`false`, with a logged error, the driver stays loaded) when
    /// called from inside the driver's own callback, which deregistration
    /// would wait for forever ([`Context::in_own_callback`]).
    pub fn unload(&self) -> bool {
        // Acquire: pairs with the Release store that published `LOADED` (the
        // load, or a refused unload), so the accesses to `driver` below come
        // after that owner's.
        if self.state.compare_exchange(LOADED, BUSY, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return false;
        }
        let refused = self.driver.with(|driver| {
            // SAFETY: this thread owns `driver` while the state is BUSY.
            let Some(context) = unsafe { &*driver }.as_ref().map(Driver::context) else { return false };
            let refused = context.in_own_callback();
            if refused {
                context.log(Level::Error, format_args!("unload refused: called from inside the driver's own callback"));
            }
            refused
        });
        if refused {
            // Release: hands the driver back, unchanged (pairs with the next
            // owner's Acquire, which must come after the read above).
            self.state.store(LOADED, Ordering::Release);
            return false;
        }
        self.address.store(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: this thread owns `driver` while the state is BUSY.
        let driver = self.driver.with_mut(|driver| unsafe { (*driver).take() });
        drop(driver);
        // Release: pairs with the next `load`'s Acquire, whose write of
        // `driver` must come after the `take` above.
        self.state.store(EMPTY, Ordering::Release);
        true
    }

    /// Whether a driver is loaded right now.
    pub fn is_loaded(&self) -> bool {
        // Relaxed: a snapshot that publishes nothing (nothing is read
        // through it).
        self.state.load(Ordering::Relaxed) == LOADED
    }

    /// The loaded context's address (null when none is loaded), for a
    /// debugger or a log line. Dereferencing it is the caller's business:
    /// the context may be freed by a concurrent unload.
    pub fn context_address(&self) -> *const Context<O, H> {
        self.address.load(Ordering::Relaxed)
    }
}
