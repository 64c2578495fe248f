//! Property tests: random sequences of notifications (any state, any index,
//! any status), hot-adds with every kind of fault, reads on simulated
//! processors and reloads drive the real driver through the simulator. After
//! every step `procnotify_sim::script` compares the table, the statuses each
//! caller saw, the driver's counters and the pool with its reference model
//! (the same model the fuzz target uses); proptest shrinks a failure to a
//! minimal sequence.
//!
//! The same sequences also drive procnotify's `IOCTL_PROCNOTIFY_QUERY`: after
//! every step its reply, for output buffers of arbitrary length, must agree
//! with the model.
//!
//! Another property checks that procnotify's per-processor counters do not
//! depend on memory layout: the same notifications give the same counts
//! whether or not the table already holds storage around an index.

use procnotify_core::monitor::Counters;
use procnotify_core::{NotifyState, NtStatus, ProcNumber, SlotState};
use procnotify_sim::script::{AddFault, Header, LoadFault, Op, Reported, run_ops, run_ops_with_query};
use procnotify_sim::{Config, NotifyContext, SimKernel, SimOs};
use proptest::prelude::*;

fn status() -> impl Strategy<Value = NtStatus> {
    prop_oneof![
        Just(NtStatus::SUCCESS),
        Just(NtStatus::UNSUCCESSFUL),
        Just(NtStatus::INSUFFICIENT_RESOURCES),
        any::<u32>().prop_map(NtStatus::from_bits),
    ]
}

fn failing() -> impl Strategy<Value = NtStatus> {
    (0xC000_0001_u32..0xC000_0200).prop_map(NtStatus::from_bits)
}

/// A notification a (possibly buggy) kernel might deliver: known and unknown
/// states, indices inside, at and far past the maximum, any status.
fn notification(max: u32) -> impl Strategy<Value = NotifyContext> {
    let index = prop_oneof![8 => 0..max + 2, 1 => Just(u32::MAX), 1 => any::<u32>()];
    (prop_oneof![9 => 0_u32..3, 1 => any::<u32>()], index, status()).prop_map(|(state, nt_number, status)| {
        NotifyContext { state, nt_number, status, proc_number: ProcNumber::dense(nt_number) }
    })
}

fn add_fault() -> impl Strategy<Value = AddFault> {
    prop_oneof![
        6 => Just(AddFault::None),
        1 => (any::<bool>(), failing()).prop_map(|(after, status)| AddFault::Veto { after, status }),
        1 => failing().prop_map(AddFault::StartFailure),
        1 => (1_u32..4).prop_map(AddFault::Alloc),
        1 => Just(AddFault::PayloadInit),
        1 => Just(AddFault::Prepare),
    ]
}

fn load_fault(boot: u32) -> impl Strategy<Value = LoadFault> {
    prop_oneof![
        3 => Just(LoadFault::None),
        1 => (1_u32..9).prop_map(LoadFault::Alloc),
        1 => (0..boot).prop_map(LoadFault::PayloadInit),
        1 => Just(LoadFault::Register),
    ]
}

fn op(boot: u32, max: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => notification(max).prop_map(Op::Inject),
        6 => add_fault().prop_map(Op::HotAdd),
        2 => (0..max + 2).prop_map(Op::Read),
        1 => Just(Op::ReadAll),
        1 => Just(Op::Toggle),
        1 => load_fault(boot).prop_map(Op::Reload),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (1_u32..24, 0_u32..40, any::<bool>(), any::<bool>(), 0_u8..6, prop::bool::weighted(0.9)).prop_map(
        |(boot, extra, other_before, other_after, reported, dynamic_partitioning)| Header {
            boot,
            max: boot + extra,
            other_before,
            other_after,
            reported_max: match reported {
                0 => Reported::Half,
                1 => Reported::Huge,
                _ => Reported::Max,
            },
            dynamic_partitioning,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_driver_matches_the_reference_model(
        (header, ops) in header().prop_flat_map(|header| {
            (Just(header), prop::collection::vec(op(header.boot, header.max), 0..60))
        })
    ) {
        if let Err(failure) = run_ops(header, &ops) {
            return Err(TestCaseError::fail(failure));
        }
    }

    /// The same sequences with `IOCTL_PROCNOTIFY_QUERY` answered after every
    /// step into buffers of an arbitrary and of every boundary length, each
    /// reply checked against the model (`procnotify_sim::script::run_query`).
    #[test]
    fn the_query_reply_matches_the_reference_model_after_every_step(
        (header, ops) in header().prop_flat_map(|header| {
            (Just(header), prop::collection::vec(op(header.boot, header.max), 0..40))
        }),
        seed in any::<u16>(),
    ) {
        if let Err(failure) = run_ops_with_query(header, &ops, seed) {
            return Err(TestCaseError::fail(failure));
        }
    }
}

/// Processors the layout property's machine can have.
const LAYOUT_MAX: u32 = 16;

/// Every slot's state and counters after `notifications`, on a machine with
/// one processor. With `neighbour`, an `AddStart` for that index comes first
/// and its value's initialisation fails: the table then holds storage around
/// `neighbour` (allocated before the initialiser ran) but no value.
fn slots_after(notifications: &[NotifyContext], neighbour: Option<u32>) -> Vec<Option<(SlotState, Counters)>> {
    let kernel = SimKernel::boot(Config::new(1, LAYOUT_MAX));
    let driver = SimOs::load_monitor(&kernel).expect("load");
    if let Some(index) = neighbour {
        let slots = driver.context().table().allocated_slots();
        // The load initialised processor 0's value: the next one is the 2nd.
        kernel.fail_payload_init(2);
        let veto = kernel.inject(NotifyContext {
            state: NotifyState::AddStart.raw(),
            nt_number: index,
            status: NtStatus::SUCCESS,
            proc_number: ProcNumber::dense(index),
        });
        assert_eq!(veto, vec![NtStatus::INSUFFICIENT_RESOURCES], "the neighbour's AddStart is vetoed");
        assert!(driver.context().table().get(index).is_none(), "no value at {index}");
        assert!(driver.context().table().allocated_slots() > slots, "storage was allocated for {index}");
    }
    for &notification in notifications {
        kernel.inject(notification);
    }
    kernel.flush_dpcs();
    let table = driver.context().table();
    let slots = (0..LAYOUT_MAX).map(|index| table.get(index).map(|slot| (slot.state(), slot.value().counters())));
    let slots = slots.collect();
    driver.unload();
    slots
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn counters_do_not_depend_on_what_was_allocated_before(
        notifications in prop::collection::vec(
            (0_u32..3, 0..LAYOUT_MAX, status()).prop_map(|(state, nt_number, status)| NotifyContext {
                state,
                nt_number,
                status,
                proc_number: ProcNumber::dense(nt_number),
            }),
            0..40,
        ),
        neighbour in 1..LAYOUT_MAX,
    ) {
        prop_assert_eq!(slots_after(&notifications, Some(neighbour)), slots_after(&notifications, None));
    }
}
