//! Hot-add: `KeStartDynamicProcessor`, in the order of
//! `docs/processor-change-semantics.md` §3 (the numbered steps below are
//! that section's), with its refusals and the hook that runs once the HAL
//! has started the processor.

use std::format;
use std::string::String;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use procnotify_core::{NotifyState as Kind, NtStatus};

use super::{KernelEvent, SimEvent, SimKernel, lock};

/// Why a hot-add produced no notifications at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The platform cannot add processors.
    NotSupported,
    /// The processor count is at the maximum.
    AtMaximum,
    /// The kernel failed to prepare the processor's own structures.
    PrepareFailed,
}

impl Refusal {
    /// The short token scripts use: `at-maximum`, ...
    #[must_use]
    pub const fn token(self) -> &'static str {
        match self {
            Self::NotSupported => "not-supported",
            Self::AtMaximum => "at-maximum",
            Self::PrepareFailed => "prepare-failed",
        }
    }

    /// The refusal in words, quoting the partition's maximum when given.
    #[must_use]
    pub fn words(self, max: Option<u32>) -> String {
        match (self, max) {
            (Self::NotSupported, _) => String::from("not-supported: the platform cannot add processors"),
            (Self::AtMaximum, Some(max)) => {
                format!("at-maximum: the partition already has its maximum of {max} processors")
            }
            (Self::AtMaximum, None) => String::from("at-maximum: the partition already has its maximum of processors"),
            (Self::PrepareFailed, _) => String::from("prepare-failed: the kernel failed to prepare the processor"),
        }
    }
}

/// What a hot-add did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HotAdd {
    /// The processor at this index is running; `AddComplete` was delivered.
    Added(u32),
    /// `AddFailure` was delivered for this index with this status.
    Failed {
        /// The index the add tried (the next add reuses it).
        index: u32,
        /// The failing status: a veto or the HAL's start failure.
        status: NtStatus,
    },
    /// No notifications were delivered.
    Refused(Refusal),
}

/// Code the simulator runs when the HAL has started a processor, before
/// `AddComplete` (e.g. to wake a test's reader thread for that processor).
pub type StartHook = Arc<dyn Fn(u32) + Send + Sync>;

impl SimKernel {
    /// Runs `hook(index)` each time the HAL starts a processor, before its
    /// `AddComplete` is delivered.
    pub fn on_processor_start(&self, hook: StartHook) {
        *lock(&self.inner.start_hook) = Some(hook);
    }

    /// `KeStartDynamicProcessor`: adds the next processor, in the note's order.
    pub fn hot_add(&self) -> HotAdd {
        // 7. Serialised: `KiDynamicProcessorLock` is held for the whole add.
        let mut count = lock(&self.inner.dynamic);
        // 1. Refused without notifications.
        if let Some(refusal) = self.refusal(*count) {
            self.push(SimEvent::Kernel(KernelEvent::HotAddRefused { refusal }));
            return HotAdd::Refused(refusal);
        }
        // 2. The new index is the current count.
        let index = *count;
        self.push(SimEvent::Kernel(KernelEvent::HotAddBegin { index }));
        // 4. AddStart to every registered callback, in order, until one fails.
        let mut failure = self.add_start_round(index);
        // 5. The HAL starts the processor; from now on it runs code.
        if failure.is_none() {
            failure = self.hal_start(index, &mut count);
        }
        // 6. Exactly one final notification, to every registered callback.
        self.final_notification(index, failure);
        match failure {
            None => HotAdd::Added(index),
            Some(status) => HotAdd::Failed { index, status },
        }
    }

    /// Steps 1 and 3: why the add is refused before any notification, if it
    /// is. `count` is the processor count, read under `KiDynamicProcessorLock`.
    fn refusal(&self, count: u32) -> Option<Refusal> {
        if !self.inner.config.dynamic_partitioning {
            Some(Refusal::NotSupported)
        } else if count >= self.inner.config.max {
            Some(Refusal::AtMaximum)
        } else {
            // 3. The kernel prepares the processor's own structures.
            self.take_prepare_failure().then_some(Refusal::PrepareFailed)
        }
    }

    /// Step 4: `AddStart` to every registered callback, in order, until one
    /// fails. Returns the failing status, if one failed.
    fn add_start_round(&self, index: u32) -> Option<NtStatus> {
        let registrations = lock(&self.inner.registrations).clone();
        for registration in &registrations {
            let result = self.invoke(registration, Kind::AddStart, index, NtStatus::SUCCESS, true);
            if result.is_failure() {
                return Some(result);
            }
        }
        None
    }

    /// Step 5: the HAL starts processor `index`, or fails to (returns the
    /// failure). On success the processor runs code from now on, the count
    /// (`count`, guarded by `KiDynamicProcessorLock`) grows, and the start
    /// hook runs, all before the final notification.
    fn hal_start(&self, index: u32, count: &mut u32) -> Option<NtStatus> {
        if let Some(status) = self.take_start_failure() {
            self.push(SimEvent::Kernel(KernelEvent::ProcessorStartFailed { index, status }));
            return Some(status);
        }
        if let Some(flag) = self.inner.running.get(index as usize) {
            flag.store(true, Ordering::Release);
        }
        *count += 1;
        self.inner.count.store(*count, Ordering::Release);
        self.push(SimEvent::Kernel(KernelEvent::ProcessorStarted { index }));
        let hook = lock(&self.inner.start_hook).clone();
        if let Some(hook) = hook {
            hook(index);
        }
        None
    }

    /// Step 6: exactly one final notification to every registered callback:
    /// `AddComplete`, or `AddFailure` with the failing status.
    fn final_notification(&self, index: u32, failure: Option<NtStatus>) {
        let registrations = lock(&self.inner.registrations).clone();
        let (kind, status) = match failure {
            None => (Kind::AddComplete, NtStatus::SUCCESS),
            Some(status) => (Kind::AddFailure, status),
        };
        for registration in &registrations {
            self.invoke(registration, kind, index, status, true);
        }
    }
}
