//! `IOCTL_PROCNOTIFY_QUERY` over tables the real engine built in the
//! simulator: procnotify loaded with 1, 4, 64 and 2048 processors, asked for
//! its table with every output length from 0 to past the whole reply. For
//! each length: the status, the bytes written, that nothing past them is
//! left unzeroed, and that decoding what was written gives exactly the rows
//! that fit (the rows of the complete reply, in order, up to that many).
//!
//! Also here: the fuzz target's seed corpus (`fuzz/corpus/query/`) replayed
//! through its harness (`procnotify_sim::script::run_query`), and a
//! pseudo-random sweep of it, as `tests/fuzz_corpus.rs` does for the
//! notifications target.

use std::fs;
use std::path::{Path, PathBuf};

use procnotify_core::abi::{self, HEADER_SIZE, ROW_SIZE};
use procnotify_core::{MAX_PROCESSORS, NotifyState, NtStatus, ProcNumber, SlotState};
use procnotify_sim::script::{self, AddFault, Header, LoadFault, Op, Reported};
use procnotify_sim::{Config, HotAdd, NotifyContext, SimDriver, SimKernel, SimOs, query};

/// Checks every output length from 0 to two rows past the whole reply.
/// Returns the number of lengths checked.
fn check_every_length(driver: &SimDriver) -> usize {
    let complete = query::reply(driver);
    let reference = abi::decode(&complete).expect("the complete reply decodes");
    assert!(reference.header.is_complete());
    let rows: Vec<_> = reference.rows().collect();
    let n = rows.len();
    let full = complete.len();
    assert_eq!(full, HEADER_SIZE + n * ROW_SIZE);
    // The bytes of a reply depend only on how many rows fit: each count is
    // decoded once, and every length with that count must give the same
    // bytes (checked byte for byte), so it decodes the same.
    let mut decoded_for = vec![None; n + 1];
    // What the driver's handler encodes: the table mapped to rows. The table
    // does not change during the sweep, so it is mapped once here; the live
    // mapping is compared with it at the boundary lengths below.
    let summary = procnotify_core::query::summary(driver.context());
    let snapshot: Vec<_> = procnotify_core::query::rows(driver.context().table()).collect();
    let mut out = vec![0_u8; full + 2 * ROW_SIZE + 2];
    for len in 0..out.len() {
        let out = &mut out[..len];
        out.fill(0xA5);
        let answer = abi::encode(out, &summary, snapshot.iter().copied());
        if len <= HEADER_SIZE || len + ROW_SIZE >= full || (len - HEADER_SIZE).is_multiple_of(ROW_SIZE) && n <= 64 {
            let mut live = vec![0x5A_u8; len];
            assert_eq!(query::answer(driver, &mut live), answer, "len {len}: the live table's answer");
            assert_eq!(live, out, "len {len}: the live table's bytes");
        }
        assert_eq!(answer.reply_size as usize, full, "len {len}");
        if len < HEADER_SIZE {
            assert_eq!((answer.status, answer.written), (NtStatus::BUFFER_TOO_SMALL, 0), "len {len}");
            assert!(out.iter().all(|&b| b == 0), "len {len}: the buffer was not zeroed");
            continue;
        }
        let fit = ((len - HEADER_SIZE) / ROW_SIZE).min(n);
        let status = if fit < n { NtStatus::BUFFER_OVERFLOW } else { NtStatus::SUCCESS };
        assert_eq!((answer.status, answer.written), (status, HEADER_SIZE + fit * ROW_SIZE), "len {len}");
        let (reply, tail) = out.split_at(answer.written);
        assert!(tail.iter().all(|&b| b == 0), "len {len}: bytes past the reply are not zero");
        assert_eq!(reply[HEADER_SIZE..], complete[HEADER_SIZE..answer.written], "len {len}: rows differ");
        let bytes = decoded_for[fit].get_or_insert_with(|| {
            let decoded = abi::decode(reply).unwrap_or_else(|error| panic!("len {len}: {error}"));
            assert_eq!(decoded.header.rows_written as usize, fit, "len {len}");
            assert_eq!(decoded.header.rows_in_table as usize, n, "len {len}");
            assert_eq!(decoded.header.present, reference.header.present, "len {len}");
            assert_eq!(decoded.header.summary, reference.header.summary, "len {len}");
            assert_eq!(decoded.rows().collect::<Vec<_>>(), rows[..fit], "len {len}: decoded rows");
            reply.to_vec()
        });
        assert_eq!(reply, bytes.as_slice(), "len {len}: not the bytes of another length with {fit} rows");
    }
    out.len()
}

/// procnotify loaded on a machine of `boot` processors (at most `max`).
fn loaded(boot: u32, max: u32) -> (SimKernel, SimDriver) {
    let kernel = SimKernel::boot(Config::new(boot, max));
    let driver = SimOs::load_monitor(&kernel).expect("load");
    kernel.flush_dpcs();
    (kernel, driver)
}

/// Loads procnotify with `n` processors, all online, and checks every length.
fn every_length_with_processors(n: u32) {
    let (_kernel, driver) = loaded(n, n);
    let reply = query::reply(&driver);
    let table = abi::decode(&reply).unwrap();
    assert_eq!(table.header.rows_in_table, n);
    assert!(table.rows().all(|row| row.state == SlotState::Online && row.visits == 1), "{n} processors");
    let lengths = check_every_length(&driver);
    assert_eq!(lengths, abi::reply_size(n) as usize + 2 * ROW_SIZE + 2);
    driver.unload();
}

#[test]
fn every_output_length_for_tables_of_1_4_and_64_processors() {
    for n in [1, 4, 64] {
        every_length_with_processors(n);
    }
}

/// 65,666 lengths; about 10 s of one core in a debug build.
#[test]
fn every_output_length_for_a_table_of_2048_processors() {
    every_length_with_processors(MAX_PROCESSORS);
}

#[test]
fn every_output_length_for_a_table_with_vacant_and_absent_indices() {
    let (kernel, driver) = loaded(4, 16);
    kernel.fail_next_start(NtStatus::UNSUCCESSFUL);
    assert!(matches!(kernel.hot_add(), HotAdd::Failed { index: 4, .. }));
    // An AddStart for index 9, never completed: starting.
    kernel.inject(NotifyContext {
        state: NotifyState::AddStart.raw(),
        nt_number: 9,
        status: NtStatus::SUCCESS,
        proc_number: ProcNumber::dense(9),
    });
    let reply = query::reply(&driver);
    let decoded = abi::decode(&reply).unwrap();
    let states: Vec<_> = decoded.rows().map(|row| (row.index, row.state)).collect();
    let online = SlotState::Online;
    assert_eq!(
        states,
        [(0, online), (1, online), (2, online), (3, online), (4, SlotState::Vacant), (9, SlotState::Starting)]
    );
    assert_eq!((decoded.header.present, decoded.header.summary.capacity), (5, 16));
    check_every_length(&driver);
    driver.unload();
}

#[test]
fn the_reply_holds_no_address() {
    // Two machines in the same state hold their tables, contexts and values
    // at different addresses: a reply that carried any pointer, handle or
    // pool address would differ between them. Byte-identical replies show
    // the reply is a function of the table's contents alone.
    let run = || {
        let (kernel, driver) = loaded(8, 64);
        for _ in 0..8 {
            kernel.hot_add();
        }
        kernel.flush_dpcs();
        let reply = query::reply(&driver);
        let context = std::ptr::from_ref(driver.context()).addr();
        (kernel, driver, reply, context)
    };
    let (_first_kernel, first, first_reply, first_context) = run();
    let (_second_kernel, second, second_reply, second_context) = run();
    assert_ne!(first_context, second_context, "both contexts at one address: the comparison would prove nothing");
    assert_eq!(abi::decode(&first_reply).unwrap().header.rows_in_table, 16);
    assert_eq!(first_reply, second_reply);
    first.unload();
    second.unload();
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/query")
}

/// Named query seeds: a length seed, then a script.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let veto = NtStatus::from_bits(0xC000_0001);
    let both = Header { other_before: true, other_after: true, ..Header::new(4, 40) };
    let inject = |state: NotifyState, index: u32| {
        Op::Inject(NotifyContext {
            state: state.raw(),
            nt_number: index,
            status: NtStatus::SUCCESS,
            proc_number: ProcNumber::dense(index),
        })
    };
    let mut seeds = Vec::new();
    let mut add = |name, seed: u16, header, ops: Vec<Op>| {
        seeds.push((name, [seed.to_le_bytes().to_vec(), script::encode(header, &ops)].concat()));
    };
    add("grow-1-to-70", 0, Header::new(1, 70), [vec![Op::HotAdd(AddFault::None); 70], vec![Op::ReadAll]].concat());
    add("capacity-2048", 40_000, Header::new(64, MAX_PROCESSORS), vec![Op::HotAdd(AddFault::None); 8]);
    add(
        "every-hot-add-fault",
        777,
        both,
        vec![
            Op::HotAdd(AddFault::Veto { after: false, status: veto }),
            Op::HotAdd(AddFault::StartFailure(NtStatus::NOT_SUPPORTED)),
            Op::HotAdd(AddFault::Alloc(1)),
            Op::HotAdd(AddFault::None),
            Op::HotAdd(AddFault::PayloadInit),
            Op::HotAdd(AddFault::Prepare),
            Op::ReadAll,
        ],
    );
    add(
        "vacant-starting-and-anomalies",
        3,
        Header::new(4, 16),
        vec![
            inject(NotifyState::AddStart, 9),
            inject(NotifyState::AddStart, 6),
            inject(NotifyState::AddFailure, 6),
            inject(NotifyState::AddComplete, 12),
            inject(NotifyState::AddStart, 16),
            Op::Inject(NotifyContext { state: 7, nt_number: 1, status: veto, proc_number: ProcNumber::dense(1) }),
            Op::Read(9),
        ],
    );
    add(
        "reloads-and-reported-maximum",
        65_535,
        Header { reported_max: Reported::Half, ..Header::new(3, 12) },
        vec![
            Op::HotAdd(AddFault::None),
            Op::Reload(LoadFault::Alloc(3)),
            Op::Toggle,
            Op::HotAdd(AddFault::None),
            Op::Reload(LoadFault::PayloadInit(1)),
            Op::Reload(LoadFault::None),
            Op::HotAdd(AddFault::None),
        ],
    );
    add("empty-script", 64, Header::new(1, 1), vec![]);
    seeds
}

#[test]
#[ignore = "writes the query seed corpus; run by hand after changing the scenarios"]
fn write_query_seed_corpus() {
    let dir = corpus_dir();
    fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds() {
        fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}

#[test]
fn query_seed_scenarios_pass() {
    for (name, bytes) in seeds() {
        if let Err(error) = script::run_query(&bytes) {
            panic!("seed {name}: {error}");
        }
    }
}

#[test]
fn replay_query_corpus() {
    let mut files: Vec<_> = fs::read_dir(corpus_dir())
        .expect("fuzz/corpus/query exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= seeds().len(), "the query seed corpus has {} files", files.len());
    let mut steps = 0;
    for path in &files {
        match script::run_query(&fs::read(path).unwrap()) {
            Ok(summary) => steps += summary.steps,
            Err(error) => panic!("{}: {error}", path.display()),
        }
    }
    println!("replayed {} query corpus files, {steps} steps, each followed by 8 queries", files.len());
}

/// A deterministic pseudo-random sweep (xorshift) of the query harness.
#[test]
fn pseudo_random_query_scripts_agree_with_the_model() {
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200 {
        let len = 5 + (next() % 200) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        if let Err(error) = script::run_query(&bytes) {
            panic!("input {bytes:02x?}: {error}");
        }
    }
}
