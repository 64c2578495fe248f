//! What must not compile. Each file in `compile_fail/` is a program a user
//! could write against the public API; the test passes only if every one of
//! them fails to build with the error recorded beside it (`.stderr`).
//!
//! - `bad_pool_tag.rs`, `bad_name.rs`: an invalid pool tag or driver name
//!   is a build error, not a silent odd tag in PoolMon or a run-time panic.
//! - `dpc_outside_its_value.rs`: the soundness review's first reproducer (a
//!   DPC outside a `PerProcessor`, queued from safe code) no longer builds:
//!   queueing is `unsafe` and takes the whole value.
//! - `monitor_new_is_unsafe.rs`, `no_reference_to_the_hooks.rs`:
//!   procnotify's hooks, which queue DPCs on their values, cannot be made
//!   outside the engine without `unsafe`, nor reached through a loaded
//!   driver.
//!
//! Regenerate the expected errors after a deliberate change with
//! `TRYBUILD=overwrite cargo test -p procnotify-core --test compile_fail`.
//! The messages are rustc's, so a new toolchain may reword them: the pinned
//! one (`rust-toolchain.toml`) is what they were recorded with.

#[test]
fn misuse_does_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile_fail/*.rs");
}
