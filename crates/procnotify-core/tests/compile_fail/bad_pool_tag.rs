// A pool tag with a byte outside printable ASCII: refused when compiled.
use procnotify_core::identity::{Identity, Name, PoolTag};
use procnotify_core::{name, pool_tag};

struct Driver;

impl Identity for Driver {
    const NAME: Name = name!("driver");
    const POOL_TAG: PoolTag = pool_tag!(b"PN\0y");
}

fn main() {
    let _ = Driver::POOL_TAG;
}
