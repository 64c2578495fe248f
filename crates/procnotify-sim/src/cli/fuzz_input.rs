//! A copy of the fuzz input's types and decoder (`script.rs`, being ported
//! on another branch): [`Header`], [`Op`], [`decode`] with the same names,
//! variants and fields as `procnotify_sim::script`. `replay` prints a decoded
//! crash input as the text format and runs it.
//!
//! MERGE: replace this file's contents with
//! `pub use crate::script::{AddFault, Header, LoadFault, Op, Reported, decode};`
//! once `script.rs` compiles again, so there is one decoder.

use std::vec::Vec;

use procnotify_core::{MAX_PROCESSORS, NtStatus, ProcNumber};

use crate::kernel::NotifyContext;

/// The machine a script runs on (decoded from the header bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Processors at boot.
    pub boot: u32,
    /// The partition's maximum.
    pub max: u32,
    /// Another driver registered before procnotify (it can veto hot-adds).
    pub other_before: bool,
    /// Another driver registered after procnotify's first load.
    pub other_after: bool,
    /// What `KeQueryMaximumProcessorCountEx` reports.
    pub reported_max: Reported,
    /// Whether the platform supports hot-add.
    pub dynamic_partitioning: bool,
}

/// What the kernel reports as the maximum processor count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reported {
    /// The real maximum.
    Max,
    /// Half of it (at least 1): the table is smaller than the partition.
    Half,
    /// `u32::MAX`: the driver must clamp it.
    Huge,
}

impl Header {
    /// `boot` processors, up to `max`, nothing unusual.
    #[must_use]
    pub fn new(boot: u32, max: u32) -> Self {
        Self {
            boot,
            max,
            other_before: false,
            other_after: false,
            reported_max: Reported::Max,
            dynamic_partitioning: true,
        }
    }
}

/// Something a hot-add is made to suffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddFault {
    /// Nothing.
    None,
    /// Another driver vetoes `AddStart` with this (failing) status.
    Veto {
        /// The driver registered after procnotify (else the one before it).
        after: bool,
        /// Its status.
        status: NtStatus,
    },
    /// The HAL fails to start the processor.
    StartFailure(NtStatus),
    /// The n-th allocation attempt (1-based) during the hot-add fails.
    Alloc(u32),
    /// The next slot payload initialisation fails.
    PayloadInit,
    /// The kernel fails to prepare the processor (no notifications).
    Prepare,
}

/// Something a load is made to suffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadFault {
    /// Nothing.
    None,
    /// The n-th allocation attempt (1-based) of the load fails.
    Alloc(u32),
    /// The payload initialisation of the k-th processor (0-based) fails.
    PayloadInit(u32),
    /// The kernel fails the registration before linking it (NULL, no
    /// callbacks).
    Register,
}

/// One step of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Deliver this notification to every registration (`SimKernel::inject`).
    Inject(NotifyContext),
    /// `KeStartDynamicProcessor`, with a fault.
    HotAdd(AddFault),
    /// Run the read path (`Context::visit_current`) on this processor, and
    /// look the index up with `Table::get`.
    Read(u32),
    /// Run the read path on every running processor.
    ReadAll,
    /// Unload, or load when not loaded.
    Toggle,
    /// Unload if loaded, then load with a fault.
    Reload(LoadFault),
}

struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn next(&mut self) -> Option<u8> {
        let byte = self.bytes.get(self.at).copied();
        self.at += 1;
        byte
    }

    /// An argument byte; zero past the end.
    fn byte(&mut self) -> u8 {
        self.next().unwrap_or(0)
    }

    fn word(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
}

/// A status for an argument byte: success, informational and failing values.
fn status(byte: u8) -> NtStatus {
    match byte % 8 {
        0 => NtStatus::SUCCESS,
        1 => NtStatus::UNSUCCESSFUL,
        2 => NtStatus::INSUFFICIENT_RESOURCES,
        3 => NtStatus::DEVICE_BUSY,
        4 => NtStatus::NOT_SUPPORTED,
        5 => NtStatus::INVALID_PARAMETER,
        6 => NtStatus::from_bits(0x4000_0000 | u32::from(byte)),
        _ => NtStatus::from_bits(0xC000_0000 | (u32::from(byte) << 8)),
    }
}

/// A failing status for an argument byte.
fn failing(byte: u8) -> NtStatus {
    let status = status(byte);
    if status.is_failure() { status } else { NtStatus::from_bits(0xC0DE_0000 | u32::from(byte)) }
}

/// Decodes `bytes` into a header and operations. Total: every input decodes.
#[must_use]
pub fn decode(bytes: &[u8]) -> (Header, Vec<Op>) {
    let mut input = Input { bytes, at: 0 };
    let boot = 1 + u32::from(input.byte() % 64);
    let max_byte = input.byte();
    let max = if max_byte == 0xFF { MAX_PROCESSORS } else { (boot + u32::from(max_byte % 128)).min(MAX_PROCESSORS) };
    let flags = input.byte();
    let header = Header {
        boot,
        max,
        other_before: flags & 1 != 0,
        other_after: flags & 2 != 0,
        reported_max: if flags & 4 != 0 {
            Reported::Half
        } else if flags & 8 != 0 {
            Reported::Huge
        } else {
            Reported::Max
        },
        dynamic_partitioning: flags & 16 == 0,
    };
    let mut ops = Vec::new();
    while let Some(opcode) = input.next() {
        let op = match opcode % 10 {
            0 => {
                let (s, i, st, pn) = (input.byte(), input.byte(), input.byte(), input.byte());
                let state = if s % 4 < 3 { u32::from(s % 4) } else { u32::from(s) };
                let nt_number = u32::from(i) % (max + 2);
                let proc_number = if pn & 1 == 0 {
                    ProcNumber::dense(nt_number)
                } else {
                    ProcNumber { group: u16::from(pn >> 5), number: pn.wrapping_mul(7) }
                };
                Op::Inject(NotifyContext { state, nt_number, status: status(st), proc_number })
            }
            1 => {
                let (state, nt_number, status, location) = (input.word(), input.word(), input.word(), input.word());
                #[allow(clippy::cast_possible_truncation)]
                let proc_number = ProcNumber { group: (location >> 16) as u16, number: location as u8 };
                Op::Inject(NotifyContext { state, nt_number, status: NtStatus::from_bits(status), proc_number })
            }
            2 => Op::HotAdd(AddFault::None),
            3 => {
                let b = input.byte();
                Op::HotAdd(AddFault::Veto { after: b & 1 != 0, status: failing(b >> 1) })
            }
            4 => Op::HotAdd(AddFault::StartFailure(failing(input.byte()))),
            5 => Op::HotAdd(AddFault::Alloc(1 + u32::from(input.byte() % 3))),
            6 => Op::HotAdd(if input.byte() & 1 != 0 { AddFault::Prepare } else { AddFault::PayloadInit }),
            7 => match input.byte() {
                0xFF => Op::Read(input.word()),
                b => Op::Read(u32::from(b) % (max + 2)),
            },
            8 => Op::ReadAll,
            _ => match input.byte() % 5 {
                0 => Op::Toggle,
                1 => Op::Reload(LoadFault::None),
                2 => Op::Reload(LoadFault::Alloc(1 + u32::from(input.byte() % 8))),
                3 => Op::Reload(LoadFault::PayloadInit(u32::from(input.byte()))),
                _ => Op::Reload(LoadFault::Register),
            },
        };
        ops.push(op);
    }
    (header, ops)
}
