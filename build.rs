//! Build script. On a Windows host it lets `wdk-build` configure the driver
//! binary (WDK library paths, linker arguments, KMDF version from
//! `[package.metadata.wdk.driver-model]`). On any other host it does nothing:
//! the portable engine and the simulator need no build step.

#[cfg(windows)]
fn main() -> Result<(), wdk_build::ConfigError> {
    println!("cargo::rerun-if-changed=build.rs");
    wdk_build::configure_wdk_binary_build()
}

#[cfg(not(windows))]
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
}
