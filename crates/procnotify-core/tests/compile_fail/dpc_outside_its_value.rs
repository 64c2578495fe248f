// Soundness review, finding 1: a DPC that is not inside a `PerProcessor`,
// queued from safe code, made the routine read and write past it. Queueing
// is now `unsafe` (and takes the whole value), so this does not compile.
use procnotify_core::monitor::TargetedDpc;
use procnotify_core::{ProcNumber, Table};
use procnotify_sim::{Config, SimDpc, SimKernel, SimOs};

fn main() {
    let kernel = SimKernel::boot(Config::new(4, 4));
    let os = SimOs::new(&kernel);
    let table = Table::<SimDpc, _>::new(4, kernel.pool().clone()).unwrap();
    let mut writer = table.writer().unwrap();
    let slot = writer.get_or_insert(3, ProcNumber::dense(3), |p| SimDpc::init(&os, p)).unwrap();
    slot.value().queue(&os, ProcNumber::dense(0)).unwrap();
    kernel.flush_dpcs();
}
