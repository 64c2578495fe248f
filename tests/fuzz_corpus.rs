// Not yet ported to the new API: ported by the fuzz-model / CLI helper.
// Compiled out until then so that `cargo test --workspace` builds.
#![allow(missing_docs)]
#![cfg(any())]
//! Replays the fuzz target's seed corpus (`fuzz/corpus/notifications/`)
//! through the same harness the fuzz target uses (`procnotify::sim::script`),
//! as an ordinary test, plus a deterministic pseudo-random sweep so a plain
//! `cargo test` explores beyond the seeds.
//!
//! The seeds are written by `cargo test --test fuzz_corpus -- --ignored
//! write_seed_corpus` from the scenarios below; files the fuzzer adds to the
//! corpus directory are replayed too.

use std::fs;
use std::path::{Path, PathBuf};

use procnotify::NtStatus;
use procnotify::notify::Kind;
use procnotify::os::{MAX_PROCESSORS, ProcNumber};
use procnotify::sim::NotifyContext;
use procnotify::sim::script::{self, AddFault, Header, LoadFault, Op, Reported};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/notifications")
}

fn inject(state: u32, index: u32, status: NtStatus, proc_number: ProcNumber) -> Op {
    Op::Inject(NotifyContext { state, nt_number: index, status, proc_number })
}

fn dense(state: u32, index: u32) -> Op {
    inject(state, index, NtStatus::SUCCESS, ProcNumber::dense(index))
}

/// Named scenarios, one seed file each.
#[allow(clippy::too_many_lines)] // one list of scenarios
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    const START: u32 = Kind::ADD_START;
    const COMPLETE: u32 = Kind::ADD_COMPLETE;
    const FAILURE: u32 = Kind::ADD_FAILURE;
    let veto = NtStatus::from_bits(0xC000_0001);
    let both = Header { other_before: true, other_after: true, ..Header::new(4, 40) };
    let mut seeds = Vec::new();
    let mut add = |name, header, ops: Vec<Op>| seeds.push((name, script::encode(header, &ops)));

    add("grow-1-to-70", Header::new(1, 70), [vec![Op::HotAdd(AddFault::None); 70], vec![Op::ReadAll]].concat());
    add(
        "grow-to-2048-and-past",
        Header::new(64, MAX_PROCESSORS),
        [vec![Op::HotAdd(AddFault::None); 1990], vec![Op::ReadAll, Op::Read(2047), Op::Read(2048), Op::Read(u32::MAX)]]
            .concat(),
    );
    add(
        "every-hot-add-fault",
        both,
        vec![
            Op::HotAdd(AddFault::Veto { after: false, status: veto }),
            Op::HotAdd(AddFault::Veto { after: true, status: NtStatus::INSUFFICIENT_RESOURCES }),
            Op::HotAdd(AddFault::StartFailure(NtStatus::NOT_SUPPORTED)),
            Op::HotAdd(AddFault::Alloc(1)),
            Op::HotAdd(AddFault::None),
            Op::HotAdd(AddFault::PayloadInit),
            Op::HotAdd(AddFault::Prepare),
            Op::HotAdd(AddFault::None),
            Op::ReadAll,
        ],
    );
    add(
        "allocation-failure-at-each-segment",
        Header::new(1, 40),
        (0..36).flat_map(|_| [Op::HotAdd(AddFault::Alloc(1)), Op::HotAdd(AddFault::None)]).collect(),
    );
    add(
        "reload-with-every-load-fault",
        Header::new(20, 40),
        [
            (1..=8).map(|n| Op::Reload(LoadFault::Alloc(n))).collect::<Vec<_>>(),
            (0..22).map(|k| Op::Reload(LoadFault::PayloadInit(k))).collect(),
            vec![Op::Reload(LoadFault::Register), Op::Toggle, Op::HotAdd(AddFault::None), Op::Toggle, Op::ReadAll],
        ]
        .concat(),
    );
    add(
        "anomalous-notifications",
        Header::new(4, 16),
        vec![
            dense(3, 1),
            dense(u32::MAX, 0),
            dense(START, 16),
            dense(COMPLETE, 16),
            dense(FAILURE, u32::MAX),
            dense(START, 0),
            dense(FAILURE, 9),
            dense(COMPLETE, 9),
            dense(START, 5),
            dense(START, 5),
            inject(FAILURE, 5, veto, ProcNumber::dense(5)),
            dense(FAILURE, 5),
            dense(COMPLETE, 6),
            dense(FAILURE, 6),
            inject(COMPLETE, 7, NtStatus::SUCCESS, ProcNumber { group: 0, number: 200 }),
            inject(COMPLETE, 8, NtStatus::SUCCESS, ProcNumber { group: 7, number: 3 }),
            inject(START, 10, NtStatus::SUCCESS, ProcNumber { group: 0, number: 2 }),
            dense(COMPLETE, 10),
            Op::HotAdd(AddFault::None),
            Op::ReadAll,
            Op::Read(15),
            Op::Read(17),
        ],
    );
    add(
        "start-failure-then-index-reuse",
        Header::new(2, 8),
        vec![
            Op::HotAdd(AddFault::StartFailure(veto)),
            Op::HotAdd(AddFault::StartFailure(NtStatus::INSUFFICIENT_RESOURCES)),
            Op::HotAdd(AddFault::None),
            Op::HotAdd(AddFault::PayloadInit),
            Op::HotAdd(AddFault::None),
            Op::ReadAll,
        ],
    );
    add(
        "reported-maximum-smaller-than-machine",
        Header { reported_max: Reported::Half, ..Header::new(3, 8) },
        vec![Op::HotAdd(AddFault::None), Op::HotAdd(AddFault::None), Op::Toggle, Op::Toggle, Op::ReadAll],
    );
    add(
        "reported-maximum-huge",
        Header { reported_max: Reported::Huge, ..Header::new(2, 4) },
        vec![Op::HotAdd(AddFault::None), Op::HotAdd(AddFault::None), Op::HotAdd(AddFault::None), Op::ReadAll],
    );
    add(
        "no-dynamic-partitioning",
        Header { dynamic_partitioning: false, ..Header::new(3, 8) },
        vec![Op::HotAdd(AddFault::None), Op::HotAdd(AddFault::Veto { after: false, status: veto }), Op::ReadAll],
    );
    add(
        "unloaded-kernel-keeps-adding",
        both,
        vec![
            Op::Toggle,
            Op::HotAdd(AddFault::None),
            Op::HotAdd(AddFault::Veto { after: true, status: veto }),
            dense(START, 1),
            Op::Toggle,
            Op::HotAdd(AddFault::Veto { after: true, status: veto }),
            Op::HotAdd(AddFault::None),
            Op::ReadAll,
        ],
    );
    add("empty-script", Header::new(1, 1), vec![]);
    seeds
}

#[test]
#[ignore = "writes the seed corpus; run by hand after changing the scenarios"]
fn write_seed_corpus() {
    let dir = corpus_dir();
    fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds() {
        fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}

#[test]
fn seed_scenarios_pass() {
    for (name, bytes) in seeds() {
        if let Err(error) = script::run(&bytes) {
            panic!("seed {name}: {error}");
        }
    }
}

#[test]
fn replay_corpus() {
    let mut files: Vec<_> = fs::read_dir(corpus_dir())
        .expect("fuzz/corpus/notifications exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= seeds().len(), "the seed corpus has {} files", files.len());
    let mut notifications = 0;
    for path in &files {
        let bytes = fs::read(path).unwrap();
        match script::run(&bytes) {
            Ok(summary) => notifications += summary.notifications,
            Err(error) => panic!("{}: {error}", path.display()),
        }
    }
    println!("replayed {} corpus files, {notifications} notifications", files.len());
}

/// A deterministic pseudo-random sweep (xorshift), biased toward small
/// opcodes' argument values the way a fuzzer's mutations are not.
#[test]
fn pseudo_random_scripts_agree_with_the_model() {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..400 {
        let len = 3 + (next() % 300) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        if let Err(error) = script::run(&bytes) {
            panic!("input {bytes:02x?}: {error}");
        }
    }
}
