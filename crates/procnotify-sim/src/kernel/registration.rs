//! Registration with `\Callback\ProcessorAdd`: `KeRegisterProcessorChangeCallback`
//! (with and without `ADD_EXISTING`), `KeDeregisterProcessorChangeCallback`
//! (which waits for a running callback), and the one place a callback is
//! called from (`SimKernel::invoke_raw`), shared by registration, hot-add
//! and [`SimKernel::inject`].

use std::boxed::Box;
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::vec::Vec;

use crate::locks::{Condvar, Mutex};
use procnotify_core::{ADD_EXISTING, NotifyState as Kind, NtStatus, ProcNumber};

use super::{KernelEvent, SimEvent, SimKernel, lock};

/// `KE_PROCESSOR_CHANGE_NOTIFY_CONTEXT` as the simulator delivers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifyContext {
    /// 0 `AddStart`, 1 `AddComplete`, 2 `AddFailure`; anything for fault injection.
    pub state: u32,
    /// System-wide index.
    pub nt_number: u32,
    /// Failure reason for `AddFailure`.
    pub status: NtStatus,
    /// Group and number.
    pub proc_number: ProcNumber,
}

/// `PROCESSOR_CALLBACK_FUNCTION`: context, change context, operation status.
pub type RawCallback = fn(context: *mut c_void, change: &NotifyContext, operation_status: &mut NtStatus);

/// A registration handle (`PVOID` on Windows).
#[derive(Debug, PartialEq, Eq)]
pub struct Handle(u64);

impl Handle {
    /// The registration's number in the trace.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.0
    }
}

/// Another driver's callback, for veto injection.
pub type OtherCallback = Box<dyn Fn(&NotifyContext) -> NtStatus + Send + Sync>;

enum Target {
    /// A raw callback with its context, like the real API. The kernel pins
    /// the context's pool allocation for every call (it must be live).
    Raw { callback: RawCallback, context: CallbackContext },
    /// Another driver's callback.
    Other(OtherCallback),
}

/// A callback's context: kept as the pointer the driver gave (never as an
/// integer), so the callback gets it back with its provenance.
struct CallbackContext(*mut c_void);

// SAFETY: the kernel only hands the pointer back to the driver's callback,
// on whichever thread delivers a notification, as Windows does; the driver
// vouches for its use there (`Os::register`'s contract).
unsafe impl Send for CallbackContext {}
// SAFETY: as above; the kernel itself never reads or writes through it.
unsafe impl Sync for CallbackContext {}

pub(super) struct Registration {
    id: u64,
    target: Target,
    /// Callbacks running now, and the condition deregistration waits on.
    in_flight: Mutex<u32>,
    idle: Condvar,
    handle_returned: AtomicBool,
}

/// A one-shot gate that holds the next callback inside the kernel until
/// released, to test that deregistration waits for it.
#[derive(Default)]
pub struct Gate {
    state: Mutex<(bool, bool)>, // (entered, released)
    changed: Condvar,
}

impl Gate {
    /// Blocks until a callback is held at the gate.
    pub fn wait_entered(&self) {
        let mut state = lock(&self.state);
        while !state.0 {
            self.changed.wait(&mut state);
        }
    }

    /// Lets the held callback run.
    pub fn release(&self) {
        lock(&self.state).1 = true;
        self.changed.notify_all();
    }

    fn hold(&self) {
        let mut state = lock(&self.state);
        state.0 = true;
        self.changed.notify_all();
        while !state.1 {
            self.changed.wait(&mut state);
        }
    }
}

impl SimKernel {
    /// Holds the next callback inside the kernel until the gate is released.
    #[must_use]
    pub fn hold_next_callback(&self) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        *lock(&self.inner.gate) = Some(Arc::clone(&gate));
        gate
    }

    /// Deregistrations currently waiting for a callback to return.
    #[must_use]
    pub fn deregistrations_waiting(&self) -> u32 {
        self.inner.deregistrations_waiting.load(Ordering::Acquire)
    }

    /// `KeRegisterProcessorChangeCallback`, in the note's observed order.
    pub fn register(&self, callback: RawCallback, context: *mut c_void, flags: u32) -> Option<Handle> {
        let target = Target::Raw { callback, context: CallbackContext(context) };
        self.register_target(target, flags)
    }

    /// Registers another driver's callback, for veto injection. Without
    /// `ADD_EXISTING`, as such drivers usually do.
    pub fn register_other_driver(&self, callback: OtherCallback) -> Handle {
        self.register_target(Target::Other(callback), 0).expect("registration without ADD_EXISTING cannot fail")
    }

    fn register_target(&self, target: Target, flags: u32) -> Option<Handle> {
        // 1. Take KiDynamicProcessorLock.
        let count = lock(&self.inner.dynamic);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        if self.take_register_failure() {
            self.push(SimEvent::Kernel(KernelEvent::RegisterReturned { registration: id, handle: false }));
            return None;
        }
        let registration = Arc::new(Registration {
            id,
            target,
            in_flight: Mutex::new(0),
            idle: Condvar::new(),
            handle_returned: AtomicBool::new(false),
        });
        // 2. Link it: registered from here on, handle not yet returned.
        lock(&self.inner.registrations).push(Arc::clone(&registration));
        let add_existing = flags & ADD_EXISTING != 0;
        self.push(SimEvent::Kernel(KernelEvent::RegisterBegin { registration: id, add_existing }));
        if add_existing {
            // 4. AddStart for every existing processor in index order; stop at
            //    the first failure.
            let mut failed = None;
            for index in 0..*count {
                let result = self.invoke(&registration, Kind::AddStart, index, NtStatus::SUCCESS, false);
                if result.is_failure() {
                    failed = Some((index, result));
                    break;
                }
            }
            match failed {
                // 5. AddComplete for every processor.
                None => {
                    for index in 0..*count {
                        self.invoke(&registration, Kind::AddComplete, index, NtStatus::SUCCESS, false);
                    }
                }
                // 6. Unlink, then AddFailure for 0 .. k-1 (not k), return NULL.
                Some((failed_at, status)) => {
                    self.unlink(id);
                    self.push(SimEvent::Kernel(KernelEvent::Unlinked { registration: id }));
                    for index in 0..failed_at {
                        self.invoke(&registration, Kind::AddFailure, index, status, false);
                    }
                    self.push(SimEvent::Kernel(KernelEvent::RegisterReturned { registration: id, handle: false }));
                    return None;
                }
            }
        }
        registration.handle_returned.store(true, Ordering::Release);
        self.push(SimEvent::Kernel(KernelEvent::RegisterReturned { registration: id, handle: true }));
        drop(count);
        Some(Handle(id))
    }

    fn unlink(&self, id: u64) -> Option<Arc<Registration>> {
        let mut list = lock(&self.inner.registrations);
        let position = list.iter().position(|registration| registration.id == id)?;
        Some(list.remove(position))
    }

    /// `KeDeregisterProcessorChangeCallback`: unlink, then wait for any
    /// callback of this registration still running to return.
    #[allow(clippy::needless_pass_by_value)] // the handle is spent, as on Windows
    pub fn deregister(&self, handle: Handle) {
        let Some(registration) = self.unlink(handle.0) else {
            self.inner.pool.record_violation(std::format!("deregistration of unknown handle #{}", handle.0));
            return;
        };
        self.inner.deregistrations_waiting.fetch_add(1, Ordering::AcqRel);
        let mut in_flight = lock(&registration.in_flight);
        while *in_flight > 0 {
            registration.idle.wait(&mut in_flight);
        }
        drop(in_flight);
        self.inner.deregistrations_waiting.fetch_sub(1, Ordering::AcqRel);
        self.push(SimEvent::Kernel(KernelEvent::Deregistered { registration: handle.0 }));
    }

    /// Calls one registration. `linked_only`: skip it if it has been unlinked
    /// (the hot-add path); registration's own failure path calls it unlinked.
    pub(super) fn invoke(
        &self,
        registration: &Registration,
        kind: Kind,
        index: u32,
        status: NtStatus,
        linked_only: bool,
    ) -> NtStatus {
        let change =
            NotifyContext { state: kind.raw(), nt_number: index, status, proc_number: ProcNumber::dense(index) };
        self.invoke_raw(registration, change, linked_only)
    }

    fn invoke_raw(&self, registration: &Registration, change: NotifyContext, linked_only: bool) -> NtStatus {
        {
            // Checking the link and entering happen under the list lock, so a
            // deregistration that unlinked first never sees this call start.
            let list = lock(&self.inner.registrations);
            if linked_only && !list.iter().any(|linked| linked.id == registration.id) {
                return NtStatus::SUCCESS;
            }
            *lock(&registration.in_flight) += 1;
        }
        // Leaves the call, also when the callback unwinds (a panicking hook
        // on a host): deregistration must not wait for it forever.
        let _in_flight = InFlight(registration);
        if let Some(gate) = lock(&self.inner.gate).take() {
            gate.hold();
        }
        self.push(SimEvent::Kernel(KernelEvent::Callback {
            registration: registration.id,
            change,
            handle_returned: registration.handle_returned.load(Ordering::Acquire),
        }));
        let mut operation_status = NtStatus::SUCCESS;
        match &registration.target {
            Target::Raw { callback, context } => {
                // Check and keep in one step (a pin, see `SimAllocator::pin`):
                // a free racing the callback is recorded, never a use after free.
                let address = context.0.addr();
                match self.inner.pool.pin(address).filter(|_| self.inner.pool.is_live(address)) {
                    Some(_pin) => callback(context.0, &change, &mut operation_status),
                    None => self.inner.pool.record_violation(std::format!(
                        "callback #{} called with freed context {address:#x}",
                        registration.id
                    )),
                }
            }
            Target::Other(callback) => operation_status = callback(&change),
        }
        if operation_status.is_failure() {
            self.push(SimEvent::Kernel(KernelEvent::Vetoed {
                registration: registration.id,
                status: operation_status,
            }));
        }
        operation_status
    }

    /// Delivers an arbitrary notification to every registration, as a buggy
    /// or future kernel might. Returns each callback's `*OperationStatus`.
    pub fn inject(&self, change: NotifyContext) -> Vec<NtStatus> {
        let _serialised = lock(&self.inner.dynamic);
        let registrations = lock(&self.inner.registrations).clone();
        registrations.iter().map(|registration| self.invoke_raw(registration, change, true)).collect()
    }
}

/// One callback of a registration in progress; leaving it (dropping this,
/// also on unwind) lets a waiting deregistration go on.
struct InFlight<'a>(&'a Registration);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.0.in_flight);
        *in_flight -= 1;
        if *in_flight == 0 {
            self.0.idle.notify_all();
        }
    }
}
