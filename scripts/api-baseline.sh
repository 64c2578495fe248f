#!/usr/bin/env bash
# The public API baseline that CI's API check (.ci/semver.sh) compares the
# published crates against; docs/publishing.md explains the check.
#
#   bash scripts/api-baseline.sh            regenerate api/<crate>.json and
#                                           api/<crate>.txt from this checkout
#                                           (then commit them)
#   bash scripts/api-baseline.sh --current  write the current API to
#                                           target/api/ only (what
#                                           .ci/semver.sh compares)
#
# Run it when a change to the public API is intended: after a breaking change
# has been described in the crate's CHANGELOG.md, or after rust-toolchain.toml
# moves to a Rust whose rustdoc JSON format differs (the check names both
# format versions then).
#
# Each file is the crate's rustdoc JSON, built the way cargo-semver-checks
# builds its own: the toolchain pinned by rust-toolchain.toml, with
# RUSTC_BOOTSTRAP=1 to unlock rustdoc's (unstable) JSON output, private and
# hidden items included, default features, the host target. The baseline and
# the current file come from this one function, so they always have the same
# format version, which cargo-semver-checks requires. <crate>.txt is the same
# API as sorted text, one item per line (scripts/api-listing.py): the file a
# reviewer reads in a diff, and the check for changes cargo-semver-checks does
# not see.
#
# procnotify-wdk is not listed: its API exists only on Windows targets, and
# building it there needs the WDK (docs/publishing.md).
#
# Bash on Linux (or WSL, or Git Bash on Windows); writes only target/api/ and,
# without --current, api/.
set -euo pipefail
cd "$(dirname "$0")/.."

crates=(procnotify-core)

mode=baseline
case "${1:-}" in
    "") ;;
    --current) mode=current ;;
    *)
        echo "usage: bash scripts/api-baseline.sh [--current]" >&2
        exit 2
        ;;
esac

out=target/api
mkdir -p "$out"
for crate in "${crates[@]}"; do
    lib="${crate//-/_}"
    # --document-private-items and --document-hidden-items as cargo-semver-checks
    # passes them (a struct's private fields decide whether it is constructible).
    RUSTC_BOOTSTRAP=1 \
        RUSTDOCFLAGS="-Z unstable-options --document-private-items --document-hidden-items --output-format=json --cap-lints=allow" \
        cargo doc --locked --quiet --lib --no-deps -p "$crate" --target-dir "$out/build"
    cp "$out/build/doc/$lib.json" "$out/$crate.json"
    python3 scripts/api-listing.py "$out/$crate.json" >"$out/$crate.txt"
    format="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["format_version"])' "$out/$crate.json")"
    if [ "$mode" = baseline ]; then
        mkdir -p api
        cp "$out/$crate.json" "$out/$crate.txt" api/
        echo "api-baseline: api/$crate.json ($(wc -c <"api/$crate.json") bytes, rustdoc JSON format v$format," \
            "$(cargo --version)) and api/$crate.txt ($(wc -l <"api/$crate.txt") lines)"
    else
        echo "api-baseline: $out/$crate.json and $out/$crate.txt: the current API (rustdoc JSON format v$format)"
    fi
done
