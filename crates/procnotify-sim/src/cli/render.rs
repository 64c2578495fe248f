//! The kernel's trace lines, with every registration named: `procnotify` or
//! `other driver "x"`, so a veto is attributed to whoever issued it.

use std::format;
use std::string::String;

use procnotify_core::GROUP_SIZE;

use super::values::state_text;
use crate::kernel::{KernelEvent, Refusal};

/// Why a hot-add was refused, in words.
pub fn refusal_words(refusal: Refusal, max: u32) -> String {
    match refusal {
        Refusal::NotSupported => String::from("not-supported: the platform cannot add processors"),
        Refusal::AtMaximum => format!("at-maximum: the partition already has its maximum of {max} processors"),
        Refusal::PrepareFailed => String::from("prepare-failed: the kernel failed to prepare the processor"),
    }
}

/// The token `expect hot-add refused` uses.
pub fn refusal_token(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::NotSupported => "not-supported",
        Refusal::AtMaximum => "at-maximum",
        Refusal::PrepareFailed => "prepare-failed",
    }
}

/// One kernel event as a trace line; `who(registration)` names a registration.
pub fn kernel_line(event: &KernelEvent, who: &dyn Fn(u64) -> String, max: u32) -> String {
    match event {
        KernelEvent::RegisterBegin { registration, add_existing } => format!(
            "kernel: KeRegisterProcessorChangeCallback(flags={}) by {}: takes KiDynamicProcessorLock, links \
             registration #{registration}; handle not returned yet",
            if *add_existing { "KE_PROCESSOR_CHANGE_ADD_EXISTING" } else { "0" },
            who(*registration)
        ),
        KernelEvent::Unlinked { registration } => format!(
            "kernel: AddStart failed: registration #{registration} ({}) unlinked, delivering AddFailure to the \
             processors that succeeded",
            who(*registration)
        ),
        KernelEvent::RegisterReturned { registration, handle } => format!(
            "kernel: KeRegisterProcessorChangeCallback returns {} to {} (registration #{registration})",
            if *handle { "the handle" } else { "NULL" },
            who(*registration)
        ),
        KernelEvent::Callback { registration, change, handle_returned } => format!(
            "kernel:   -> callback #{registration} ({}) {} NtNumber={} group={} number={} Status={}{}",
            who(*registration),
            callback_state(change.state),
            change.nt_number,
            change.proc_number.group,
            change.proc_number.number,
            change.status,
            if *handle_returned { "" } else { " (handle not yet returned)" }
        ),
        KernelEvent::Vetoed { registration, status } => {
            format!("kernel:   <- callback #{registration} ({}) vetoed: OperationStatus={status}", who(*registration))
        }
        KernelEvent::HotAddBegin { index } => format!(
            "kernel: KeStartDynamicProcessor: new processor index={index} (group {} number {})",
            index / GROUP_SIZE,
            index % GROUP_SIZE
        ),
        KernelEvent::HotAddRefused { refusal } => {
            format!("kernel: KeStartDynamicProcessor refused, no notifications: {}", refusal_words(*refusal, max))
        }
        KernelEvent::ProcessorStarted { index } => {
            format!("kernel: HAL started processor {index}: it runs code now, before AddComplete")
        }
        KernelEvent::ProcessorStartFailed { index, status } => {
            format!("kernel: HAL failed to start processor {index}: {status}")
        }
        KernelEvent::Deregistered { registration } => format!(
            "kernel: KeDeregisterProcessorChangeCallback(#{registration}) by {} returns: no callback runs any more",
            who(*registration)
        ),
    }
}

/// `AddStart`, or `State=7` for an unknown state.
fn callback_state(state: u32) -> String {
    match state {
        0 => String::from("AddStart"),
        1 => String::from("AddComplete"),
        2 => String::from("AddFailure"),
        _ => format!("State={}", state_text(state)),
    }
}
