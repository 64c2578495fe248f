#!/usr/bin/env bash
# The Windows check: build procnotify.sys on Linux the way `cargo make` builds
# it on Windows, link it, check the image and its PDB, and run it in an
# emulator. docs/windows-check.md says what each step proves and what it
# does not.
#
#   scripts/windows-check/run.sh --headers DIR [--profile debug|release|both]
#                                [--steps compile,link,pe,pdb,emulate] [--skip-emulate]
#
#   --headers DIR   the WDK headers: a folder written by extract-headers.sh
#                   (the three public header repositories at the pinned
#                   commits) or a folder holding a WDK's Include folder
#                   (DIR/Include/10.0.X.0/{km,shared}, DIR/Include/wdf/kmdf/1.33)
#   --profile P     debug, release or both (default both)
#   --steps LIST    which of compile, link, pe, pdb, emulate to run (default
#                   all); headers and toolchain always run. A later step uses
#                   what an earlier run left in target/windows-check/.
#   --skip-emulate  do not run the emulation step; the result is then
#                   "partial", never "pass"
#   --sdk-version V the version folder to use from a WDK copy with several
#
# WINDOWS_CHECK_TOOLCHAIN=<rustup toolchain> builds with another toolchain
# than rust-toolchain.toml pins (to preview moving the pin), in
# target/windows-check-<toolchain>/; such a run is never "pass".
#
# Steps, in order (each prints `== <step>: PASS|FAIL ...`; the first failure
# ends the run with exit status 1):
#   headers    lay out the WDK content root wdk-build expects (symlinks, with
#              case aliases) in target/windows-check/wdkroot
#   toolchain  the toolchain rust-toolchain.toml pins, with rust-src for
#              -Zbuild-std=core,alloc (RUSTC_BOOTSTRAP=1); wdk-build 0.6.0
#              patched to run on this host (wdk-build-0.6.0.patch); clang-cl,
#              lld-link, llvm-dlltool, llvm-pdbutil; the Python venv
#   compile    cargo check and cargo clippy -D warnings of procnotify and
#              procnotify-wdk for x86_64-pc-windows-msvc
#   link       per profile: import libraries from link/*.def, the stand-in
#              WdfDriverEntry.lib, cargo build with lld-link: procnotify.sys
#              and procnotify.pdb in target/windows-check/<profile>/
#   pe         per profile: the image's headers, sections, imports (against
#              the .def files and ntoskrnl-allowlist.tsv) and exports
#   pdb        per profile: the NatVis stream, DEBUG_CONTEXT, and every type
#              and field the NatVis uses, against the PDB
#   emulate    per profile: emulate/emulate.py on the linked image
# The last line, `== result: ...`, is also written to target/windows-check/result.
#
# Needs: rustup with the pinned toolchain and its rust-src component; Debian
# packages clang, lld, llvm, libclang-dev (14 or later), python3 with venv,
# git, patch; network for crates.io and PyPI on the first run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
wc=$repo/target/windows-check
triple=x86_64-pc-windows-msvc
kmdf=1.33 kmdf_minor=33

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "windows-check: $*" >&2; exit 2; }

headers="" profile=both steps="compile,link,pe,pdb,emulate" skip_emulate=0 sdk_version=""
while [ $# -gt 0 ]; do
    case "$1" in
        --headers) headers=${2:?}; shift 2;;
        --profile) profile=${2:?}; shift 2;;
        --steps) steps=${2:?}; shift 2;;
        --skip-emulate) skip_emulate=1; shift;;
        --sdk-version) sdk_version=${2:?}; shift 2;;
        -h|--help) usage; exit 0;;
        *) die "unknown argument $1 (see --help)";;
    esac
done
[ -n "$headers" ] || die "--headers DIR is required (see --help and docs/windows-check.md)"
case "$profile" in debug) profiles=(debug);; release) profiles=(release);; both) profiles=(debug release);;
    *) die "--profile must be debug, release or both";; esac
IFS=, read -r -a want <<<"$steps"
for s in "${want[@]}"; do
    case "$s" in compile|link|pe|pdb|emulate) ;; *) die "unknown step $s (compile, link, pe, pdb, emulate)";; esac
done
wanted() { local s; for s in "${want[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

# The toolchain rust-toolchain.toml pins; WINDOWS_CHECK_TOOLCHAIN=<name>
# previews a move of the pin (its own scratch folder; never a "pass").
pinned=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$repo/rust-toolchain.toml")
[ -n "$pinned" ] || die "no channel in rust-toolchain.toml"
toolchain=${WINDOWS_CHECK_TOOLCHAIN:-$pinned}
[ "$toolchain" = "$pinned" ] || wc=$repo/target/windows-check-$toolchain

mkdir -p "$wc/logs"
export PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
export CARGO_TERM_COLOR=never
results=()
status=pass

commit=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo none)
tree=$([ -z "$(git -C "$repo" status --porcelain 2>/dev/null)" ] && echo clean || echo modified)

finish() {
    local s; [ "$status" = pass ] && [ "${#want[@]}" -lt 5 ] && status=partial
    [ "$status" = pass ] && [ "$skip_emulate" = 1 ] && status=partial
    [ "$status" = pass ] && [ "$toolchain" != "$pinned" ] && status=partial
    s=$(IFS=,; echo "${results[*]}")
    local result="== result: commit=$commit tree=$tree toolchain=$toolchain status=$status profiles=$(IFS=,; echo "${profiles[*]}") steps=$s"
    echo "$result"
    echo "${result#== result: }" > "$wc/result"
    [ "$status" = fail ] && exit 1
    exit 0
}
record() { results+=("$1:$2"); }
fail() { # STEP DETAIL [LOG]
    echo "== $1: FAIL $2"
    if [ -n "${3:-}" ] && [ -f "$3" ]; then
        echo "   last lines of $3:"
        grep -E '^(error|warning: unused|  --> )|error:|undefined symbol' "$3" | head -40 | sed 's/^/   | /' || true
        tail -15 "$3" | sed 's/^/   | /'
    fi
    record "$1" fail; status=fail; finish
}
pass() { echo "== $1: PASS $2"; record "$1" pass; }
logged() { # LOG CMD... : run with output to LOG, in the scratch tree
    local log=$1; shift
    (cd "$wc/tree" && "$@") >"$log" 2>&1
}

# ---------------------------------------------------------------- headers
python3 -m wcheck.wdkroot --headers "$headers" --out "$wc/wdkroot" ${sdk_version:+--sdk-version "$sdk_version"} \
    || { record headers fail; status=fail; finish; }
record headers pass
wdk_version=$(ls "$wc/wdkroot/Lib" | grep '^10\.' | head -1)
km_lib=$wc/wdkroot/Lib/$wdk_version/km/x64
kmdf_lib=$wc/wdkroot/Lib/wdf/kmdf/x64/$kmdf

# ---------------------------------------------------------------- toolchain
rustc_path=$(rustup which --toolchain "$toolchain" rustc 2>/dev/null) \
    || fail toolchain "rustup has no toolchain $toolchain (rustup toolchain install $toolchain --component clippy)"
tc_bin=$(dirname "$rustc_path")
sysroot=$("$tc_bin/rustc" --print sysroot)
[ -f "$sysroot/lib/rustlib/src/rust/library/core/Cargo.toml" ] \
    || fail toolchain "toolchain $toolchain has no rust-src (rustup component add --toolchain $toolchain rust-src)"
[ -x "$tc_bin/cargo-clippy" ] || fail toolchain "toolchain $toolchain has no clippy (rustup component add --toolchain $toolchain clippy)"
rustc_version=$("$tc_bin/rustc" --version)

if [ -n "${WINDOWS_CHECK_LLVM_BIN:-}" ]; then llvm_bin=$WINDOWS_CHECK_LLVM_BIN
elif command -v llvm-config >/dev/null; then llvm_bin=$(llvm-config --bindir)
else llvm_bin=$(dirname "$(command -v clang || echo /usr/bin/clang)"); fi
for t in clang lld-link llvm-dlltool llvm-lib llvm-ar llvm-nm llvm-pdbutil; do
    [ -x "$llvm_bin/$t" ] || command -v "$t" >/dev/null || fail toolchain "$t not found (Debian: apt-get install clang lld llvm)"
done
tool() { if [ -x "$llvm_bin/$1" ]; then echo "$llvm_bin/$1"; else command -v "$1"; fi; }
libclang_dir=${LIBCLANG_PATH:-$(llvm-config --libdir 2>/dev/null || echo "$(dirname "$llvm_bin")/lib")}
ls "$libclang_dir"/libclang*.so* >/dev/null 2>&1 || fail toolchain "no libclang in $libclang_dir (Debian: apt-get install libclang-dev; or set LIBCLANG_PATH)"
mkdir -p "$wc/bin"
ln -sfn "$(tool clang)" "$wc/bin/clang-cl"   # clang picks its cl driver mode from this name
export PATH="$tc_bin:$wc/bin:$llvm_bin:$PATH"
export RUSTC="$tc_bin/rustc" CARGO="$tc_bin/cargo" RUSTC_BOOTSTRAP=1 LIBCLANG_PATH="$libclang_dir"
export WDKContentRoot="$wc/wdkroot"
tri=${triple//-/_}
export "CC_$tri=clang-cl" "AR_$tri=$(tool llvm-lib)" "CFLAGS_$tri=--target=$triple"
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS RUSTUP_TOOLCHAIN CARGO_TARGET_DIR CARGO_BUILD_TARGET

# The build runs in a copy of the working tree (wcheck/treesync.py says why).
sync=$(python3 -m wcheck.treesync "$repo" "$wc/tree") || fail toolchain "could not copy the working tree to $wc/tree"
logged "$wc/logs/fetch.log" cargo fetch --locked --target "$triple" \
    || fail toolchain "cargo fetch --locked failed (crates.io reachable? Cargo.lock current?)" "$wc/logs/fetch.log"

# wdk-build 0.6.0, patched: from the .crate whose checksum Cargo.lock records.
lock_sum=$(awk '/^name = "wdk-build"$/ {f=1} f && /^checksum/ {gsub(/"/, "", $3); print $3; exit}' "$repo/Cargo.lock")
wdk_version_locked=$(awk '/^name = "wdk-build"$/ {getline; gsub(/"/, "", $3); print $3; exit}' "$repo/Cargo.lock")
[ "$wdk_version_locked" = 0.6.0 ] || fail toolchain "Cargo.lock has wdk-build $wdk_version_locked; wdk-build-0.6.0.patch is for 0.6.0"
crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/wdk-build-0.6.0.crate 2>/dev/null | head -1)
[ -n "$crate" ] && [ "$(sha256sum "$crate" | cut -d' ' -f1)" = "$lock_sum" ] \
    || fail toolchain "wdk-build-0.6.0.crate missing from the cargo cache or not the one Cargo.lock names"
patched=$wc/wdk-build-0.6.0
patch_stamp="$lock_sum $(sha256sum "$here/wdk-build-0.6.0.patch" | cut -d' ' -f1)"
if [ "$(cat "$patched/.patched" 2>/dev/null)" != "$patch_stamp" ]; then
    rm -rf "$patched" && mkdir -p "$patched"
    tar -xzf "$crate" -C "$patched" --strip-components=1
    find "$patched" -type f \( -name '*.rs' -o -name '*.toml' \) -exec sed -i 's/\r$//' {} +
    patch -s -p1 -d "$patched" < "$here/wdk-build-0.6.0.patch" >"$wc/logs/patch.log" 2>&1 \
        || fail toolchain "wdk-build-0.6.0.patch does not apply" "$wc/logs/patch.log"
    echo "$patch_stamp" > "$patched/.patched"
fi
cargo_cfg=(--config "patch.crates-io.wdk-build.path=\"$patched\"")

# The Python virtual environment: pefile (and the emulation's requirements).
venv=$wc/venv
py=${WINDOWS_CHECK_PYTHON:-python3}
reqs=("$here/requirements.txt")
[ -f "$here/emulate/requirements.txt" ] && reqs+=("$here/emulate/requirements.txt")
venv_stamp=$(cat "${reqs[@]}" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$venv_stamp" ]; then
    rm -rf "$venv"
    "$py" -m venv "$venv" >"$wc/logs/venv.log" 2>&1 || fail toolchain "$py -m venv failed" "$wc/logs/venv.log"
    for r in "${reqs[@]}"; do
        "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$r" >>"$wc/logs/venv.log" 2>&1 \
            || fail toolchain "pip install -r ${r#$repo/} failed" "$wc/logs/venv.log"
    done
    echo "$venv_stamp" > "$venv/.requirements"
fi
vpy=$venv/bin/python
pefile_version=$("$vpy" -c 'import pefile; print(pefile.__version__)' 2>/dev/null) || fail toolchain "pefile missing from $venv"
pass toolchain "$rustc_version ($([ "$toolchain" = "$pinned" ] && echo "rust-toolchain.toml" || echo "WINDOWS_CHECK_TOOLCHAIN, NOT the pinned $pinned")) + rust-src, -Zbuild-std=core,alloc, RUSTC_BOOTSTRAP=1; wdk-build 0.6.0 patched; $("$(tool clang)" --version | head -1 | sed 's/ (.*//'), lld-link $("$(tool lld-link)" --version | sed 's/.*LLD //;s/ .*//'); $($vpy --version) pefile $pefile_version; source $sync"

build_args=(-Zbuild-std=core,alloc --target "$triple" --lib -p procnotify -p procnotify-wdk
    --features procnotify/cross-host-wdk-build "${cargo_cfg[@]}"
    # compiler_builtins optimised in every profile, as in the prebuilt
    # sysroot `cargo make` links: unoptimised, it keeps libm's fma/fmaf
    # helpers, which call the C library's fma/fmaf that no kernel exports.
    --config 'profile.dev.package.compiler_builtins.opt-level=3')

# ---------------------------------------------------------------- compile
if wanted compile; then
    logged "$wc/logs/check.log" cargo check "${build_args[@]}" \
        || fail compile "cargo check (${triple})" "$wc/logs/check.log"
    logged "$wc/logs/clippy.log" cargo clippy "${build_args[@]}" -- -D warnings \
        || fail compile "cargo clippy -D warnings (${triple})" "$wc/logs/clippy.log"
    pass compile "cargo check + clippy -D warnings: procnotify, procnotify-wdk for $triple ($rustc_version)"
fi

# ---------------------------------------------------------------- link
import_libs() {
    local def lib dir
    mkdir -p "$km_lib" "$kmdf_lib"
    for def in "$here"/link/*.def; do
        lib=$(basename "$def" .def).lib
        dir=$km_lib; [ "$lib" = WdfLdr.lib ] && dir=$kmdf_lib
        "$(tool llvm-dlltool)" -m i386:x86-64 -d "$def" -l "$dir/$lib"
    done
    # A static library of the WDK (/GS fast-fail helpers); nothing of it is needed.
    rm -f "$km_lib/BufferOverflowFastFailK.lib"
    "$(tool llvm-ar)" rcs "$km_lib/BufferOverflowFastFailK.lib"
    # The stand-in for WdfDriverEntry.lib (link/wdf_driver_entry_standin.c says what it is).
    local inc=$wc/wdkroot/Include/$wdk_version
    # The WDK headers are system headers here (/imsvc): their warnings are
    # not the stand-in's, which must have none (/W4 /WX). `--` ends the
    # options: clang-cl would read /work/... as the option /w.
    clang-cl --target=$triple /nologo /c /O2 /GS- /Zl /W4 /WX \
        /D_WIN64 /D_AMD64_ /DAMD64 /D_KERNEL_MODE /DKMDF_VERSION_MAJOR=1 /DKMDF_VERSION_MINOR=$kmdf_minor /DWDF_STUB \
        /imsvc"$inc/km/crt" /imsvc"$inc/km" /imsvc"$inc/shared" /imsvc"$wc/wdkroot/Include/wdf/kmdf/$kmdf" \
        /Fo"$wc/wdf_driver_entry_standin.obj" -- "$here/link/wdf_driver_entry_standin.c"
    rm -f "$kmdf_lib/WdfDriverEntry.lib"
    "$(tool llvm-lib)" /nologo /out:"$kmdf_lib/WdfDriverEntry.lib" "$wc/wdf_driver_entry_standin.obj"
}

link_profile() {
    local p=$1 out=$wc/$1 flag=() log=$wc/logs/link-$1.log
    [ "$p" = release ] && flag=(--release)
    mkdir -p "$out"
    rm -f "$out"/procnotify.{sys,pdb,map} "$out"/link-args.txt*
    # Remove the previous link's output so that cargo links again with the
    # current import libraries and stand-in.
    rm -f "$wc/tree/target/$triple/$p/deps/procnotify.dll" "$wc/tree/target/$triple/$p/procnotify.dll"
    logged "$log" env WINDOWS_CHECK_LINK_LOG="$out/link-args.txt" WINDOWS_CHECK_LLD_LINK="$(tool lld-link)" \
            WINDOWS_CHECK_LLVM_NM="$(tool llvm-nm)" \
        cargo build "${build_args[@]}" "${flag[@]}" --config "target.$triple.linker=\"$here/link/lld-link.sh\"" || {
        if grep -q 'undefined symbol' "$log"; then
            "$vpy" -m wcheck.defs undefined "link[$p]" "$log" "$here"/link/*.def || true
        fi
        fail "link[$p]" "cargo build${flag:+ ${flag[*]}} with lld-link" "$log"
    }
    local built=$wc/tree/target/$triple/$p
    cp "$built/procnotify.dll" "$out/procnotify.sys"
    [ -f "$built/procnotify.pdb" ] && cp "$built/procnotify.pdb" "$out/procnotify.pdb"
    [ -f "$built/deps/procnotify.map" ] && cp "$built/deps/procnotify.map" "$out/procnotify.map"
    local sum
    sum=$("$vpy" -m wcheck.pe checksum "$out/procnotify.sys") || fail "link[$p]" "could not set the PE checksum"
    local pdb="no PDB"
    [ -f "$out/procnotify.pdb" ] && pdb="procnotify.pdb $(stat -c %s "$out/procnotify.pdb" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta') B"
    pass "link[$p]" "procnotify.sys $(stat -c %s "$out/procnotify.sys" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta') B, $pdb; lld-link with wdk-build's arguments ($(sed -n 's/^# dropped: *//p' "$out/link-args.txt" | sed 's/^$/none/') dropped); $sum"
}

if wanted link; then
    import_libs >"$wc/logs/import-libs.log" 2>&1 \
        || fail link "import libraries or the stand-in stub" "$wc/logs/import-libs.log"
    for p in "${profiles[@]}"; do link_profile "$p"; done
    if [ "${#profiles[@]}" = 2 ]; then
        "$vpy" -m wcheck.defs referenced "link .def" "$here"/link/*.def -- "$wc"/{debug,release}/link-args.txt.undefined \
            || fail "link .def" "a stale entry in link/*.def"
        record "link .def" pass
    else
        echo "== link .def: SKIPPED (needs both profiles linked: an entry may be used by one only)"
    fi
fi
if wanted pe; then
    for p in "${profiles[@]}"; do
        [ -f "$wc/$p/procnotify.sys" ] || fail "pe[$p]" "no $wc/$p/procnotify.sys (run the link step)"
        "$vpy" -m wcheck.pe check --image "$wc/$p/procnotify.sys" --profile "$p" --defs "$here"/link/*.def \
            --allowlist "$here/ntoskrnl-allowlist.tsv" --inf "$repo/inf/procnotify.inx" \
            --exports "$here/exports.tsv" || fail "pe[$p]" "see the lines above"
        record "pe[$p]" pass
    done
fi
if wanted pdb; then
    for p in "${profiles[@]}"; do
        [ -f "$wc/$p/procnotify.pdb" ] || fail "pdb[$p]" "no $wc/$p/procnotify.pdb (run the link step)"
        "$vpy" -m wcheck.pdb --pdb "$wc/$p/procnotify.pdb" --natvis "$repo/src/procnotify.natvis" --profile "$p" \
            --pdbutil "$(tool llvm-pdbutil)" --rustc "$rustc_version" || fail "pdb[$p]" "see the lines above"
        record "pdb[$p]" pass
    done
fi
if wanted emulate; then
    for p in "${profiles[@]}"; do
        if [ "$skip_emulate" = 1 ]; then
            echo "== emulate[$p]: SKIPPED (--skip-emulate)"; record "emulate[$p]" skipped
        elif [ ! -f "$here/emulate/emulate.py" ]; then
            fail "emulate[$p]" "not present: scripts/windows-check/emulate/emulate.py (--skip-emulate runs the other steps)"
        else
            "$vpy" "$here/emulate/emulate.py" --sys "$wc/$p/procnotify.sys" --pdb "$wc/$p/procnotify.pdb" --profile "$p" \
                || fail "emulate[$p]" "emulate.py exited with status $? (see its lines above)"
            record "emulate[$p]" pass
        fi
    done
fi
finish
