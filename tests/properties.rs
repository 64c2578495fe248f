//! Property tests: random sequences of notifications (any state, any index,
//! any status) and hot-adds (with vetoes, HAL failures and allocation
//! failures) drive the real driver through the simulator; after every step the
//! table must equal a small reference model written independently of
//! `notify.rs`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::assert_clean;
use procnotify::sim::{Config, HotAdd, NotifyContext, SimKernel, SimOs};
use procnotify::{Driver, NtStatus, ProcNumber, SlotState};
use proptest::prelude::*;

const ACCESS_DENIED: NtStatus = NtStatus::from_bits(0xC000_0022);

#[derive(Clone, Copy, Debug)]
enum Fault {
    None,
    /// Another driver (called before procnotify) vetoes AddStart.
    Veto,
    /// The HAL fails to start the processor.
    HalFailure,
    /// procnotify's next allocation fails.
    Allocation,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// A raw notification straight from the (possibly buggy) kernel.
    Inject {
        state: u32,
        index: u32,
        failing_status: bool,
        allocation_fails: bool,
    },
    HotAdd(Fault),
}

fn op(capacity: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        (0_u32..5, 0..capacity + 3, any::<bool>(), prop::bool::weighted(0.15)).prop_map(
            |(state, index, failing_status, allocation_fails)| Op::Inject {
                state,
                index,
                failing_status,
                allocation_fails
            }
        ),
        prop_oneof![
            4 => Just(Fault::None),
            1 => Just(Fault::Veto),
            1 => Just(Fault::HalFailure),
            1 => Just(Fault::Allocation),
        ]
        .prop_map(Op::HotAdd),
    ]
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Vacant,
    Starting,
    Online,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ModelSlot {
    state: State,
    starts: u32,
    completes: u32,
    failures: u32,
}

/// The reference: one entry per index; a slot exists once its segment was
/// allocated (segments: {0}, {1}, {2,3}, {4..7}, ...).
struct Model {
    capacity: u32,
    slots: Vec<Option<ModelSlot>>,
    present: u32,
}

fn segment(index: u32) -> u32 {
    32 - index.leading_zeros()
}

impl Model {
    fn new(capacity: u32, boot: u32) -> Self {
        let mut model = Self { capacity, slots: vec![None; capacity as usize], present: boot };
        for index in 0..boot {
            model.notify(0, index, false);
        }
        for index in 0..boot {
            model.notify(1, index, false);
        }
        model
    }

    /// Allocates `index`'s segment unless the allocation fails.
    fn grow(&mut self, index: u32, allocation_fails: bool) -> bool {
        if self.slots[index as usize].is_some() {
            return true;
        }
        if allocation_fails {
            return false;
        }
        for other in 0..self.capacity {
            if segment(other) == segment(index) {
                self.slots[other as usize] = Some(ModelSlot::default());
            }
        }
        true
    }

    /// Returns the veto, if any.
    fn notify(&mut self, state: u32, index: u32, allocation_fails: bool) -> Option<NtStatus> {
        if state > 2 {
            return None;
        }
        if index >= self.capacity {
            return (state == 0).then_some(NtStatus::INVALID_PARAMETER);
        }
        match state {
            0 => {
                if !self.grow(index, allocation_fails) {
                    return Some(NtStatus::INSUFFICIENT_RESOURCES);
                }
                let slot = self.slots[index as usize].as_mut().unwrap();
                slot.starts += 1;
                if slot.state != State::Online {
                    slot.state = State::Starting;
                }
                None
            }
            1 => {
                if self.grow(index, allocation_fails) {
                    let slot = self.slots[index as usize].as_mut().unwrap();
                    slot.completes += 1;
                    slot.state = State::Online;
                }
                None
            }
            _ => {
                if let Some(slot) = self.slots[index as usize].as_mut() {
                    slot.failures += 1;
                    if slot.state == State::Starting {
                        slot.state = State::Vacant;
                    }
                }
                None
            }
        }
    }

    /// The kernel's hot-add as the semantics note orders it, with procnotify
    /// called after one other driver.
    fn hot_add(&mut self, fault: Fault, max: u32) -> HotAdd {
        if self.present >= max {
            return HotAdd::Refused(procnotify::sim::Refusal::AtMaximum);
        }
        let index = self.present;
        let failure = match fault {
            Fault::Veto => Some(ACCESS_DENIED),
            Fault::Allocation => self.notify(0, index, true),
            Fault::None | Fault::HalFailure => self.notify(0, index, false),
        };
        let failure = failure.or(matches!(fault, Fault::HalFailure).then_some(NtStatus::UNSUCCESSFUL));
        match failure {
            Some(status) => {
                self.notify(2, index, false);
                HotAdd::Failed { index, status }
            }
            None => {
                self.present += 1;
                self.notify(1, index, false);
                HotAdd::Added(index)
            }
        }
    }
}

fn check(driver: &Driver<SimOs>, model: &Model) -> Result<(), TestCaseError> {
    let table = driver.context().table();
    let mut highest = 0;
    for index in 0..model.capacity {
        let real = table.get(index).map(procnotify::Slot::snapshot);
        let expected = model.slots[index as usize];
        prop_assert_eq!(real.is_some(), expected.is_some(), "slot {} existence", index);
        if let (Some(real), Some(expected)) = (real, expected) {
            highest = index + 1;
            let state = match real.state {
                SlotState::Vacant => State::Vacant,
                SlotState::Starting => State::Starting,
                SlotState::Online => State::Online,
            };
            prop_assert_eq!(
                (state, real.starts, real.completes, real.failures),
                (expected.state, expected.starts, expected.completes, expected.failures),
                "slot {}",
                index
            );
            if state != State::Vacant {
                prop_assert_eq!(real.proc_number, ProcNumber::dense(index));
            }
        }
    }
    // Memory follows use: never more than twice the highest slot in use.
    prop_assert!(table.allocated_slots() <= (2 * highest).max(1));
    Ok(())
}

fn run(capacity: u32, boot: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    let kernel = SimKernel::boot(Config::new(boot, capacity));
    let veto = Arc::new(AtomicBool::new(false));
    let armed = Arc::clone(&veto);
    let other = kernel.register_other_driver(Box::new(move |change| {
        if change.state == 0 && armed.swap(false, Ordering::Relaxed) { ACCESS_DENIED } else { NtStatus::SUCCESS }
    }));
    let driver = Driver::load(SimOs::new(&kernel)).expect("load");
    let mut model = Model::new(capacity, boot);
    check(&driver, &model)?;
    for op in ops {
        match *op {
            Op::Inject { state, index, failing_status, allocation_fails } => {
                let status = if failing_status { NtStatus::UNSUCCESSFUL } else { NtStatus::SUCCESS };
                let proc_number = ProcNumber::dense(index);
                if allocation_fails {
                    kernel.pool().fail_next();
                }
                // procnotify is the second registration; the other driver
                // never vetoes injected notifications (it is not armed).
                let results = kernel.inject(NotifyContext { state, nt_number: index, status, proc_number });
                kernel.pool().clear_faults();
                let expected = model.notify(state, index, allocation_fails);
                prop_assert_eq!(results[1], expected.unwrap_or(NtStatus::SUCCESS), "{:?}", op);
            }
            Op::HotAdd(fault) => {
                match fault {
                    Fault::Veto => veto.store(true, Ordering::Relaxed),
                    Fault::HalFailure => kernel.fail_next_start(NtStatus::UNSUCCESSFUL),
                    Fault::Allocation => kernel.pool().fail_next(),
                    Fault::None => {}
                }
                let real = kernel.hot_add();
                // Faults that this add did not consume must not leak into the next.
                kernel.pool().clear_faults();
                kernel.clear_faults();
                veto.store(false, Ordering::Relaxed);
                let expected = model.hot_add(fault, capacity);
                prop_assert_eq!(real, expected, "{:?}", op);
            }
        }
        check(&driver, &model)?;
    }
    driver.unload();
    kernel.deregister(other);
    kernel.flush_dpcs();
    assert_clean(&kernel);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn table_matches_the_reference_model(
        (capacity, boot, ops) in (1_u32..40).prop_flat_map(|capacity| {
            (Just(capacity), 1..=capacity, prop::collection::vec(op(capacity), 0..60))
        })
    ) {
        run(capacity, boot, &ops)?;
    }
}
