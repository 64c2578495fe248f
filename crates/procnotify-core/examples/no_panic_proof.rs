//! Link-time proof that the kernel paths cannot panic.
//!
//! Built by `.ci/no-panic.sh` as
//!
//! ```text
//! RUSTFLAGS="--cfg procnotify_no_panic" CARGO_PROFILE_RELEASE_PANIC=unwind \
//!     cargo build --release -p procnotify-core --example no_panic_proof
//! ```
//!
//! Under `--cfg procnotify_no_panic`, these carry `#[no_panic]`:
//!
//! - `Context::on_notification` (the processor change callback: the state
//!   machine, table growth, the hooks, accounting, the trace line);
//! - `Context::current` (a reader on the current processor);
//! - `PerProcessor::visit` (the work of procnotify's DPC);
//! - `Table::get` (a lookup by index);
//! - `abi::check_request` and `abi::encode` (the driver's
//!   `IOCTL_PROCNOTIFY_QUERY` handler: the table mapped to rows as
//!   `src/entry.rs` maps it, written into output buffers of arbitrary
//!   length).
//!
//! If the optimiser cannot prove that a call can never panic, the `no-panic`
//! crate turns that into a link error naming the function. The check needs
//! optimisation and `panic = "unwind"` (the driver itself ships with
//! `abort`), and it needs the generic paths to be instantiated and linked:
//! this binary does that with the test kit's `MiniOs` (an `Os` whose own
//! methods cannot panic) and procnotify's own `Monitor` hooks over a trivial
//! `TargetedDpc`, and feeds them opaque (`black_box`) inputs so nothing is
//! proven only for constants.
//!
//! Under `--cfg procnotify_no_panic_canary` it also links a deliberately
//! panicking `#[no_panic]` function: that build must fail, which shows the
//! check is live (not defeated by `panic = "abort"` or dead code).
//!
//! Without those cfgs it is an ordinary program that makes the same calls
//! and proves nothing; it says so.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU32, Ordering};
use std::hint::black_box;

use procnotify_core::monitor::{Monitor, PerProcessor, TargetedDpc};
use procnotify_core::{Context, NtStatus, ProcNumber, RawNotification, Sink, Slot, Table};
use procnotify_core::{abi, query};
use procnotify_sim::kit::{Heap, MiniOs};

/// A DPC that only counts how often it was queued (the Windows layer's is a
/// `KDPC`; what matters here is the engine's side of the call).
struct ProofDpc {
    queued: AtomicU32,
}

// SAFETY: nothing is ever deferred (`queue` only counts), so no routine
// exists to break the trait's promises; `init` writes its place.
unsafe impl TargetedDpc for ProofDpc {
    type Os = MiniOs;

    fn init<'a>(_os: &MiniOs, place: &'a mut MaybeUninit<Self>) -> Result<&'a mut Self, NtStatus> {
        Ok(place.write(Self { queued: AtomicU32::new(0) }))
    }

    unsafe fn queue(value: &PerProcessor<Self>, _os: &MiniOs, target: ProcNumber) -> Result<bool, NtStatus> {
        // Relaxed: a statistic.
        value.dpc().queued.fetch_add(1, Ordering::Relaxed);
        // An arbitrary-looking answer, so both of the hook's branches stay.
        if target.number == u8::MAX { Err(NtStatus::INVALID_PARAMETER) } else { Ok(target.group == 0) }
    }
}

type ProofContext = Context<MiniOs, Monitor<ProofDpc>>;

/// A reader's lookup (`Table::get`). Not inlined, so `.ci/stack.sh` can
/// measure its frame.
#[inline(never)]
fn lookup(table: &Table<PerProcessor<ProofDpc>, Heap>, index: u32) -> u32 {
    table.get(index).map_or(u32::MAX, Slot::index)
}

/// A reader on the current processor (`Context::current`). Not inlined, so
/// `.ci/stack.sh` can measure its frame.
#[inline(never)]
fn read_path(context: &ProofContext) -> u64 {
    context.current().map_or(0, |value| value.counters().visits)
}

/// The DPC's work on the current processor (`PerProcessor::visit`). Not
/// inlined, so `.ci/stack.sh` can measure its frame.
#[inline(never)]
fn visit_path(context: &ProofContext) -> u64 {
    context.current().map_or(0, |value| value.visit(context.os()))
}

/// The query handler's work (`IOCTL_PROCNOTIFY_QUERY`): check the request,
/// then `query::answer` (the table mapped to rows, encoded into `out`), as
/// the driver's `EvtIoDeviceControl` does. Returns the bytes written.
#[inline(never)]
fn query_path(context: &ProofContext, code: u32, input_len: usize, out: &mut [u8]) -> usize {
    if abi::check_request(code, input_len).is_err() {
        return 0;
    }
    query::answer(context, out).written
}

#[cfg(procnotify_no_panic_canary)]
#[no_panic::no_panic]
fn canary(values: &[u32], index: usize) -> u32 {
    values[index]
}

/// Arbitrary notifications (any state, index, status and location), reads
/// on arbitrary processors and queries into buffers of arbitrary length.
/// Returns the number of calls to the five paths.
fn exercise(context: &ProofContext, rounds: u32) -> u32 {
    let mut calls = 0_u32;
    let mut seed = black_box(0x2545_F491_u32);
    let mut out = vec![0_u8; abi::MAX_REPLY_SIZE + 100];
    for _ in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let bytes = seed.to_le_bytes();
        let notification = RawNotification {
            state: seed % 5,
            index: seed.rotate_left(7) % 80,
            status: NtStatus(seed.cast_signed()),
            proc_number: ProcNumber { group: bytes[2].into(), number: bytes[0] },
        };
        black_box(context.on_notification(black_box(notification)));
        MiniOs::run_on(seed % 70, || {
            black_box(read_path(black_box(context)));
            black_box(visit_path(black_box(context)));
        });
        black_box(lookup(context.table(), black_box(seed)));
        let len = (seed as usize).rotate_right(3) % out.len();
        let code = if seed.is_multiple_of(7) { seed } else { abi::IOCTL_PROCNOTIFY_QUERY };
        black_box(query_path(
            black_box(context),
            black_box(code),
            black_box(seed.is_multiple_of(11).into()),
            &mut out[..len],
        ));
        calls = calls.wrapping_add(5);
    }
    calls
}

fn main() {
    let os = MiniOs { processors: black_box(4), max: black_box(64) };
    let driver = match Monitor::<ProofDpc>::load(os) {
        Ok(driver) => driver,
        Err(status) => {
            println!("no_panic_proof: load failed: {status}");
            std::process::exit(1);
        }
    };
    let context = driver.context();
    let calls = exercise(context, black_box(64));
    #[cfg(procnotify_no_panic_canary)]
    black_box(canary(black_box(&[1, 2, 3]), black_box(7)));
    let queued: u32 = context.table().slots().map(|slot| slot.value().dpc().queued.load(Ordering::Relaxed)).sum();
    let detail = format!(
        "exercised {calls} calls ({} present, {queued} DPCs queued, {} log lines, {:?})",
        context.present(),
        MiniOs::lines(),
        context.stats()
    );
    if cfg!(procnotify_no_panic) {
        println!(
            "no_panic_proof: built with --cfg procnotify_no_panic, so it linked only because no panic path was found; {detail}"
        );
    } else {
        println!(
            "this is only a proof when built by .ci/no-panic.sh with --cfg procnotify_no_panic; plain run: {detail}"
        );
    }
    driver.unload();
}
