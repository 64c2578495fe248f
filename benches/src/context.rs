//! The engine's own current-processor path, `Context::current`, as a
//! contender: procnotify's [`Monitor`] hooks and `PerProcessor` values over
//! [`BenchOs`], the processors brought up by delivering `AddStart` and
//! `AddComplete` to the context (the OS's path into the engine). A loop gets
//! `&Context` and calls `Context::current()` per lookup, as a driver's code
//! that holds the context does. Beside it, for information, the same call
//! through a loaded [`Driver`] (`Driver::context().current()`).

use core::mem::MaybeUninit;

use procnotify_core::monitor::Monitor;
use procnotify_core::{Context, Driver};

use crate::PerCpu;
use crate::dpc::BenchDpc;
use crate::os::{self, BenchOs};

/// procnotify's context as the benchmarks build it.
pub type BenchContext = Context<BenchOs, Monitor<BenchDpc>>;

// The loops over `&BenchContext` measure a context without interior
// mutability (see `Context`'s documentation); a constant may refer only to
// such data, so this fails to build if one comes back.
const _: &MaybeUninit<BenchContext> = &MaybeUninit::uninit();

/// `procnotify_context`: [`Context::current`] per lookup. It has no lookup
/// by index of its own (that is `Table::get` through `Context::table`) and
/// gives out values, not slots, so only the own-slot loops that read the
/// value run it: a plain field ([`PerProcessor::index`]) and a visit
/// ([`PerProcessor::visit`]).
///
/// [`PerProcessor::index`]: procnotify_core::monitor::PerProcessor::index
/// [`PerProcessor::visit`]: procnotify_core::monitor::PerProcessor::visit
pub struct ContextView(pub BenchContext);

impl PerCpu for ContextView {
    const NAME: &'static str = "procnotify_context";
    const BY_INDEX: bool = false;
    const STATE: bool = false;
    type View<'a> = &'a BenchContext;

    /// # Panics
    ///
    /// When the context cannot be created or an `AddStart` is vetoed.
    fn with_present(present: u32, max: u32) -> Self {
        let os = BenchOs::new(present, max);
        // SAFETY: the hooks go straight to the context, which calls them only
        // with its own values; `BenchDpc` defers nothing (see `dpc`).
        let hooks = unsafe { Monitor::<BenchDpc>::new(os) };
        let context = Context::new(os, hooks).expect("allocate the context's table");
        assert!(os::bring_up(&context, present), "bring up {present} processors");
        Self(context)
    }

    fn view(&self) -> &BenchContext {
        &self.0
    }

    /// Not measured (no state through the context): the slot's state
    /// through `Table::get`.
    fn read(view: &BenchContext, index: u32) -> u64 {
        view.table().get(index).map_or(0, |slot| slot.state() as u64)
    }

    /// Not measured: `Table::value` through `Context::table`.
    fn read_plain(view: &BenchContext, index: u32) -> u64 {
        view.table().value(index).map_or(0, |value| u64::from(value.index()))
    }

    /// Not measured: `Table::value` through `Context::table`.
    fn visit(view: &BenchContext, index: u32) {
        if let Some(value) = view.table().value(index) {
            value.visit(view.os());
        }
    }

    #[inline]
    fn read_plain_own(view: &BenchContext) -> u64 {
        view.current().map_or(0, |value| u64::from(value.index()))
    }

    #[inline]
    fn visit_own(view: &BenchContext) {
        if let Some(value) = view.current() {
            value.visit(view.os());
        }
    }
}

/// procnotify's loaded driver as the benchmarks build it.
pub type BenchDriver = Driver<BenchOs, Monitor<BenchDpc>>;

/// `procnotify_driver`: `Driver::context().current()` per lookup, for
/// information. The driver keeps its context in its own pool allocation and
/// reaches it through a raw pointer, so in a loop the compiler cannot tell
/// that the context's fields stay put: it reloads the table's index pointer
/// and capacity after each `Acquire` load, as it did for every `&Table`
/// before the table's mutable state moved out of line. A loop over many
/// lookups should take the `&Context` as a function argument (as
/// [`ContextView`]'s loops do) or a `Reader`.
pub struct DriverView(pub BenchDriver);

impl PerCpu for DriverView {
    const NAME: &'static str = "procnotify_driver";
    const BY_INDEX: bool = false;
    const STATE: bool = false;
    type View<'a> = &'a BenchDriver;

    /// # Panics
    ///
    /// When the driver does not load.
    fn with_present(present: u32, max: u32) -> Self {
        Self(Monitor::<BenchDpc>::load(BenchOs::new(present, max)).expect("load the driver"))
    }

    fn view(&self) -> &BenchDriver {
        &self.0
    }

    /// Not measured: the state through `Table::get`.
    fn read(view: &BenchDriver, index: u32) -> u64 {
        ContextView::read(view.context(), index)
    }

    /// Not measured: `Table::value`.
    fn read_plain(view: &BenchDriver, index: u32) -> u64 {
        ContextView::read_plain(view.context(), index)
    }

    /// Not measured: `Table::value`.
    fn visit(view: &BenchDriver, index: u32) {
        ContextView::visit(view.context(), index);
    }

    #[inline]
    fn read_plain_own(view: &BenchDriver) -> u64 {
        ContextView::read_plain_own(view.context())
    }

    #[inline]
    fn visit_own(view: &BenchDriver) {
        ContextView::visit_own(view.context());
    }
}
