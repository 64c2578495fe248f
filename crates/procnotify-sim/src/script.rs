//! A byte-driven script of notifications, hot-adds, reads and reloads, run
//! against the real engine in the simulator and checked, after every step,
//! against a small reference model.
//!
//! One decoder serves both the cargo-fuzz target (`fuzz/fuzz_targets/notifications.rs`)
//! and the corpus replay test (`tests/fuzz_corpus.rs`), so a seed that passes
//! one passes the other.
//!
//! # Byte format
//!
//! Three header bytes, then one operation per opcode byte until the input
//! runs out (a truncated operation reads zeros):
//!
//! | byte | meaning |
//! |---|---|
//! | `h0` | boot processors: `1 + h0 % 64` |
//! | `h1` | maximum: `boot + h1 % 128`, or 2048 when `h1 == 0xFF` |
//! | `h2` | bit 0: another driver registered *before* procnotify; bit 1: one registered *after* it; bit 2: the kernel reports half the maximum; bit 3: it reports `u32::MAX`; bit 4: no dynamic partitioning |
//!
//! | opcode `% 10` | operation and its argument bytes |
//! |---|---|
//! | 0 | inject a notification: `state`, `index`, `status`, `proc_number` bytes (small values, see [`decode`]) |
//! | 1 | inject a raw notification: four little-endian `u32`s: state, index, status, `group << 16 \| number` |
//! | 2 | hot-add |
//! | 3 | hot-add, another driver vetoes `AddStart`: `b` (bit 0: the driver after procnotify; the rest: the status) |
//! | 4 | hot-add, the HAL fails to start the processor: status byte |
//! | 5 | hot-add, the `1 + b % 3`-th allocation attempt of the hot-add fails |
//! | 6 | hot-add, `b` odd: the kernel fails to prepare; even: the next payload initialisation fails |
//! | 7 | read on processor `b % (max + 2)` (`b == 0xFF`: a raw `u32` processor follows) |
//! | 8 | read on every running processor |
//! | 9 | `b % 5`: 0 unload (or load when unloaded), 1 reload, 2 reload with allocation attempt `1 + c % 8` failing, 3 reload with the payload of processor `c` failing, 4 reload with the registration failing in the kernel |
//!
//! # What is checked after each step
//!
//! The status each caller saw (the hot-add result, every registration's
//! `*OperationStatus` for an injected notification, the load result); every
//! slot of the table (allocated or not, state, location, counters, visits,
//! payload) against the model; the driver's statistics and recorded status;
//! the pool (live allocations = the context plus the model's segments, no
//! double or foreign free, no callback or DPC after free); live payloads; the
//! processor count. After the last step the driver unloads and nothing may
//! stay allocated.

use core::fmt::Write as _;
use std::boxed::Box;
use std::collections::{BTreeSet, VecDeque};
use std::format;
use std::string::String;
use std::sync::Arc;

use parking_lot::Mutex;
use std::vec::Vec;

use super::{Config, Handle, HotAdd, NotifyContext, Refusal, SimKernel, SimOs};
use crate::driver::Driver;
use crate::notify::{Anomaly, Kind, Outcome};
use crate::os::{GROUP_SIZE, MAX_PROCESSORS, NtStatus, ProcNumber};
use crate::table::{SEGMENTS, SlotState};

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

    fn config(self) -> Config {
        let mut config = Config::new(self.boot, self.max);
        config.reported_max = match self.reported_max {
            Reported::Max => config.max,
            Reported::Half => (config.max / 2).max(1),
            Reported::Huge => u32::MAX,
        };
        config.dynamic_partitioning = self.dynamic_partitioning;
        config
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

/// What a script did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Operations run.
    pub steps: u32,
    /// Notifications procnotify's callback received, over all loads.
    pub notifications: u64,
    /// Hot-adds attempted.
    pub hot_adds: u32,
    /// Loads attempted (the first included).
    pub loads: u32,
    /// Loads that failed.
    pub failed_loads: u32,
    /// Read-path runs.
    pub reads: u32,
    /// Faults injected (vetoes, start, allocation, payload, prepare failures).
    pub faults: u32,
}

// ---------------------------------------------------------------- decoding

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

// ---------------------------------------------------------------- the model

fn segment_of(index: u32) -> usize {
    (u32::BITS - index.leading_zeros()) as usize
}

fn segment_start(segment: usize) -> u32 {
    if segment == 0 { 0 } else { 1 << (segment - 1) }
}

fn segment_span(segment: usize) -> u32 {
    if segment == 0 { 1 } else { 1 << (segment - 1) }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ModelSlot {
    state: SlotState,
    location: ProcNumber,
    starts: u32,
    completes: u32,
    failures: u32,
    visits: u64,
    payload: bool,
}

const VACANT: ModelSlot = ModelSlot {
    state: SlotState::Vacant,
    location: ProcNumber { group: 0, number: 0 },
    starts: 0,
    completes: 0,
    failures: 0,
    visits: 0,
    payload: false,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reg {
    Before,
    Procnotify,
    After,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ModelStats {
    notifications: u32,
    vetoes: u32,
    anomalies: u32,
    missed_visits: u32,
}

/// The reference model: the kernel's counters and fault plans, and the
/// driver's table as the semantics note says it must be.
struct Model {
    config: Config,
    capacity: u32,
    count: u32,
    regs: Vec<Reg>,
    loaded: bool,
    segments: [bool; SEGMENTS],
    slots: Vec<ModelSlot>,
    stats: ModelStats,
    recorded: Option<NtStatus>,
    /// Kernel-lifetime payload initialisation attempts and planned failures.
    payload_attempts: u64,
    payload_failures: BTreeSet<u64>,
    prepare_failures: u32,
    start_failures: VecDeque<NtStatus>,
    register_failures: u32,
    /// Per-operation: armed vetoes of the other drivers, allocation plan.
    armed: [Option<NtStatus>; 2],
    alloc_fail_at: Option<u32>,
    op_attempts: u32,
    /// Slots the current step touched (checked after every step; the whole
    /// table is checked every [`FULL_CHECK_EVERY`] steps and at reloads).
    touched: Vec<u32>,
}

/// Steps between two comparisons of the whole table with the model.
const FULL_CHECK_EVERY: u32 = 64;

impl Model {
    fn new(config: Config) -> Self {
        let capacity = config.reported_max.clamp(1, MAX_PROCESSORS);
        Self {
            config,
            capacity,
            count: config.boot,
            regs: Vec::new(),
            loaded: false,
            segments: [false; SEGMENTS],
            slots: std::vec![VACANT; capacity as usize],
            stats: ModelStats::default(),
            recorded: None,
            payload_attempts: 0,
            payload_failures: BTreeSet::new(),
            prepare_failures: 0,
            start_failures: VecDeque::new(),
            register_failures: 0,
            armed: [None; 2],
            alloc_fail_at: None,
            op_attempts: 0,
            touched: Vec::new(),
        }
    }

    fn reset_driver(&mut self) {
        self.loaded = false;
        self.regs.retain(|reg| *reg != Reg::Procnotify);
        self.segments = [false; SEGMENTS];
        self.slots.fill(VACANT);
        self.stats = ModelStats::default();
        self.recorded = None;
    }

    fn segment_len(&self, segment: usize) -> u32 {
        segment_span(segment).min(self.capacity.saturating_sub(segment_start(segment)))
    }

    fn allocate(&mut self) -> bool {
        self.op_attempts += 1;
        self.alloc_fail_at != Some(self.op_attempts)
    }

    fn has_slot(&self, index: u32) -> bool {
        index < self.capacity && self.segments[segment_of(index)]
    }

    fn ensure(&mut self, index: u32) -> Result<(), NtStatus> {
        let segment = segment_of(index);
        if !self.segments[segment] {
            if !self.allocate() {
                return Err(NtStatus::INSUFFICIENT_RESOURCES);
            }
            self.segments[segment] = true;
        }
        Ok(())
    }

    fn prepare(&mut self, index: u32, location: ProcNumber) -> Result<(), NtStatus> {
        let slot = &mut self.slots[index as usize];
        slot.location = location;
        if !slot.payload {
            self.payload_attempts += 1;
            if self.payload_failures.remove(&self.payload_attempts) {
                return Err(NtStatus::INSUFFICIENT_RESOURCES);
            }
            slot.payload = true;
        }
        Ok(())
    }

    fn outcome(&mut self, change: NotifyContext) -> Outcome {
        let Some(kind) = Kind::from_raw(change.state) else {
            return Outcome::Ignored(Anomaly::UnknownState(change.state));
        };
        let index = change.nt_number;
        if index >= self.capacity {
            return match kind {
                Kind::AddStart => Outcome::Vetoed(NtStatus::INVALID_PARAMETER),
                Kind::AddComplete | Kind::AddFailure => Outcome::Ignored(Anomaly::IndexOutOfRange),
            };
        }
        let i = index as usize;
        self.touched.push(index);
        match kind {
            Kind::AddStart => {
                if let Err(status) = self.ensure(index) {
                    return Outcome::Vetoed(status);
                }
                self.slots[i].starts += 1;
                let previous = self.slots[i].state;
                if previous == SlotState::Online {
                    return Outcome::Ignored(Anomaly::AlreadyOnline);
                }
                if let Err(status) = self.prepare(index, change.proc_number) {
                    self.slots[i].state = SlotState::Vacant;
                    return Outcome::Vetoed(status);
                }
                self.slots[i].state = SlotState::Starting;
                if previous == SlotState::Starting { Outcome::Restarted } else { Outcome::Started }
            }
            Kind::AddComplete => {
                if let Err(status) = self.ensure(index) {
                    return Outcome::Ignored(Anomaly::AdoptFailed(status));
                }
                self.slots[i].completes += 1;
                match self.slots[i].state {
                    SlotState::Online => Outcome::Ignored(Anomaly::AlreadyOnline),
                    SlotState::Starting => {
                        self.slots[i].state = SlotState::Online;
                        Outcome::Online
                    }
                    SlotState::Vacant => match self.prepare(index, change.proc_number) {
                        Ok(()) => {
                            self.slots[i].state = SlotState::Online;
                            Outcome::Adopted
                        }
                        Err(status) => Outcome::Ignored(Anomaly::AdoptFailed(status)),
                    },
                }
            }
            Kind::AddFailure => {
                if !self.segments[segment_of(index)] {
                    return Outcome::Ignored(Anomaly::NotStarting);
                }
                self.slots[i].failures += 1;
                match self.slots[i].state {
                    SlotState::Starting => {
                        self.slots[i].state = SlotState::Vacant;
                        Outcome::Reverted
                    }
                    SlotState::Vacant => Outcome::Ignored(Anomaly::NotStarting),
                    SlotState::Online => Outcome::Ignored(Anomaly::AlreadyOnline),
                }
            }
        }
    }

    /// procnotify's callback: the veto it writes, if any.
    fn callback(&mut self, change: NotifyContext) -> Option<NtStatus> {
        self.stats.notifications += 1;
        let outcome = self.outcome(change);
        if outcome.brought_online() {
            // The kick: a DPC targeted by the slot's group and number.
            let location = self.slots[change.nt_number as usize].location;
            let target = u32::from(location.group) * GROUP_SIZE + u32::from(location.number);
            if u32::from(location.number) < GROUP_SIZE && target < self.config.max {
                self.visit(target);
            }
        }
        match outcome {
            Outcome::Vetoed(status) => {
                self.stats.vetoes += 1;
                self.recorded.get_or_insert(status);
            }
            Outcome::Ignored(Anomaly::NotStarting) => {}
            Outcome::Ignored(_) | Outcome::Adopted | Outcome::Restarted => self.stats.anomalies += 1,
            Outcome::Started | Outcome::Online | Outcome::Reverted => {}
        }
        outcome.veto()
    }

    /// The read path on `processor`.
    fn visit(&mut self, processor: u32) {
        if self.has_slot(processor) {
            self.touched.push(processor);
            self.slots[processor as usize].visits += 1;
        } else {
            self.stats.missed_visits += 1;
        }
    }

    /// Every registration's `*OperationStatus` for an injected notification.
    fn inject(&mut self, change: NotifyContext) -> Vec<NtStatus> {
        let regs = self.regs.clone();
        regs.into_iter()
            .map(|reg| match reg {
                Reg::Procnotify => self.callback(change).unwrap_or(NtStatus::SUCCESS),
                Reg::Before | Reg::After => NtStatus::SUCCESS,
            })
            .collect()
    }

    fn hot_add(&mut self) -> HotAdd {
        if !self.config.dynamic_partitioning {
            return HotAdd::Refused(Refusal::NotSupported);
        }
        if self.count >= self.config.max {
            return HotAdd::Refused(Refusal::AtMaximum);
        }
        if self.prepare_failures > 0 {
            self.prepare_failures -= 1;
            return HotAdd::Refused(Refusal::PrepareFailed);
        }
        let index = self.count;
        let start = NotifyContext {
            state: Kind::ADD_START,
            nt_number: index,
            status: NtStatus::SUCCESS,
            proc_number: ProcNumber::dense(index),
        };
        let mut failure = None;
        for reg in self.regs.clone() {
            let status = match reg {
                Reg::Procnotify => self.callback(start),
                Reg::Before => self.armed[0],
                Reg::After => self.armed[1],
            };
            if let Some(status) = status.filter(|status| status.is_failure()) {
                failure = Some(status);
                break;
            }
        }
        if failure.is_none() {
            match self.start_failures.pop_front() {
                Some(status) => failure = Some(status),
                None => self.count += 1,
            }
        }
        let (state, status) = match failure {
            None => (Kind::ADD_COMPLETE, NtStatus::SUCCESS),
            Some(status) => (Kind::ADD_FAILURE, status),
        };
        if self.regs.contains(&Reg::Procnotify) {
            self.callback(NotifyContext { state, status, ..start });
        }
        match failure {
            None => HotAdd::Added(index),
            Some(status) => HotAdd::Failed { index, status },
        }
    }

    /// `Driver::load`: the status it returns on failure.
    fn load(&mut self) -> Result<(), NtStatus> {
        self.reset_driver();
        if !self.allocate() {
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        }
        if self.register_failures > 0 {
            self.register_failures -= 1;
            return Err(NtStatus::UNSUCCESSFUL);
        }
        self.regs.push(Reg::Procnotify);
        let change = |state, index| NotifyContext {
            state,
            nt_number: index,
            status: NtStatus::SUCCESS,
            proc_number: ProcNumber::dense(index),
        };
        for index in 0..self.count {
            if let Some(status) = self.callback(change(Kind::ADD_START, index)) {
                for earlier in 0..index {
                    self.callback(NotifyContext { status, ..change(Kind::ADD_FAILURE, earlier) });
                }
                let recorded = self.recorded.unwrap_or(NtStatus::UNSUCCESSFUL);
                self.reset_driver();
                return Err(recorded);
            }
        }
        for index in 0..self.count {
            self.callback(change(Kind::ADD_COMPLETE, index));
        }
        self.loaded = true;
        Ok(())
    }

    fn live_allocations(&self) -> usize {
        if self.loaded { 1 + self.segments.iter().filter(|&&allocated| allocated).count() } else { 0 }
    }

    fn live_payloads(&self) -> i64 {
        let live = if self.loaded { self.slots.iter().filter(|slot| slot.payload).count() } else { 0 };
        i64::try_from(live).unwrap_or(i64::MAX)
    }
}

// ---------------------------------------------------------------- the runner

type Plan = Arc<Mutex<Option<NtStatus>>>;

struct Harness {
    kernel: SimKernel,
    driver: Option<Driver<SimOs>>,
    model: Model,
    /// The other drivers: before, after.
    others: [Option<(Handle, Plan)>; 2],
    want_after: bool,
    summary: Summary,
    trace: Vec<String>,
}

fn other_driver(kernel: &SimKernel) -> (Handle, Plan) {
    let plan: Plan = Arc::default();
    let theirs = Arc::clone(&plan);
    let handle = kernel.register_other_driver(Box::new(move |change| {
        let armed = *theirs.lock();
        match armed {
            Some(status) if change.state == Kind::ADD_START => status,
            _ => NtStatus::SUCCESS,
        }
    }));
    (handle, plan)
}

fn set_plan(plan: &Plan, status: Option<NtStatus>) {
    *plan.lock() = status;
}

impl Harness {
    fn new(header: Header) -> Self {
        let config = header.config();
        let kernel = SimKernel::boot(config);
        let mut harness = Self {
            kernel,
            driver: None,
            model: Model::new(config),
            others: [None, None],
            want_after: header.other_after,
            summary: Summary::default(),
            trace: Vec::new(),
        };
        if header.other_before {
            harness.others[0] = Some(other_driver(&harness.kernel));
            harness.model.regs.push(Reg::Before);
        }
        harness
    }

    fn fail(&self, what: &str) -> String {
        let start = self.trace.len().saturating_sub(12);
        let mut message = format!("step {}: {what}\nlast operations:\n", self.trace.len());
        for (n, line) in self.trace.iter().enumerate().skip(start) {
            let _ = writeln!(message, "  {}: {line}", n + 1);
        }
        message
    }

    #[allow(clippy::needless_pass_by_value)] // called with tuples built in place
    fn expect<T: PartialEq + core::fmt::Debug>(&self, what: &str, actual: T, expected: T) -> Result<(), String> {
        if actual == expected {
            Ok(())
        } else {
            Err(self.fail(&format!("{what}: got {actual:?}, model says {expected:?}")))
        }
    }

    /// Arms the pool for this operation's n-th allocation attempt.
    fn plan_alloc(&mut self, nth: Option<u32>) {
        self.model.op_attempts = 0;
        self.model.alloc_fail_at = nth;
        if let Some(nth) = nth {
            let attempts = self.kernel.pool().stats().attempts;
            self.kernel.pool().fail_attempt(attempts + u64::from(nth));
            self.summary.faults += 1;
        }
    }

    fn end_op(&mut self) {
        self.kernel.pool().clear_faults();
        self.model.alloc_fail_at = None;
        self.model.armed = [None; 2];
        for (_, plan) in self.others.iter().flatten() {
            set_plan(plan, None);
        }
        // Every DPC queued by this step has run: visits are deterministic.
        self.kernel.flush_dpcs();
    }

    fn load(&mut self, fault: LoadFault) -> Result<(), String> {
        self.summary.loads += 1;
        let mut nth = None;
        match fault {
            LoadFault::None => {}
            LoadFault::Alloc(n) => nth = Some(n),
            LoadFault::PayloadInit(k) => {
                let ordinal = self.model.payload_attempts + 1 + u64::from(k);
                self.kernel.fail_payload_init(ordinal);
                self.model.payload_failures.insert(ordinal);
                self.summary.faults += 1;
            }
            LoadFault::Register => {
                self.kernel.fail_next_register();
                self.model.register_failures += 1;
                self.summary.faults += 1;
            }
        }
        self.plan_alloc(nth);
        let expected = self.model.load();
        let actual = Driver::load(SimOs::new(&self.kernel));
        let actual = match actual {
            Ok(driver) => {
                self.driver = Some(driver);
                Ok(())
            }
            Err(status) => {
                self.summary.failed_loads += 1;
                Err(status)
            }
        };
        self.expect("load result", actual, expected)?;
        // The driver "after" procnotify registers once procnotify first loaded.
        if self.model.loaded && self.others[1].is_none() && self.want_after {
            self.others[1] = Some(other_driver(&self.kernel));
            self.model.regs.push(Reg::After);
        }
        Ok(())
    }

    fn unload(&mut self) {
        if let Some(driver) = self.driver.take() {
            self.summary.notifications += u64::from(driver.context().stats().notifications);
            driver.unload();
        }
        self.model.reset_driver();
    }

    fn step(&mut self, op: Op) -> Result<(), String> {
        self.trace.push(format!("{op:?}"));
        self.summary.steps += 1;
        self.model.touched.clear();
        match op {
            Op::Inject(change) => {
                self.plan_alloc(None);
                let expected = self.model.inject(change);
                let actual = self.kernel.inject(change);
                self.expect("injected notification's OperationStatus per registration", actual, expected)?;
            }
            Op::HotAdd(fault) => {
                self.summary.hot_adds += 1;
                let mut nth = None;
                match fault {
                    AddFault::None => {}
                    AddFault::Veto { after, status } => {
                        let which = usize::from(after);
                        if let Some((_, plan)) = &self.others[which] {
                            set_plan(plan, Some(status));
                            self.model.armed[which] = Some(status);
                            self.summary.faults += 1;
                        }
                    }
                    AddFault::StartFailure(status) => {
                        self.kernel.fail_next_start(status);
                        self.model.start_failures.push_back(status);
                        self.summary.faults += 1;
                    }
                    AddFault::Alloc(n) => nth = Some(n),
                    AddFault::PayloadInit => {
                        let ordinal = self.model.payload_attempts + 1;
                        self.kernel.fail_payload_init(ordinal);
                        self.model.payload_failures.insert(ordinal);
                        self.summary.faults += 1;
                    }
                    AddFault::Prepare => {
                        self.kernel.fail_next_prepare();
                        self.model.prepare_failures += 1;
                        self.summary.faults += 1;
                    }
                }
                self.plan_alloc(nth);
                let expected = self.model.hot_add();
                let actual = self.kernel.hot_add();
                self.expect("hot-add result", actual, expected)?;
            }
            Op::Read(processor) => {
                if let Some(driver) = &self.driver {
                    self.summary.reads += 1;
                    let context = driver.context();
                    SimKernel::run_on(processor, || context.visit_current());
                    self.model.visit(processor);
                    let found = context.table().get(processor).map(crate::table::Slot::index);
                    let expected = self.model.has_slot(processor).then_some(processor);
                    self.expect("Table::get(processor).index()", found, expected)?;
                }
            }
            Op::ReadAll => {
                if let Some(driver) = &self.driver {
                    let context = driver.context();
                    for processor in 0..self.model.count {
                        SimKernel::run_on(processor, || context.visit_current());
                        self.model.visit(processor);
                        self.summary.reads += 1;
                    }
                }
            }
            Op::Toggle => {
                if self.driver.is_some() {
                    self.unload();
                } else {
                    self.load(LoadFault::None)?;
                }
            }
            Op::Reload(fault) => {
                self.unload();
                self.check(true)?;
                self.load(fault)?;
            }
        }
        self.end_op();
        let full = matches!(op, Op::Toggle | Op::Reload(_)) || self.summary.steps.is_multiple_of(FULL_CHECK_EVERY);
        self.check(full)
    }

    fn slot_matches(&self, index: u32, slot: &crate::table::Slot<super::SimDpc>) -> Result<(), String> {
        let expected = self.model.slots[index as usize];
        let snapshot = slot.snapshot();
        let actual = ModelSlot {
            state: snapshot.state,
            location: snapshot.proc_number,
            starts: snapshot.starts,
            completes: snapshot.completes,
            failures: snapshot.failures,
            visits: snapshot.visits,
            payload: slot.payload().is_some(),
        };
        if (snapshot.index, actual) != (index, expected) {
            self.expect(&format!("slot {index}"), (snapshot.index, actual), (index, expected))?;
        }
        if let Some(payload) = slot.payload()
            && payload.index() != index
        {
            self.expect(&format!("slot {index} payload index"), payload.index(), index)?;
        }
        if snapshot.state != SlotState::Vacant && slot.payload().is_none() {
            return Err(self.fail(&format!("slot {index} is {:?} without a payload", snapshot.state)));
        }
        Ok(())
    }

    /// Compares everything observable with the model.
    fn check(&self, full: bool) -> Result<(), String> {
        let violations = self.kernel.violations();
        if !violations.is_empty() {
            return Err(self.fail(&format!("pool / kernel violations: {violations:?}")));
        }
        let pool = self.kernel.pool().stats();
        self.expect("live allocations", pool.live, self.model.live_allocations())?;
        self.expect("live payloads", self.kernel.payloads_live(), self.model.live_payloads())?;
        self.expect("processor count", self.kernel.processor_count(), self.model.count)?;
        self.expect("loaded", self.driver.is_some(), self.model.loaded)?;
        let Some(driver) = &self.driver else { return Ok(()) };
        let context = driver.context();
        let table = context.table();
        self.expect("capacity", table.capacity(), self.model.capacity)?;
        let stats = context.stats();
        let model = &self.model.stats;
        self.expect(
            "stats (notifications, vetoes, anomalies, missed visits)",
            (stats.notifications, stats.vetoes, stats.anomalies, stats.missed_visits),
            (model.notifications, model.vetoes, model.anomalies, model.missed_visits),
        )?;
        self.expect("recorded status", context.recorded_status(), self.model.recorded)?;
        if !full {
            for &index in &self.model.touched {
                match table.get(index) {
                    Some(slot) => self.slot_matches(index, slot)?,
                    None if !self.model.has_slot(index) => {}
                    None => return Err(self.fail(&format!("slot {index} missing from an allocated segment"))),
                }
                if table.get(index).is_some() && !self.model.has_slot(index) {
                    return Err(self.fail(&format!("slot {index} exists; the model allocated no segment for it")));
                }
            }
            return Ok(());
        }
        for segment in 0..SEGMENTS {
            let start = segment_start(segment);
            if start >= self.model.capacity {
                break;
            }
            let allocated = self.model.segments[segment];
            if !allocated {
                self.expect("slot allocated", table.get(start).is_some(), false)?;
                continue;
            }
            for index in start..start + self.model.segment_len(segment) {
                let Some(slot) = table.get(index) else {
                    return Err(self.fail(&format!("slot {index} missing from an allocated segment")));
                };
                self.slot_matches(index, slot)?;
            }
        }
        for index in [self.model.capacity, self.model.capacity + 1, u32::MAX] {
            self.expect("Table::get past capacity", table.get(index).is_some(), false)?;
        }
        Ok(())
    }
}

/// Decodes `bytes` (see the [module documentation](self)) and runs them.
///
/// # Errors
///
/// A description of the first step where the engine and the model disagree,
/// or where memory was leaked, freed twice or used after free.
pub fn run(bytes: &[u8]) -> Result<Summary, String> {
    let (header, ops) = decode(bytes);
    run_ops(header, &ops)
}

/// Runs `ops` on the machine `header` describes, checking after each step.
///
/// # Errors
///
/// As [`run`].
pub fn run_ops(header: Header, ops: &[Op]) -> Result<Summary, String> {
    let mut harness = Harness::new(header);
    harness.trace.push(format!("{header:?}; load"));
    harness.load(LoadFault::None)?;
    harness.end_op();
    harness.check(true)?;
    for &op in ops {
        harness.step(op)?;
    }
    harness.unload();
    for (handle, _) in harness.others.iter_mut().filter_map(Option::take) {
        harness.kernel.deregister(handle);
    }
    harness.trace.push(String::from("final unload"));
    harness.check(true)?;
    let pool = harness.kernel.pool().stats();
    if pool.live != 0 || pool.bytes_live != 0 {
        return Err(harness.fail(&format!("after the final unload: {pool:?}")));
    }
    if harness.kernel.payloads_live() != 0 {
        return Err(harness.fail("payloads live after the final unload"));
    }
    Ok(harness.summary)
}
