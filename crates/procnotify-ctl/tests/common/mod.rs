//! What procnotify-ctl's test files share: saved replies in temporary
//! files, the binary run on them, and the simulated machine the replies
//! come from.

#![allow(dead_code)] // not every test file uses each helper

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use procnotify_core::NtStatus;
use procnotify_sim::{Config, SimDriver, SimKernel, SimOs};

/// A file in the temporary folder, removed when dropped.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn with(bytes: &[u8]) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("procnotify-ctl-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, bytes).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn ctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_procnotify-ctl")).args(args).output().unwrap()
}

/// Runs `procnotify-ctl --reply <bytes> ARGS...`: exit code, stdout, stderr.
pub fn ctl_on(reply: &[u8], args: &[&str]) -> (i32, String, String) {
    let file = TempFile::with(reply);
    let output = ctl(&[&["--reply", file.path()], args].concat());
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status.code().unwrap(), text(output.stdout), text(output.stderr))
}

/// The scenario of `SCRIPT`, built in-process: 4 processors of at most 8,
/// a hot-add whose processor fails to start (index 4: vacant).
pub fn machine() -> (SimKernel, SimDriver) {
    let kernel = SimKernel::boot(Config::new(4, 8));
    let driver = SimOs::load_monitor(&kernel).unwrap();
    kernel.fail_next_start(NtStatus::UNSUCCESSFUL);
    kernel.hot_add();
    kernel.flush_dpcs();
    (kernel, driver)
}

/// The same scenario as the setup and first steps of a `simulate` script.
pub const SCRIPT: &str = "boot 4\nmax 8\nload\nhot-add fail-start\n";

/// `simulate script` on `script` (in a temporary file) with `flags`, in
/// this process: exit code, stdout, stderr.
pub fn simulate(script: &str, flags: &[&str]) -> (u8, String, String) {
    let file = TempFile::with(script.as_bytes());
    let args = [&["simulate", "script", file.path()], flags].concat();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = procnotify_sim::cli::main(args, &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}
