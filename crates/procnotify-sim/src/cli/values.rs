//! Numbers, statuses and notification states as the text format and the
//! reports write them.

use std::format;
use std::string::{String, ToString};

use procnotify_core::{NotifyState, NtStatus};

/// The statuses that can be written by name.
const KNOWN: [NtStatus; 10] = [
    NtStatus::SUCCESS,
    NtStatus::UNSUCCESSFUL,
    NtStatus::INVALID_PARAMETER,
    NtStatus::ACCESS_DENIED,
    NtStatus::INSUFFICIENT_RESOURCES,
    NtStatus::NOT_SUPPORTED,
    NtStatus::DEVICE_BUSY,
    NtStatus::NO_MEMORY,
    NtStatus::DEVICE_NOT_READY,
    NtStatus::TIMEOUT,
];

/// A whole number, decimal or `0x` hexadecimal.
pub fn parse_u32(text: &str) -> Result<u32, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse::<u32>(),
    };
    parsed.map_err(|_| format!("`{text}` is not a whole number from 0 to {}", u32::MAX))
}

/// A whole number up to `u64::MAX`, decimal or `0x` hexadecimal.
pub fn parse_u64(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse::<u64>(),
    };
    parsed.map_err(|_| format!("`{text}` is not a whole number from 0 to {}", u64::MAX))
}

/// A status: `STATUS_ACCESS_DENIED`, `0xC0000022`, or as `Display` prints it
/// (`0xC0000022(STATUS_ACCESS_DENIED)`).
pub fn parse_status(text: &str) -> Result<NtStatus, String> {
    let value = text.split('(').next().unwrap_or(text);
    if let Some(status) = KNOWN.iter().find(|status| status.name() == Some(value)) {
        return Ok(*status);
    }
    if value.starts_with("STATUS_") {
        return Err(format!("unknown status name `{value}`; write its value, e.g. 0xC0000001"));
    }
    parse_u32(value).map(NtStatus::from_bits)
}

/// A status as the text format writes it: its name when known, else its value.
pub fn status_text(status: NtStatus) -> String {
    status.name().map_or_else(|| format!("0x{:08X}", status.bits()), ToString::to_string)
}

/// `STATUS_INSUFFICIENT_RESOURCES (0xC000009A)`, or the value alone.
pub fn status_words(status: NtStatus) -> String {
    match status.name() {
        Some(name) => format!("{name} (0x{:08X})", status.bits()),
        None => format!("0x{:08X}", status.bits()),
    }
}

/// A notification state: `add-start`, `add-complete`, `add-failure`, or any
/// number (values other than 0, 1, 2 are unknown states).
pub fn parse_state(text: &str) -> Result<u32, String> {
    match NotifyState::ALL.iter().find(|state| state.name() == text) {
        Some(state) => Ok(state.raw()),
        None => parse_u32(text)
            .map_err(|_| format!("`{text}` is not a state: add-start, add-complete, add-failure or a number")),
    }
}

/// A state as the text format writes it.
pub fn state_text(state: u32) -> String {
    NotifyState::try_from(state).map_or_else(|_| state.to_string(), |state| state.name().to_string())
}
