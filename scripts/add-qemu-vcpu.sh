#!/usr/bin/env bash
# Hot-adds one vCPU to a running QEMU/KVM guest through QMP (host side).
#
# The guest must have been started with room to grow and a QMP socket, e.g.
#   -smp 4,sockets=8,cores=1,threads=1,maxcpus=8 \
#   -qmp unix:/tmp/procnotify-qmp.sock,server=on,wait=off
#
# Usage: scripts/add-qemu-vcpu.sh [QMP_SOCKET] [COUNT] [INTERVAL]
#   QMP_SOCKET  default /tmp/procnotify-qmp.sock
#   COUNT       vCPUs to add, one at a time (default 1)
#   INTERVAL    seconds to wait between two adds (default 0; e.g. 3 for the
#               stress procedure of docs/windows.md §13)
#
# It asks QEMU for the hot-pluggable CPU slots (query-hotpluggable-cpus),
# picks the first empty one and sends device_add with exactly the properties
# QEMU listed for it, the same as typing in the HMP monitor:
#   (qemu) info hotpluggable-cpus
#   (qemu) device_add host-x86_64-cpu,id=cpu4,socket-id=4,core-id=0,thread-id=0
# Needs python3 on the host.
set -euo pipefail

socket=${1:-/tmp/procnotify-qmp.sock}
count=${2:-1}
interval=${3:-0}
[[ -S "$socket" ]] || { echo "no QMP socket at $socket" >&2; exit 1; }
[[ "$count" =~ ^[0-9]+$ ]] || { echo "COUNT must be a whole number, not '$count'" >&2; exit 2; }
[[ "$interval" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "INTERVAL must be a number of seconds, not '$interval'" >&2; exit 2; }

python3 - "$socket" "$count" "$interval" <<'PY'
import json, socket, sys, time

path, count, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
conn.connect(path)
reader = conn.makefile("r")

def command(name, arguments=None):
    message = {"execute": name}
    if arguments is not None:
        message["arguments"] = arguments
    conn.sendall((json.dumps(message) + "\n").encode())
    while True:
        reply = json.loads(reader.readline())
        if "event" in reply:          # asynchronous events: skip
            continue
        if "error" in reply:
            sys.exit(f"{name} failed: {reply['error']}")
        return reply["return"]

json.loads(reader.readline())         # greeting
command("qmp_capabilities")
for n in range(count):
    if n and interval:
        time.sleep(interval)
    free = [cpu for cpu in command("query-hotpluggable-cpus") if "qom-path" not in cpu]
    if not free:
        sys.exit("no free CPU slot left: raise maxcpus")
    slot = min(free, key=lambda cpu: tuple(sorted(cpu["props"].items())))
    props = slot["props"]
    ident = "cpu-" + "-".join(str(props[k]) for k in sorted(props))
    arguments = {"driver": slot["type"], "id": ident, **props}
    command("device_add", arguments)
    print("device_add", json.dumps(arguments), flush=True)
print("vCPUs now:", len(command("query-cpus-fast")))
PY
