// A driver name with a space (or empty, too long, non-ASCII, `%`): refused
// when compiled.
use procnotify_core::identity::{Identity, Name, PoolTag};
use procnotify_core::{name, pool_tag};

struct Driver;

impl Identity for Driver {
    const NAME: Name = name!("my driver");
    const POOL_TAG: PoolTag = pool_tag!(b"Drv ");
}

fn main() {
    let _ = Driver::NAME;
}
