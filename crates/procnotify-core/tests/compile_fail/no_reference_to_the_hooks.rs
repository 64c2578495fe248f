// A loaded driver hands out no reference to its hooks: with one, safe code
// could run procnotify's `online` hook (which queues a DPC on the value) on
// a value the engine does not keep.
use procnotify_sim::{Config, SimKernel, SimOs};

fn main() {
    let kernel = SimKernel::boot(Config::new(1, 2));
    let driver = SimOs::load_monitor(&kernel).unwrap();
    let _hooks = driver.context().hooks();
}
