#!/usr/bin/env python3
"""Runs the host-side commands of docs/windows.md against a real QEMU.

Every fenced block that docs/windows.md marks with `<!-- runbook-check: NAME -->`
is read from the file (so the docs and this check cannot drift) and run:

- qemu-disk, tools-iso, tools-iso-xorriso: run with bash in a scratch folder,
  then their output is inspected (qemu-img info, isoinfo);
- qemu-install, qemu-run: run with bash with `-S` appended, so QEMU builds the
  whole machine (devices, disk, CD-ROMs, user networking with its forwarded
  port, QMP, VNC, serial) and waits with the CPUs stopped: no Windows needed;
- qemu-monitor, qemu-monitor-iso: the monitor lines, sent through QMP's
  human-monitor-command to the VM of qemu-run;
- hot-add: run with bash against that VM (scripts/add-qemu-vcpu.sh over QMP);
- bridge-acl, bridge-netdev: only as root inside a private network and mount
  namespace (.ci/windows-runbook.sh sets it up): without the ACL QEMU must
  refuse the bridge, with it the VM of qemu-run must start on br0.

Without a usable /dev/kvm the commands run with `accel=tcg` and `-cpu max`
instead of `accel=kvm` and `-cpu host` (printed when it happens); nothing else
is changed. Exit status 0 only if every check passed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "windows.md"
REQUIRED = [
    "qemu-disk",
    "qemu-install",
    "qemu-run",
    "bridge-acl",
    "bridge-netdev",
    "tools-iso",
    "tools-iso-xorriso",
    "hot-add",
    "qemu-monitor",
    "qemu-monitor-iso",
]
QMP_SOCKET = "/tmp/procnotify-qmp.sock"
checks: list[str] = []


def fail(message: str) -> None:
    print(f"runbook check: FAILED: {message}")
    sys.exit(1)


def ok(message: str) -> None:
    checks.append(message)
    print(f"  ok: {message}")


def blocks() -> dict[str, str]:
    """The marked blocks: `<!-- runbook-check: NAME -->`, then a fenced block."""
    text = DOC.read_text()
    found = {}
    pattern = re.compile(r"<!-- runbook-check: ([a-z0-9-]+) -->\n```[a-z]*\n(.*?)```", re.S)
    for name, body in pattern.findall(text):
        if name in found:
            fail(f"docs/windows.md marks two blocks {name}")
        found[name] = body
    missing = [name for name in REQUIRED if name not in found]
    if missing:
        fail(f"docs/windows.md has no block marked runbook-check for: {', '.join(missing)}")
    unknown = [name for name in found if name not in REQUIRED]
    if unknown:
        fail(f"blocks marked in docs/windows.md that this check does not run: {', '.join(unknown)}")
    return found


def kvm_usable() -> bool:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


class Runner:
    def __init__(self, work: Path, kvm: bool):
        self.work = work
        self.kvm = kvm
        self.env = dict(os.environ, REPO=str(REPO))

    def adapt(self, command: str) -> str:
        """The command as run here: TCG instead of KVM when there is none."""
        if self.kvm:
            return command
        return command.replace("accel=kvm", "accel=tcg").replace("-cpu host", "-cpu max")

    def bash(self, script: str, check: bool = True) -> subprocess.CompletedProcess:
        # `sudo` as a no-op: the check runs as root (or not at all, for the bridge).
        prelude = 'sudo() { "$@"; }\nset -euo pipefail\n'
        result = subprocess.run(
            ["bash", "-c", prelude + script], cwd=self.work, env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            fail(f"command failed ({result.returncode}):\n{script}\n{result.stdout}{result.stderr}")
        return result

    def start_qemu(self, command: str) -> subprocess.Popen:
        """Starts a QEMU command line from the docs, with -S appended."""
        script = self.adapt(command).rstrip("\n") + " -S\n"
        return subprocess.Popen(
            ["bash", "-c", "exec " + script.lstrip()],
            cwd=self.work,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def stopped(process: subprocess.Popen) -> str:
    process.kill()
    out, err = process.communicate(timeout=30)
    return out + err


def wait_alive(process: subprocess.Popen, what: str, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            fail(f"{what}: QEMU exited with {process.returncode}:\n{out}{err}")
        time.sleep(0.1)


class Qmp:
    def __init__(self, path: str, process: subprocess.Popen):
        deadline = time.monotonic() + 30
        while True:
            self.conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.conn.connect(path)
                break
            except OSError:  # not there yet, or a stale file from an earlier QEMU
                self.conn.close()
            if process.poll() is not None or time.monotonic() > deadline:
                fail(f"no QMP server at {path}:\n{stopped(process)}")
            time.sleep(0.1)
        self.reader = self.conn.makefile("r")
        json.loads(self.reader.readline())
        self.command("qmp_capabilities")

    def command(self, name: str, **arguments):
        message = {"execute": name}
        if arguments:
            message["arguments"] = arguments
        self.conn.sendall((json.dumps(message) + "\n").encode())
        while True:
            reply = json.loads(self.reader.readline())
            if "event" in reply:
                continue
            if "error" in reply:
                fail(f"QMP {name} {arguments}: {reply['error']}")
            return reply["return"]

    def close(self) -> None:
        """QEMU serves one QMP client at a time: close before another connects."""
        self.reader.close()
        self.conn.close()

    def hmp(self, line: str) -> str:
        return self.command("human-monitor-command", **{"command-line": line})

    def cpus(self) -> int:
        return len(self.command("query-cpus-fast"))


def monitor_lines(block: str) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    commands = [line[len("(qemu)"):].strip() for line in lines if line.startswith("(qemu)")]
    if not commands:
        fail("a runbook-check monitor block has no (qemu) lines")
    return commands


def check_disk(run: Runner, b: dict[str, str]) -> None:
    run.bash(b["qemu-disk"])
    name = re.search(r"(\S+\.qcow2)", b["qemu-disk"]).group(1)
    info = json.loads(run.bash(f"qemu-img info --output=json {name}").stdout)
    if info["format"] != "qcow2" or info["virtual-size"] != 64 << 30:
        fail(f"qemu-disk made {info['format']} of {info['virtual-size']} bytes, not qcow2 of 64 GiB")
    ok(f"qemu-disk: {name}, qcow2, 64 GiB")


def check_tools_iso(run: Runner, b: dict[str, str]) -> None:
    package = run.work / "procnotify_package"
    package.mkdir()
    for file in ["procnotify.sys", "procnotify.inf", "procnotify.cat", "procnotify.pdb", "WDRLocalTestCert.cer"]:
        (package / file).write_text(f"stand-in for {file}\n")
    (run.work / "devgen.exe").write_text("stand-in for devgen.exe\n")
    want = {
        "/procnotify_package/procnotify.sys",
        "/procnotify_package/WDRLocalTestCert.cer",
        "/devgen.exe",
        "/scripts/Install-Procnotify.ps1",
        "/scripts/Procnotify.Common.ps1",
        "/scripts/Setup-TestVm.ps1",
        "/scripts/Stress-Procnotify.ps1",
        "/scripts/Uninstall-Procnotify.ps1",
    }
    for name in ["tools-iso-xorriso", "tools-iso"]:  # the second one leaves the image the VM uses
        shutil.rmtree(run.work / "procnotify-tools", ignore_errors=True)
        (run.work / "procnotify-tools.iso").unlink(missing_ok=True)
        # tools-iso-xorriso replaces tools-iso's last line (the image maker).
        prepare = "\n".join(b["tools-iso"].splitlines()[:-1]) + "\n"
        script = b[name] if name == "tools-iso" else prepare + b[name]
        run.bash(script)
        listing = set(run.bash("isoinfo -J -f -i procnotify-tools.iso").stdout.split())
        label = run.bash("isoinfo -d -i procnotify-tools.iso").stdout
        if not want <= listing or "Volume id: PROCNOTIFY" not in label:
            fail(f"{name}: the image lacks {sorted(want - listing)} or its label:\n{label}")
        ok(f"{name}: procnotify-tools.iso (Joliet, label PROCNOTIFY) holds the package, devgen.exe and scripts/")


def check_install(run: Runner, b: dict[str, str]) -> None:
    iso = re.search(r"file=(\S+\.iso)", b["qemu-install"]).group(1)
    empty = run.work / "empty"
    empty.mkdir()
    run.bash(f"genisoimage -quiet -o {iso} empty")  # a stand-in for the Windows ISO
    qemu = run.start_qemu(b["qemu-install"])
    wait_alive(qemu, "qemu-install")
    stopped(qemu)
    ok("qemu-install: QEMU accepted the command line and built the machine (stopped with -S)")


def check_run(run: Runner, b: dict[str, str]) -> None:
    qemu = run.start_qemu(b["qemu-run"])
    qmp = Qmp(QMP_SOCKET, qemu)
    slots = qmp.command("query-hotpluggable-cpus")
    if qmp.cpus() != 4 or len(slots) != 8:
        fail(f"qemu-run: {qmp.cpus()} vCPUs and {len(slots)} slots, expected 4 of 8")
    ok("qemu-run: 4 vCPUs booted, 8 hot-pluggable slots (maxcpus=8), QMP on " + QMP_SOCKET)

    usernet = qmp.hmp("info usernet")
    if not re.search(r"UDP\[HOST_FORWARD\].*\b50000\b.*10\.0\.2\.15\s+50000", usernet):
        fail(f"qemu-run: no UDP 50000 forward to the guest in `info usernet`:\n{usernet}")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(("0.0.0.0", 50000))
        fail("qemu-run: UDP port 50000 is free on the host: the hostfwd rule is not listening")
    except OSError:
        pass
    finally:
        probe.close()
    ok("qemu-run: hostfwd udp::50000-:50000 listens on the host and forwards to 10.0.2.15:50000")

    with socket.create_connection(("127.0.0.1", 50001), timeout=5):
        pass
    with socket.create_connection(("127.0.0.1", 5900), timeout=5) as vnc:
        banner = vnc.recv(12)
    if not banner.startswith(b"RFB "):
        fail(f"qemu-run: no VNC server on 127.0.0.1:5900 ({banner!r})")
    ok("qemu-run: COM1 on TCP 50001 and VNC on 127.0.0.1:5900 accept connections")

    block = qmp.hmp("info block")
    if "procnotify-tools.iso" not in block or "ws2022-datacenter.qcow2" not in block:
        fail(f"qemu-run: the disk or the tools ISO is not attached:\n{block}")
    for line in monitor_lines(b["qemu-monitor-iso"]):
        out = qmp.hmp(line)
        if out.strip():
            fail(f"qemu-monitor-iso: `{line}` said: {out}")
    if "procnotify-tools.iso" not in qmp.hmp("info block cd1"):
        fail("qemu-monitor-iso: cd1 does not hold procnotify-tools.iso after `change`")
    ok("qemu-monitor-iso: `eject -f cd1` and `change cd1 procnotify-tools.iso` swap the image")

    outputs = []
    for line in monitor_lines(b["qemu-monitor"]):
        if not run.kvm:  # -cpu max instead of -cpu host: the CPU type follows
            line = line.replace("host-x86_64-cpu", "max-x86_64-cpu")
        outputs.append(qmp.hmp(line))
    if "socket-id" not in outputs[0] or outputs[1].strip() or qmp.cpus() != 5 or outputs[2].count("CPU #") != 5:
        fail(f"qemu-monitor: unexpected output {outputs}, {qmp.cpus()} vCPUs")
    ok("qemu-monitor: info hotpluggable-cpus, device_add (socket 4), info cpus: 5 vCPUs")

    qmp.close()
    out = run.bash(b["hot-add"]).stdout
    if "vCPUs now: 6" not in out:
        fail(f"hot-add: {out!r}")
    ok("hot-add: scripts/add-qemu-vcpu.sh added one vCPU over QMP (6)")
    began = time.monotonic()
    out = run.bash(f'"$REPO/scripts/add-qemu-vcpu.sh" {QMP_SOCKET} 2 0.5').stdout
    if "vCPUs now: 8" not in out or time.monotonic() - began < 0.5:
        fail(f"hot-add with COUNT 2 and INTERVAL 0.5: {out!r}")
    full = run.bash(f'"$REPO/scripts/add-qemu-vcpu.sh" {QMP_SOCKET}', check=False)
    if full.returncode == 0 or "no free CPU slot left" not in full.stderr:
        fail(f"hot-add past maxcpus was not refused: {full.returncode} {full.stdout}{full.stderr}")
    qmp = Qmp(QMP_SOCKET, qemu)
    if qmp.cpus() != 8:
        fail(f"hot-add: QEMU has {qmp.cpus()} vCPUs, expected 8")
    ok("hot-add: COUNT 2 with INTERVAL 0.5 s reaches maxcpus (8); one more is refused")
    qmp.command("quit")
    qemu.wait(timeout=30)


def check_bridge(run: Runner, b: dict[str, str]) -> None:
    netdev = b["bridge-netdev"].strip()
    replaced = re.sub(r"^\s*-netdev user,.*\\$", lambda _: "  " + netdev, b["qemu-run"], count=1, flags=re.M)
    if replaced == b["qemu-run"] or "-netdev bridge" not in replaced:
        fail("bridge-netdev: no `-netdev user,...` line in qemu-run to replace")
    run.bash("ip link add br0 type bridge && ip link set br0 up")
    qemu = run.start_qemu(replaced)
    deadline = time.monotonic() + 30
    while qemu.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    out = stopped(qemu)
    if qemu.returncode == 0 or "acl file" not in out:
        fail(f"without /etc/qemu/bridge.conf QEMU did not refuse the bridge:\n{out}")
    refusal = next(line for line in out.splitlines() if "acl file" in line)
    ok(f"bridge: without the ACL QEMU refuses ({refusal.strip()})")
    run.bash(b["bridge-acl"])
    qemu = run.start_qemu(replaced)
    qmp = Qmp(QMP_SOCKET, qemu)
    network = qmp.hmp("info network")
    if "br0" not in network and "bridge" not in network:
        fail(f"bridge: the VM's NIC is not on br0:\n{network}")
    qmp.command("quit")
    qemu.wait(timeout=30)
    ok("bridge: with br0 and `allow br0` in /etc/qemu/bridge.conf the VM starts on the bridge")


def main() -> None:
    b = blocks()
    # PROCNOTIFY_RUNBOOK_TCG=1 takes the no-KVM path on a machine with KVM.
    kvm = kvm_usable() and os.environ.get("PROCNOTIFY_RUNBOOK_TCG") != "1"
    isolated = os.environ.get("PROCNOTIFY_RUNBOOK_NETNS") == "1"
    print(f"runbook check: {len(b)} marked blocks from docs/windows.md; "
          + ("KVM usable: commands run as written" if kvm else "no usable /dev/kvm: accel=tcg and -cpu max instead of accel=kvm and -cpu host"))
    with tempfile.TemporaryDirectory(prefix="procnotify-runbook-") as scratch:
        run = Runner(Path(scratch), kvm)
        check_disk(run, b)
        check_tools_iso(run, b)
        check_install(run, b)
        check_run(run, b)
        if isolated:
            check_bridge(run, b)
        else:
            print("  skipped: the bridge (needs root and a private network namespace: run .ci/windows-runbook.sh as root)")
    print(f"runbook check: OK: {len(checks)} checks of docs/windows.md's host commands passed")


if __name__ == "__main__":
    main()
