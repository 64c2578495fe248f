//! The fuzz byte format (see the [module documentation](super)): [`decode`]
//! is total, every input decodes; [`encode`] writes seed inputs.

use std::vec::Vec;

use procnotify_core::{MAX_PROCESSORS, NtStatus, ProcNumber};

use super::{AddFault, Header, LoadFault, Op, Reported};
use crate::kernel::NotifyContext;

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
    let header = decode_header(&mut input);
    let mut ops = Vec::new();
    while let Some(opcode) = input.next() {
        ops.push(decode_op(&mut input, opcode, header.max));
    }
    (header, ops)
}

/// The header: three bytes (boot, maximum, flags), zero past the end.
fn decode_header(input: &mut Input<'_>) -> Header {
    let boot = 1 + u32::from(input.byte() % 64);
    let max_byte = input.byte();
    let max = if max_byte == 0xFF { MAX_PROCESSORS } else { (boot + u32::from(max_byte % 128)).min(MAX_PROCESSORS) };
    let flags = input.byte();
    Header {
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
    }
}

/// One operation: `opcode` and the argument bytes it takes from `input`.
/// `max` is the machine's maximum (indices run a little past it).
fn decode_op(input: &mut Input<'_>, opcode: u8, max: u32) -> Op {
    match opcode % 10 {
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
    }
}

/// Encodes a header and operations so that [`decode`] gives them back (for
/// writing seed inputs). Values the byte format cannot express are encoded
/// as the nearest it can (e.g. `boot > 64`, a maximum that is neither 2048 nor
/// within 127 of `boot`, a veto status outside the status table).
#[must_use]
pub fn encode(header: Header, ops: &[Op]) -> Vec<u8> {
    #[allow(clippy::cast_possible_truncation)]
    let mut bytes = std::vec![
        ((header.boot.clamp(1, 64) - 1) % 64) as u8,
        if header.max >= MAX_PROCESSORS { 0xFF } else { (header.max.saturating_sub(header.boot).min(127)) as u8 },
        u8::from(header.other_before)
            | u8::from(header.other_after) << 1
            | match header.reported_max {
                Reported::Max => 0,
                Reported::Half => 4,
                Reported::Huge => 8,
            }
            | u8::from(!header.dynamic_partitioning) << 4,
    ];
    let failing_byte = |wanted: NtStatus| (0..128).find(|&b| failing(b) == wanted).unwrap_or(1);
    for op in ops {
        match *op {
            Op::Inject(change) => {
                bytes.push(1);
                let location = u32::from(change.proc_number.group) << 16 | u32::from(change.proc_number.number);
                for word in [change.state, change.nt_number, change.status.bits(), location] {
                    bytes.extend_from_slice(&word.to_le_bytes());
                }
            }
            Op::HotAdd(fault) => match fault {
                AddFault::None => bytes.push(2),
                AddFault::Veto { after, status } => {
                    bytes.extend([3, u8::from(after) | failing_byte(status).wrapping_shl(1)]);
                }
                AddFault::StartFailure(status) => bytes.extend([4, failing_byte(status)]),
                #[allow(clippy::cast_possible_truncation)]
                AddFault::Alloc(n) => bytes.extend([5, (n.clamp(1, 3) - 1) as u8]),
                AddFault::PayloadInit => bytes.extend([6, 0]),
                AddFault::Prepare => bytes.extend([6, 1]),
            },
            Op::Read(processor) => {
                bytes.extend([7, 0xFF]);
                bytes.extend_from_slice(&processor.to_le_bytes());
            }
            Op::ReadAll => bytes.push(8),
            Op::Toggle => bytes.extend([9, 0]),
            Op::Reload(LoadFault::None) => bytes.extend([9, 1]),
            #[allow(clippy::cast_possible_truncation)]
            Op::Reload(LoadFault::Alloc(n)) => bytes.extend([9, 2, (n.clamp(1, 8) - 1) as u8]),
            #[allow(clippy::cast_possible_truncation)]
            Op::Reload(LoadFault::PayloadInit(k)) => bytes.extend([9, 3, k.min(255) as u8]),
            Op::Reload(LoadFault::Register) => bytes.extend([9, 4]),
        }
    }
    bytes
}
