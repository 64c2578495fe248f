//! Build script. When the TARGET is Windows it lets `wdk-build` configure the
//! driver binary (WDK library paths, linker arguments, KMDF version from
//! `[package.metadata.wdk.driver-model]`); for any other target it does
//! nothing: the portable engine and the simulator need no build step.
//!
//! A build script runs on the HOST, so `cfg(windows)` here is the host's.
//! On a Windows host (`cargo make`) wdk-build is always a build-dependency.
//! On any other host it is one only with the `cross-host-wdk-build` feature,
//! which the Windows check (`scripts/windows-check/run.sh`) enables together
//! with a wdk-build patched to compile there. Without the feature, a
//! Windows-target build from another host gets a warning and no driver
//! configuration: `cargo check` and clippy work, a link would not.

#[cfg(windows)]
fn main() -> Result<(), wdk_build::ConfigError> {
    println!("cargo::rerun-if-changed=build.rs");
    if target_is_windows() {
        wdk_build::configure_wdk_binary_build()?;
    }
    Ok(())
}

#[cfg(not(windows))]
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if target_is_windows() {
        configure_from_other_host();
    }
}

/// The same configuration as on a Windows host; an error ends the build
/// with the message `main` returning it would print there.
#[cfg(all(not(windows), feature = "cross-host-wdk-build"))]
fn configure_from_other_host() {
    if let Err(error) = wdk_build::configure_wdk_binary_build() {
        eprintln!("Error: {error:?}");
        std::process::exit(1);
    }
}

#[cfg(all(not(windows), not(feature = "cross-host-wdk-build")))]
fn configure_from_other_host() {
    println!(
        "cargo::warning=procnotify: Windows target on a non-Windows host without the \
         `cross-host-wdk-build` feature: wdk-build's driver configuration (link arguments, \
         WDK library paths) is skipped; scripts/windows-check/run.sh builds the driver here"
    );
}

fn target_is_windows() -> bool {
    std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "windows")
}
