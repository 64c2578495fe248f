//! The lookup loops of `benches/lookup.rs`, run a given number of times for
//! callgrind to count their instructions (`scripts/callgrind.py` drives it;
//! not criterion).
//!
//! ```text
//! icount list                                  # every "variant contender" pair, one a line
//! icount <variant> <contender> <iterations>    # build the contender, run the loop
//! ```
//!
//! Each iteration is one call of the same `inline(never)` function criterion
//! times, so `(instructions at n2 - instructions at n1) / ((n2 - n1) * BATCH)`
//! is the instructions per lookup of the loop criterion measures, with the
//! set-up (building the contender) cancelled out. Run by `cargo bench`
//! without arguments it does nothing.

use std::hint::black_box;
use std::process::ExitCode;

use procnotify_benches::context::{ContextView, DriverView};
use procnotify_benches::dpc::{DpcBench, from_dpc_visit};
use procnotify_benches::peers::{Boxcar, CopyOnGrow, Fixed, MutexLocked, PerThread, RwLocked};
use procnotify_benches::table::{ReaderView, Segmented};
use procnotify_benches::{
    MAX, OWN, PRESENT, PerCpu, by_index, by_index_plain, indices, own_slot, own_slot_plain, own_slot_visit,
};

const VARIANTS: [&str; 5] = ["by_index", "by_index_plain", "own_slot", "own_slot_plain", "own_slot_visit"];

/// The DPC read path, listed with the `own_slot_visit` variant.
const FROM_DPC: &str = "procnotify_from_dpc";

fn run<C: PerCpu>(variant: &str, iterations: u64) -> Result<(), String> {
    let contender = C::with_present(PRESENT, MAX);
    procnotify_benches::set_current_processor(OWN);
    let indices = indices();
    if !has(variant, C::BY_INDEX, C::STATE) {
        return Err(format!("{} has no variant {variant}", C::NAME));
    }
    match variant {
        "by_index" => {
            for _ in 0..iterations {
                black_box(by_index(black_box(&contender), black_box(indices.as_slice())));
            }
        }
        "by_index_plain" => {
            for _ in 0..iterations {
                black_box(by_index_plain(black_box(&contender), black_box(indices.as_slice())));
            }
        }
        "own_slot" => {
            for _ in 0..iterations {
                black_box(own_slot(black_box(&contender)));
            }
        }
        "own_slot_plain" => {
            for _ in 0..iterations {
                black_box(own_slot_plain(black_box(&contender)));
            }
        }
        "own_slot_visit" => {
            for _ in 0..iterations {
                own_slot_visit(black_box(&contender));
            }
        }
        _ => return Err(format!("{} has no variant {variant}", C::NAME)),
    }
    Ok(())
}

fn run_from_dpc(variant: &str, iterations: u64) -> Result<(), String> {
    if variant != "own_slot_visit" {
        return Err(format!("{FROM_DPC} has only own_slot_visit"));
    }
    let bench = DpcBench::new(PRESENT, MAX);
    let dpc = bench.context_of(OWN).ok_or("processor OWN is not present")?;
    for _ in 0..iterations {
        // SAFETY: `dpc` comes from `bench`, alive until the end of the function.
        unsafe { from_dpc_visit(black_box(dpc), bench.os()) };
    }
    if bench.visits(OWN) != Some(iterations * u64::from(procnotify_benches::BATCH)) {
        return Err(format!("{FROM_DPC}: the visits were not counted"));
    }
    Ok(())
}

/// Whether a contender with these traits runs `variant`.
fn has(variant: &str, by_index: bool, state: bool) -> bool {
    match variant {
        "by_index" => by_index && state,
        "by_index_plain" => by_index,
        "own_slot" => state,
        _ => true,
    }
}

/// Every contender: its name, whether it has a by-index lookup and whether
/// its lookup gives the slot's state.
fn contenders() -> [(&'static str, bool, bool); 10] {
    [
        (Fixed::NAME, Fixed::BY_INDEX, Fixed::STATE),
        (Segmented::NAME, Segmented::BY_INDEX, Segmented::STATE),
        (ReaderView::NAME, ReaderView::BY_INDEX, ReaderView::STATE),
        (ContextView::NAME, ContextView::BY_INDEX, ContextView::STATE),
        (DriverView::NAME, DriverView::BY_INDEX, DriverView::STATE),
        (RwLocked::NAME, RwLocked::BY_INDEX, RwLocked::STATE),
        (MutexLocked::NAME, MutexLocked::BY_INDEX, MutexLocked::STATE),
        (Boxcar::NAME, Boxcar::BY_INDEX, Boxcar::STATE),
        (PerThread::NAME, PerThread::BY_INDEX, PerThread::STATE),
        (CopyOnGrow::NAME, CopyOnGrow::BY_INDEX, CopyOnGrow::STATE),
    ]
}

fn dispatch(variant: &str, contender: &str, iterations: u64) -> Result<(), String> {
    match contender {
        name if name == Fixed::NAME => run::<Fixed>(variant, iterations),
        name if name == Segmented::NAME => run::<Segmented>(variant, iterations),
        name if name == ReaderView::NAME => run::<ReaderView>(variant, iterations),
        name if name == ContextView::NAME => run::<ContextView>(variant, iterations),
        name if name == DriverView::NAME => run::<DriverView>(variant, iterations),
        name if name == RwLocked::NAME => run::<RwLocked>(variant, iterations),
        name if name == MutexLocked::NAME => run::<MutexLocked>(variant, iterations),
        name if name == Boxcar::NAME => run::<Boxcar>(variant, iterations),
        name if name == PerThread::NAME => run::<PerThread>(variant, iterations),
        name if name == CopyOnGrow::NAME => run::<CopyOnGrow>(variant, iterations),
        FROM_DPC => run_from_dpc(variant, iterations),
        _ => Err(format!("no contender {contender}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).filter(|arg| arg != "--bench").collect();
    let result = match args.as_slice() {
        [] => Ok(()),
        [list] if list == "list" => {
            for variant in VARIANTS {
                for (name, by_index, state) in contenders() {
                    if has(variant, by_index, state) {
                        println!("{variant} {name}");
                    }
                }
            }
            println!("own_slot_visit {FROM_DPC}");
            Ok(())
        }
        [variant, contender, iterations] => iterations
            .parse::<u64>()
            .map_err(|e| format!("iterations {iterations:?}: {e}"))
            .and_then(|n| dispatch(variant, contender, n)),
        _ => Err("usage: icount list | icount <variant> <contender> <iterations>".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("icount: {message}");
            ExitCode::FAILURE
        }
    }
}
