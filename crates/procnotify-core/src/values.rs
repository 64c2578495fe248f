//! Plain values shared by every layer: statuses, processor numbers, the raw
//! notification and its state, limits, log levels. A leaf: it imports nothing
//! else of the engine.

use core::fmt;

/// The most logical processors Windows supports in one partition.
pub const MAX_PROCESSORS: u32 = 2048;

/// Logical processors per processor group on Windows.
pub const GROUP_SIZE: u32 = 64;

/// `KE_PROCESSOR_CHANGE_ADD_EXISTING`: also notify for processors that are
/// already present when the callback is registered.
pub const ADD_EXISTING: u32 = 0x1;

/// An `NTSTATUS` value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct NtStatus(pub i32);

impl NtStatus {
    /// `STATUS_SUCCESS`.
    pub const SUCCESS: Self = Self(0);
    /// `STATUS_UNSUCCESSFUL`.
    pub const UNSUCCESSFUL: Self = Self::from_bits(0xC000_0001);
    /// `STATUS_INVALID_PARAMETER`.
    pub const INVALID_PARAMETER: Self = Self::from_bits(0xC000_000D);
    /// `STATUS_ACCESS_DENIED`.
    pub const ACCESS_DENIED: Self = Self::from_bits(0xC000_0022);
    /// `STATUS_INSUFFICIENT_RESOURCES`.
    pub const INSUFFICIENT_RESOURCES: Self = Self::from_bits(0xC000_009A);
    /// `STATUS_NOT_SUPPORTED`.
    pub const NOT_SUPPORTED: Self = Self::from_bits(0xC000_00BB);
    /// `STATUS_DEVICE_BUSY`.
    pub const DEVICE_BUSY: Self = Self::from_bits(0x8000_0011);
    /// `STATUS_NO_MEMORY`.
    pub const NO_MEMORY: Self = Self::from_bits(0xC000_0017);
    /// `STATUS_DEVICE_NOT_READY`.
    pub const DEVICE_NOT_READY: Self = Self::from_bits(0xC000_00A3);
    /// `STATUS_TIMEOUT`.
    pub const TIMEOUT: Self = Self::from_bits(0x0000_0102);
    /// `STATUS_BUFFER_OVERFLOW`: a warning; the output holds what fit.
    pub const BUFFER_OVERFLOW: Self = Self::from_bits(0x8000_0005);
    /// `STATUS_BUFFER_TOO_SMALL`: nothing was written.
    pub const BUFFER_TOO_SMALL: Self = Self::from_bits(0xC000_0023);
    /// `STATUS_INVALID_DEVICE_REQUEST`: an I/O control code the device does
    /// not know.
    pub const INVALID_DEVICE_REQUEST: Self = Self::from_bits(0xC000_0010);

    /// The statuses this crate can name, for logs and the simulator.
    const NAMES: [(Self, &'static str); 13] = [
        (Self::SUCCESS, "STATUS_SUCCESS"),
        (Self::UNSUCCESSFUL, "STATUS_UNSUCCESSFUL"),
        (Self::INVALID_PARAMETER, "STATUS_INVALID_PARAMETER"),
        (Self::ACCESS_DENIED, "STATUS_ACCESS_DENIED"),
        (Self::INSUFFICIENT_RESOURCES, "STATUS_INSUFFICIENT_RESOURCES"),
        (Self::NOT_SUPPORTED, "STATUS_NOT_SUPPORTED"),
        (Self::DEVICE_BUSY, "STATUS_DEVICE_BUSY"),
        (Self::NO_MEMORY, "STATUS_NO_MEMORY"),
        (Self::DEVICE_NOT_READY, "STATUS_DEVICE_NOT_READY"),
        (Self::TIMEOUT, "STATUS_TIMEOUT"),
        (Self::BUFFER_OVERFLOW, "STATUS_BUFFER_OVERFLOW"),
        (Self::BUFFER_TOO_SMALL, "STATUS_BUFFER_TOO_SMALL"),
        (Self::INVALID_DEVICE_REQUEST, "STATUS_INVALID_DEVICE_REQUEST"),
    ];

    /// The status whose bit pattern is `bits` (NTSTATUS values are usually
    /// written as unsigned hexadecimal).
    #[must_use]
    #[allow(clippy::cast_possible_wrap)] // reinterpreting the bits is the point
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits as i32)
    }

    /// The bit pattern, as WinDbg and `DbgPrintEx("%08x")` show it.
    #[must_use]
    #[allow(clippy::cast_sign_loss)] // reinterpreting the bits is the point
    pub const fn bits(self) -> u32 {
        self.0 as u32
    }

    /// `NT_SUCCESS(status)`: success and informational values.
    #[must_use]
    pub const fn is_success(self) -> bool {
        self.0 >= 0
    }

    /// The opposite of [`NtStatus::is_success`]: warnings and errors.
    #[must_use]
    pub const fn is_failure(self) -> bool {
        self.0 < 0
    }

    /// The `STATUS_*` name, for the statuses this crate knows.
    ///
    /// ```
    /// use procnotify_core::NtStatus;
    /// assert_eq!(NtStatus::from_bits(0xC000_009A).name(), Some("STATUS_INSUFFICIENT_RESOURCES"));
    /// assert_eq!(NtStatus::from_bits(0xC0DE_0001).name(), None);
    /// ```
    #[must_use]
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES.iter().find(|(status, _)| *status == self).map(|(_, name)| *name)
    }
}

impl fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X}", self.bits())
    }
}

/// `0xC000009A(STATUS_INSUFFICIENT_RESOURCES)`, or the bare value when the
/// name is not known. One token, so trace lines stay `key=value` pairs.
impl fmt::Display for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "0x{:08X}({name})", self.bits()),
            None => write!(f, "0x{:08X}", self.bits()),
        }
    }
}

/// A processor as Windows names it: group and group-relative number
/// (`PROCESSOR_NUMBER`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProcNumber {
    /// `PROCESSOR_NUMBER::Group`.
    pub group: u16,
    /// `PROCESSOR_NUMBER::Number`, relative to the group.
    pub number: u8,
}

impl ProcNumber {
    /// The group-relative form of system-wide index `index` when groups are
    /// filled in order with [`GROUP_SIZE`] processors each, as the simulator
    /// lays them out. On Windows the OS supplies `ProcNumber` itself.
    #[must_use]
    pub const fn dense(index: u32) -> Self {
        // `index / 64` fits u16 for every u32 below 2^22 and is cut above;
        // `index % 64` fits u8.
        #[allow(clippy::cast_possible_truncation)]
        Self { group: (index / GROUP_SIZE) as u16, number: (index % GROUP_SIZE) as u8 }
    }
}

/// `KE_PROCESSOR_CHANGE_NOTIFY_STATE`, with its wdm.h values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum NotifyState {
    /// `KeProcessorAddStartNotify` (0): the processor is about to start.
    AddStart = 0,
    /// `KeProcessorAddCompleteNotify` (1): the processor is running.
    AddComplete = 1,
    /// `KeProcessorAddFailureNotify` (2): the add did not happen.
    AddFailure = 2,
}

impl NotifyState {
    /// Every state, in value order.
    pub const ALL: [Self; 3] = [Self::AddStart, Self::AddComplete, Self::AddFailure];

    /// The raw `State` value.
    #[must_use]
    pub const fn raw(self) -> u32 {
        self as u32
    }

    /// The name used in trace lines.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::AddStart => "add-start",
            Self::AddComplete => "add-complete",
            Self::AddFailure => "add-failure",
        }
    }
}

/// A `State` value that is none of the three known ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnknownState(pub u32);

impl TryFrom<u32> for NotifyState {
    type Error = UnknownState;

    /// ```
    /// use procnotify_core::{NotifyState, UnknownState};
    /// assert_eq!(NotifyState::try_from(1), Ok(NotifyState::AddComplete));
    /// assert_eq!(NotifyState::try_from(7), Err(UnknownState(7)));
    /// ```
    fn try_from(raw: u32) -> Result<Self, UnknownState> {
        match raw {
            0 => Ok(Self::AddStart),
            1 => Ok(Self::AddComplete),
            2 => Ok(Self::AddFailure),
            other => Err(UnknownState(other)),
        }
    }
}

/// A notification as the OS delivered it, before validation: the fields of
/// `KE_PROCESSOR_CHANGE_NOTIFY_CONTEXT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawNotification {
    /// `State`: see [`NotifyState`]; anything else is unknown.
    pub state: u32,
    /// `NtNumber`: the system-wide processor index.
    pub index: u32,
    /// `Status`: the failure reason for `AddFailure`.
    pub status: NtStatus,
    /// `ProcNumber`.
    pub proc_number: ProcNumber,
}

impl RawNotification {
    /// A notification for processor `index` laid out densely
    /// ([`ProcNumber::dense`]), with `STATUS_SUCCESS`.
    #[must_use]
    pub const fn dense(state: NotifyState, index: u32) -> Self {
        Self { state: state.raw(), index, status: NtStatus::SUCCESS, proc_number: ProcNumber::dense(index) }
    }
}

/// The name of a raw `State` value in trace lines: `add-start`, or
/// `unknown-state-7`.
#[derive(Clone, Copy, Debug)]
pub struct StateName(pub u32);

impl fmt::Display for StateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NotifyState::try_from(self.0) {
            Ok(state) => f.write_str(state.name()),
            Err(UnknownState(raw)) => write!(f, "unknown-state-{raw}"),
        }
    }
}

/// Severity of a log line; maps onto the `DPFLTR_*_LEVEL` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Something is wrong: an allocation failed, a notification was invalid.
    Error,
    /// Unusual but handled: a notification out of order.
    Warning,
    /// One line per notification: the trace WinDbg shows.
    Trace,
    /// Load / unload milestones.
    Info,
}

/// Allocation failed. The callback turns this into
/// `STATUS_INSUFFICIENT_RESOURCES`; nothing aborts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocError;

impl From<AllocError> for NtStatus {
    fn from(_: AllocError) -> Self {
        Self::INSUFFICIENT_RESOURCES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_rejects_unknown_values() {
        for state in NotifyState::ALL {
            assert_eq!(NotifyState::try_from(state.raw()), Ok(state));
        }
        assert_eq!(NotifyState::try_from(3), Err(UnknownState(3)));
        assert_eq!(NotifyState::try_from(u32::MAX), Err(UnknownState(u32::MAX)));
    }

    #[test]
    fn status_display_names_known_values_only() {
        assert_eq!(std::format!("{}", NtStatus::INSUFFICIENT_RESOURCES), "0xC000009A(STATUS_INSUFFICIENT_RESOURCES)");
        assert_eq!(std::format!("{}", NtStatus::from_bits(0xC0DE_0001)), "0xC0DE0001");
        assert!(NtStatus::DEVICE_BUSY.is_failure() && NtStatus::TIMEOUT.is_success());
    }

    #[test]
    fn dense_numbers_fill_groups_of_64() {
        assert_eq!(ProcNumber::dense(0), ProcNumber { group: 0, number: 0 });
        assert_eq!(ProcNumber::dense(64), ProcNumber { group: 1, number: 0 });
        assert_eq!(ProcNumber::dense(2047), ProcNumber { group: 31, number: 63 });
    }
}
