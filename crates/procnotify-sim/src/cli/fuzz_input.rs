//! The fuzz target's byte format, as `replay` reads it: the decoder and types
//! of [`crate::script`], the same code the fuzz target and the property test
//! run, so a crash file replays exactly as the fuzzer saw it.

pub use crate::script::{AddFault, Header, LoadFault, Op, Reported, decode};
