//! What must not compile. Each file in `compile_fail/` is a program a user
//! could write against the public API; the test passes only if every one of
//! them fails to build with the error recorded beside it (`.stderr`).
//!
//! - `bad_pool_tag.rs`, `bad_name.rs`: an invalid pool tag or driver name
//!   is a build error, not a silent odd tag in PoolMon or a run-time panic.
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
