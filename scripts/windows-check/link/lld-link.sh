#!/usr/bin/env bash
# The linker the Windows check gives rustc (`target.x86_64-pc-windows-msvc.linker`):
# lld-link with the arguments rustc passes, wdk-build's `/DRIVER
# /SUBSYSTEM:NATIVE /ENTRY:FxDriverEntry /INTEGRITYCHECK ...` among them, less
# the two lld-link cannot parse (it takes an unknown /OPTION for a file name):
#   /KERNEL           link.exe only warns (LNK4257) when an object was not
#                     compiled with cl's /kernel (rustc's never are, and
#                     wdk-build tells link.exe to ignore that warning) and
#                     disables incremental linking, which lld-link does not do
#   /MAPINFO:EXPORTS  adds the exports to the /MAP file; the pe step lists
#                     the exports from the image itself
# Everything rustc asked for, and what was dropped, is written to
# $WINDOWS_CHECK_LINK_LOG, and the symbols the inputs use without defining
# them to $WINDOWS_CHECK_LINK_LOG.undefined. docs/windows-check.md lists the other differences.
set -euo pipefail
kept=() dropped=()
for arg in "$@"; do
    case "${arg^^}" in
        /KERNEL|-KERNEL|/MAPINFO:EXPORTS|-MAPINFO:EXPORTS) dropped+=("$arg");;
        @*) echo "lld-link.sh: response file $arg: its contents are passed unfiltered" >&2; kept+=("$arg");;
        *) kept+=("$arg");;
    esac
done
if [ -n "${WINDOWS_CHECK_LINK_LOG:-}" ]; then
    {
        echo "# the arguments rustc passed to the linker, one per line"
        echo "# dropped: ${dropped[*]}"
        printf '%s\n' "$@"
    } > "$WINDOWS_CHECK_LINK_LOG"
    # What the inputs refer to without defining (rustc deletes its objects
    # after the link): the link step checks that every .def entry is used.
    inputs=()
    for arg in "${kept[@]}"; do
        case "$arg" in /*.o|/*.obj|/*.rlib|/*.lib) [ -f "$arg" ] && inputs+=("$arg");; esac
    done
    "${WINDOWS_CHECK_LLVM_NM:-llvm-nm}" -u -j --no-sort "${inputs[@]}" 2>/dev/null \
        | grep -v -e ':$' -e '^$' | sort -u > "$WINDOWS_CHECK_LINK_LOG.undefined" || true
fi
exec "${WINDOWS_CHECK_LLD_LINK:-lld-link}" "${kept[@]}"
