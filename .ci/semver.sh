#!/usr/bin/env bash
# API check: the public API of each published crate against the baseline
# recorded in api/ (docs/publishing.md). Two comparisons, both must pass:
#
# 1. cargo-semver-checks, current rustdoc JSON against api/<crate>.json: a
#    change that breaks code written against the recorded API (an item
#    removed or renamed, a parameter added, a required method added to a
#    public trait, a lost auto trait, ...) fails unless the crate's version
#    already says so (0.1.x -> 0.2.0).
# 2. The listing, current against api/<crate>.txt (scripts/api-listing.py):
#    any change to the public API fails until it is recorded. This catches
#    what cargo-semver-checks does not look at, such as a parameter's or a
#    return value's type changing, and shows the change as a short diff.
#
# There is no published version and a CI clone may have no tags, so the
# baseline lives in the repository and is regenerated with one command when
# a change is intended: bash scripts/api-baseline.sh.
#
# Hygiene, as .ci/fuzz.sh: cargo-semver-checks is pinned to one version and
# installed into target/tools/bin of this checkout (not globally), then run
# from there; the current API is written to target/api/. Nothing outside
# target/ is written.
#
# Measured on this project's 2-core machine: installing cargo-semver-checks
# took 39.6 min of wall time under a load average of 10-12 (14.1 min of CPU
# time, so roughly 8-10 min on an idle 2-core machine); the check itself
# takes about 3 s (rustdoc JSON, then ~0.1 s of lints).
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.51.0
tools="$PWD/target/tools"
semver_checks="$tools/bin/cargo-semver-checks"
crates=(procnotify-core)

if [ "$("$semver_checks" --version 2>/dev/null)" != "cargo-semver-checks $version" ]; then
    echo "semver: installing cargo-semver-checks $version into $tools"
    cargo install --locked --quiet --version "$version" --root "$tools" cargo-semver-checks
fi
echo "semver: $("$semver_checks" --version) ($tools/bin)"

bash scripts/api-baseline.sh --current

format() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["format_version"])' "$1"; }
failed=()
for crate in "${crates[@]}"; do
    baseline="api/$crate.json"
    current="target/api/$crate.json"
    for file in "$baseline" "api/$crate.txt"; do
        if [ ! -f "$file" ]; then
            echo "semver: FAILED: no baseline $file (create it: bash scripts/api-baseline.sh, and commit it)"
            exit 1
        fi
    done
    if [ "$(format "$baseline")" != "$(format "$current")" ]; then
        echo "semver: FAILED: $baseline is rustdoc JSON format v$(format "$baseline")," \
            "this toolchain writes v$(format "$current") (did rust-toolchain.toml change?):" \
            "regenerate the baseline with 'bash scripts/api-baseline.sh' on the commit that" \
            "changed the toolchain, before any API change, and commit api/"
        exit 1
    fi

    echo "semver: $crate: cargo-semver-checks against $baseline"
    if ! "$semver_checks" semver-checks check-release --color never \
        --baseline-rustdoc "$baseline" --current-rustdoc "$current"; then
        failed+=("$crate: breaking change (cargo-semver-checks, above)")
    fi

    echo "semver: $crate: listing against api/$crate.txt"
    if ! diff -u --label "api/$crate.txt (recorded)" --label "$crate (this tree)" \
        "api/$crate.txt" "target/api/$crate.txt"; then
        failed+=("$crate: public API differs from api/$crate.txt (diff above: - recorded, + now)")
    else
        echo "semver: $crate: listing unchanged ($(wc -l <"api/$crate.txt") items)"
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    printf 'semver: FAILED: %s\n' "${failed[@]}"
    echo "  Unintended: restore the items or signatures named above."
    echo "  Intended: describe the change under [Unreleased] in the crate's CHANGELOG.md" \
        "(a breaking one under 'Changed' or 'Removed', marked Breaking), then record it:" \
        "bash scripts/api-baseline.sh, and commit api/."
    exit 1
fi
echo "semver: OK: ${crates[*]} match api/ (procnotify-wdk: Windows-only API, not checked here)"
