#!/usr/bin/env bash
# Runs the README's `cargo test --workspace` as Windows executables on Linux:
# the suite built for x86_64-pc-windows-gnu (MinGW-w64) and run under Wine.
# How docs/windows.md §3's "every test is portable" was checked before any
# Windows host ran it. Not part of .ci/run: it installs Wine and MinGW-w64 and
# rebuilds std, ~20 minutes on 2 cores. Needs root for apt-get, and Debian's
# rustc with its library sources (rustc-web, rust-web-src: wincheck's
# toolchain), since rustup's toolchain here has no Windows target.
#
# What differs from a Windows host, on purpose:
# - a scratch copy of HEAD without the root package's Windows-only
#   dependencies and build step (wdk-sys and wdk-build need the WDK; the
#   tests compile them but never link them), and without procnotify-wdk
#   (no test target);
# - windows-gnu instead of msvc (no MSVC linker here), and std rebuilt with
#   -Zbuild-std, which builds std itself with the profile's `panic`: hence
#   CARGO_PROFILE_DEV_PANIC=unwind (a Windows host links the prebuilt std,
#   which has both runtimes);
# - Wine 8.0 has no bcryptprimitives.dll, whose ProcessPrng Rust's std
#   imports: a stub forwarding to advapi32's SystemFunction036 is compiled
#   with MinGW into the scratch Wine prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work="${CARGO_TARGET_DIR:-$repo/target}/wine-tests"
mkdir -p "$work"; work=$(cd "$work" && pwd)

if ! command -v x86_64-w64-mingw32-gcc >/dev/null || [ ! -x /usr/lib/wine/wine64 ]; then
    [ "$(id -u)" = 0 ] || { echo "wine tests: need wine64 and gcc-mingw-w64-x86-64 (apt-get as root)"; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wine64 gcc-mingw-w64-x86-64 >/dev/null
fi
[ -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/src/rust/library/std" ] ||
    { echo "wine tests: need Debian's rustc-web and rust-web-src (see wincheck's README)"; exit 1; }

# The scratch copy.
rm -rf "$work/src"; mkdir -p "$work/src"
git archive HEAD | tar -x -C "$work/src"
python3 - "$work/src" <<'PY'
import pathlib, re, sys
root = pathlib.Path(sys.argv[1])
manifest = root / "Cargo.toml"
s = manifest.read_text()
s, n = re.subn(r"\[target\.'cfg\(windows\)'\.dependencies\]\n(?:[^\n\[]+\n)+", "", s, count=1)
s, m = re.subn(r"\[target\.'cfg\(windows\)'\.build-dependencies\]\n(?:[^\n\[]+\n)+", "", s, count=1)
assert n == 1 and m == 1, "root Cargo.toml: the cfg(windows) dependency tables changed shape"
manifest.write_text(s)
(root / "build.rs").write_text('fn main() {\n    println!("cargo::rerun-if-changed=build.rs");\n}\n')
PY

# The Wine prefix, with the bcryptprimitives.dll stub.
export WINEPREFIX="$work/wineprefix" WINEDEBUG=-all PATH="/usr/lib/wine:$PATH"
mkdir -p "$work/stub"
cat > "$work/stub/bcryptprimitives.c" <<'C'
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len) {
        ULONG n = len > 0x10000 ? 0x10000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
C
x86_64-w64-mingw32-gcc -shared -o "$work/stub/bcryptprimitives.dll" "$work/stub/bcryptprimitives.c" -ladvapi32
[ -d "$WINEPREFIX/drive_c/windows/system32" ] || wine64 wineboot --init >/dev/null 2>&1
cp "$work/stub/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"

# The suite, exactly as `cargo test --workspace` runs it, as Windows executables.
cd "$work/src"
unset RUSTUP_TOOLCHAIN RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$work/target"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine64
export CARGO_PROFILE_DEV_PANIC=unwind
status=0
/usr/bin/cargo test --workspace --exclude procnotify-wdk -Zbuild-std --target x86_64-pc-windows-gnu --no-fail-fast \
    >"$work/test.log" 2>&1 || status=$?
grep -E "^\s+Running|^\s+Doc-tests|^test result|FAILED|panicked" "$work/test.log" || true
grep -E "^test result" "$work/test.log" |
    awk '{p += $4; f += $6; i += $8} END {printf "wine tests: %d passed, %d failed, %d ignored in %d suites\n", p, f, i, NR}'
[ "$status" = 0 ] || echo "wine tests: FAILED (exit $status; full log: $work/test.log)"
exit "$status"
