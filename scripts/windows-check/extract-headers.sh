#!/usr/bin/env bash
# extract-headers.sh DDK_GIT SDK_GIT WDF_GIT OUT
#
# Writes the header set the Windows check is known to work with into OUT, read
# with `git archive` from git copies (clones, bare or not, full or
# --filter=blob:none) of three public repositories at pinned commits:
#
#   OUT/ddk  <- DDK_GIT  T-RN-R/ddk_headers                   @ 12fb51132278d5410a66c604e4b88c3f6f235e47
#                        ("10.0.22000.0": the WDK's km/ and shared/)
#   OUT/sdk  <- SDK_GIT  marlersoft/microsoft_windows_sdk_cpp  @ 16b53593a29860fea1706e7a862b2145c0f1b6ee
#                        ("10.0.22000.196": the SDK's shared/)
#   OUT/wdf  <- WDF_GIT  microsoft/Windows-Driver-Frameworks   @ 3b9780e847cf68d6199dafe0f87650cf1f9c227f
#                        (MIT; src/publicinc/wdf/kmdf/1.33)
#
# and OUT/SOURCES, which names them. Then: run.sh --headers OUT.
# A part already extracted at its commit is left as it is. OUT must not be
# inside a git work tree unless git ignores it: the headers are Microsoft's
# and are never committed (procnotify's target/ is ignored).
set -euo pipefail

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -eq 4 ] || usage
ddk_git=$1 sdk_git=$2 wdf_git=$3 out=$4

die() { echo "extract-headers: $*" >&2; exit 1; }

out=$(realpath -m "$out")
near=$out; while [ ! -d "$near" ]; do near=$(dirname "$near"); done
if git -C "$near" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
        && ! git -C "$near" check-ignore -q "$out"; then
    die "$out is inside the git work tree $(git -C "$near" rev-parse --show-toplevel) and not ignored; extract the headers elsewhere (or under procnotify's target/)"
fi
mkdir -p "$out"

# gitdir PATH -> the git directory of a clone (bare or not)
gitdir() {
    local d
    d=$(git -C "$1" rev-parse --absolute-git-dir 2>/dev/null) || die "$1 is not a git repository"
    echo "$d"
}

# part NAME REPO_GIT UPSTREAM COMMIT PATHS...
part() {
    local name=$1 git; git=$(gitdir "$2"); local upstream=$3 commit=$4; shift 4
    local stamp="$out/$name/.extracted"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$commit" ]; then
        echo "extract-headers: $name: $upstream @ ${commit:0:12} already in $out/$name"
        return
    fi
    git --git-dir="$git" cat-file -e "$commit^{commit}" 2>/dev/null \
        || die "$2 has no commit $commit ($upstream); fetch it (git -C $2 fetch origin $commit)"
    rm -rf "$out/$name"
    mkdir -p "$out/$name"
    git --git-dir="$git" archive --format=tar "$commit" -- "$@" | tar -x -C "$out/$name"
    echo "$commit" > "$stamp"
    echo "extract-headers: $name: $upstream @ ${commit:0:12}: $(find "$out/$name" -type f -name '*.h' | wc -l) headers"
}

part ddk "$ddk_git" T-RN-R/ddk_headers 12fb51132278d5410a66c604e4b88c3f6f235e47 km shared
part sdk "$sdk_git" marlersoft/microsoft_windows_sdk_cpp 16b53593a29860fea1706e7a862b2145c0f1b6ee shared
part wdf "$wdf_git" microsoft/Windows-Driver-Frameworks 3b9780e847cf68d6199dafe0f87650cf1f9c227f src/publicinc/wdf/kmdf/1.33

cat > "$out/SOURCES" <<'EOF'
# The header set under this folder (scripts/windows-check/extract-headers.sh)
ddk T-RN-R/ddk_headers@12fb511
sdk marlersoft/microsoft_windows_sdk_cpp@16b5359
wdf microsoft/Windows-Driver-Frameworks@3b9780e
EOF
echo "extract-headers: done; now: scripts/windows-check/run.sh --headers $out"
