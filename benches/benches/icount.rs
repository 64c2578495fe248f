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

use procnotify_benches::dpc::{DpcBench, from_dpc_visit};
use procnotify_benches::peers::{Boxcar, CopyOnGrow, Fixed, MutexLocked, PerThread, RwLocked};
use procnotify_benches::table::{ReaderView, Segmented};
use procnotify_benches::{MAX, OWN, PRESENT, PerCpu, by_index, indices, own_slot, own_slot_visit};

const VARIANTS: [&str; 3] = ["by_index", "own_slot", "own_slot_visit"];

/// The DPC read path, listed with the `own_slot_visit` variant.
const FROM_DPC: &str = "procnotify_from_dpc";

fn run<C: PerCpu>(variant: &str, iterations: u64) -> Result<(), String> {
    let contender = C::with_present(PRESENT, MAX);
    procnotify_benches::set_current_processor(OWN);
    let indices = indices();
    match variant {
        "by_index" if C::BY_INDEX => {
            for _ in 0..iterations {
                black_box(by_index(black_box(&contender), black_box(indices.as_slice())));
            }
        }
        "own_slot" => {
            for _ in 0..iterations {
                black_box(own_slot(black_box(&contender)));
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

/// Every contender: its name and whether it has a by-index lookup.
fn contenders() -> [(&'static str, bool); 8] {
    [
        (Fixed::NAME, Fixed::BY_INDEX),
        (Segmented::NAME, Segmented::BY_INDEX),
        (ReaderView::NAME, ReaderView::BY_INDEX),
        (RwLocked::NAME, RwLocked::BY_INDEX),
        (MutexLocked::NAME, MutexLocked::BY_INDEX),
        (Boxcar::NAME, Boxcar::BY_INDEX),
        (PerThread::NAME, PerThread::BY_INDEX),
        (CopyOnGrow::NAME, CopyOnGrow::BY_INDEX),
    ]
}

fn dispatch(variant: &str, contender: &str, iterations: u64) -> Result<(), String> {
    match contender {
        name if name == Fixed::NAME => run::<Fixed>(variant, iterations),
        name if name == Segmented::NAME => run::<Segmented>(variant, iterations),
        name if name == ReaderView::NAME => run::<ReaderView>(variant, iterations),
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
                for (name, by_index) in contenders() {
                    if by_index || variant != "by_index" {
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
