// procnotify's hooks queue a DPC that reads the value later, so they may
// only run on values the engine keeps (and flushes before freeing): making
// them outside the engine (`Monitor::load` does it safely) takes `unsafe`.
use procnotify_sim::{Config, SimKernel, SimMonitor, SimOs};

fn main() {
    let kernel = SimKernel::boot(Config::new(1, 2));
    let _hooks = SimMonitor::new(SimOs::new(&kernel));
}
