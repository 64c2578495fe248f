//! The table under test, `Table<Visits, Heap>`, filled through the public
//! writer API, as two contenders: `procnotify_table` looks up with
//! [`Table::get`] (the state) and [`Table::value`] (a plain field) through
//! `&Table`; `procnotify_reader` takes a [`Reader`] once per loop and looks
//! up through it.

use std::sync::atomic::{AtomicU64, Ordering};

use procnotify_core::table::Reader;
use procnotify_core::{ProcNumber, SlotState, Table};
use procnotify_sim::kit::Heap;

use crate::{Grow, PerCpu};

/// The table's value in the benchmarks: the processor's index (a plain
/// field) and a visit counter, as the peers' `Counter` (the slot adds the
/// state byte).
#[derive(Debug, Default)]
pub struct Visits {
    index: u32,
    visits: AtomicU64,
}

impl Visits {
    /// A value for processor `index`, never visited.
    pub fn new(index: u32) -> Self {
        Self { index, visits: AtomicU64::new(0) }
    }

    /// The processor's index: a plain field.
    #[inline]
    pub fn index(&self) -> u32 {
        self.index
    }

    /// One visit: a `Relaxed` `fetch_add`, as `PerProcessor::visit`.
    #[inline]
    pub fn bump(&self) {
        self.visits.fetch_add(1, Ordering::Relaxed);
    }

    /// Visits so far.
    pub fn get(&self) -> u64 {
        self.visits.load(Ordering::Relaxed)
    }
}

/// The table as the benchmarks use it.
pub type BenchTable = Table<Visits, Heap>;

/// A table for `max` processors (at least 1), empty.
///
/// # Panics
///
/// When the index cannot be allocated (a benchmark cannot run without it).
pub fn empty_table(max: u32) -> BenchTable {
    Table::new(max, Heap).expect("allocate the table's index")
}

/// Brings processor `index` to `Starting` (its slot linked with a fresh
/// [`Visits`] if it had none), as the callback's AddStart does. `false` when
/// the slot could not be created (out of range or no memory) or another
/// writer exists.
pub fn add_start(table: &BenchTable, index: u32) -> bool {
    let Some(mut writer) = table.writer() else { return false };
    if writer.get_or_insert(index, ProcNumber::dense(index), |place| Ok(place.write(Visits::new(index)))).is_err() {
        return false;
    }
    writer.set_state(index, SlotState::Starting)
}

/// Sets processor `index`'s state (AddComplete: `Online`; AddFailure:
/// `Vacant`). `false` when it has no slot or another writer exists.
pub fn set_state(table: &BenchTable, index: u32, state: SlotState) -> bool {
    table.writer().is_some_and(|writer| writer.set_state(index, state))
}

/// A table for `max` processors with `0 .. present` online.
///
/// # Panics
///
/// When a slot cannot be created.
pub fn table_with(present: u32, max: u32) -> BenchTable {
    let table = empty_table(max);
    for index in 0..present {
        assert!(add_start(&table, index) && set_state(&table, index, SlotState::Online), "bring up {index}");
    }
    table
}

/// `procnotify_table`: [`Table::get`] (state, visit) or [`Table::value`]
/// (plain field) through `&Table` for every lookup.
pub struct Segmented(pub BenchTable);

impl PerCpu for Segmented {
    const NAME: &'static str = "procnotify_table";
    type View<'a> = &'a BenchTable;

    fn with_present(present: u32, max: u32) -> Self {
        Self(table_with(present, max))
    }

    fn view(&self) -> &BenchTable {
        &self.0
    }

    #[inline]
    fn read(view: &BenchTable, index: u32) -> u64 {
        view.get(index).map_or(0, |slot| slot.state() as u64)
    }

    #[inline]
    fn read_plain(view: &BenchTable, index: u32) -> u64 {
        view.value(index).map_or(0, |value| u64::from(value.index()))
    }

    #[inline]
    fn visit(view: &BenchTable, index: u32) {
        if let Some(slot) = view.get(index) {
            slot.value().bump();
        }
    }
}

impl Grow for Segmented {
    /// The AddStart path (segment allocation on first use, value
    /// initialisation, link, state) for the next index, then AddFailure
    /// (back to `Vacant`) so the index can be added again on the next pass.
    /// The first pass over a fresh table allocates and links every slot; the
    /// table never shrinks, so later passes find them linked.
    fn grow(&self, present: u32, next: &mut u32) -> bool {
        if *next >= self.0.capacity() {
            *next = present;
        }
        let grown = add_start(&self.0, *next) && set_state(&self.0, *next, SlotState::Vacant);
        *next += 1;
        grown
    }
}

/// `procnotify_reader`: one [`Reader`] per loop, [`Reader::get`] per lookup.
pub struct ReaderView(pub BenchTable);

impl PerCpu for ReaderView {
    const NAME: &'static str = "procnotify_reader";
    type View<'a> = Reader<'a, Visits>;

    fn with_present(present: u32, max: u32) -> Self {
        Self(table_with(present, max))
    }

    fn view(&self) -> Reader<'_, Visits> {
        self.0.reader()
    }

    #[inline]
    fn read(view: Reader<'_, Visits>, index: u32) -> u64 {
        view.get(index).map_or(0, |slot| slot.state() as u64)
    }

    #[inline]
    fn read_plain(view: Reader<'_, Visits>, index: u32) -> u64 {
        view.get(index).map_or(0, |slot| u64::from(slot.value().index()))
    }

    #[inline]
    fn visit(view: Reader<'_, Visits>, index: u32) {
        if let Some(slot) = view.get(index) {
            slot.value().bump();
        }
    }
}
