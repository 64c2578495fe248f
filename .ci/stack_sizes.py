#!/usr/bin/env python3
"""Worst-case stack use of procnotify's kernel paths, from `-Z emit-stack-sizes`.

Reads the `.stack_sizes` ELF section (pairs of function address, ULEB128
frame size) of a binary built with RUSTFLAGS="-Z emit-stack-sizes", builds
the static call graph from `objdump -d` (direct calls and tail jumps), and
reports for each root the deepest chain of frames: frame sizes plus 8 bytes
per call for the return address. An indirect call or a callee without a
recorded size (e.g. libc) makes the figure a lower bound and is reported.

usage: stack_sizes.py BINARY ROOT_SUBSTRING...

The last two lines are `stack-roots-measured: N` (roots that matched at
least one function) and `stack-worst-bytes: N`.
"""
import os
import re
import tempfile
import subprocess
import sys


def section_bytes(binary, name):
    with tempfile.TemporaryDirectory() as scratch:
        dump = os.path.join(scratch, "section")
        subprocess.run(["objcopy", f"--dump-section={name}={dump}", binary, os.path.join(scratch, "copy")],
                       check=True, capture_output=True)
        with open(dump, "rb") as file:
            return file.read()


def uleb(data, at):
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def main():
    binary, roots = sys.argv[1], sys.argv[2:]
    data = section_bytes(binary, ".stack_sizes")
    sizes, at = {}, 0
    while at < len(data):
        address = int.from_bytes(data[at:at + 8], "little")
        size, at = uleb(data, at + 8)
        sizes[address] = size
    names = {}
    for line in subprocess.run(["nm", "-C", binary], check=True, capture_output=True, text=True).stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] and parts[1] in ("t", "T", "w", "W"):
            names.setdefault(int(parts[0], 16), parts[2])
    disasm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary], check=True, capture_output=True,
                            text=True).stdout
    calls, indirect, current = {}, set(), None
    head = re.compile(r"^([0-9a-f]+) <(.+)>:$")
    call = re.compile(r"\s(call|jmp)\s+([0-9a-f]+) <([^>+]+)(\+0x[0-9a-f]+)?>")
    for line in disasm.splitlines():
        match = head.match(line)
        if match:
            current = int(match.group(1), 16)
            calls[current] = set()
            continue
        if current is None:
            continue
        match = call.search(line)
        if match:
            target = int(match.group(2), 16)
            if match.group(1) == "call" or (match.group(4) is None and target != current):
                if match.group(4) is None:
                    calls[current].add(target)
        elif re.search(r"\scall\s+\*", line):
            indirect.add(current)

    memo, notes = {}, set()

    def depth(address, stack):
        if address in memo:
            return memo[address]
        if address in stack:
            notes.add(f"recursion through {names.get(address, hex(address))}")
            return 0, []
        if address not in sizes:
            notes.add(f"no frame size for {names.get(address, hex(address))} (counted as 0)")
        if address in indirect:
            notes.add(f"indirect call in {names.get(address, hex(address))}")
        own = sizes.get(address, 0)
        best, chain = 0, []
        for callee in calls.get(address, ()):
            d, c = depth(callee, stack | {address})
            if d + 8 > best:
                best, chain = d + 8, c
        memo[address] = (own + best, [(names.get(address, hex(address)), own)] + chain)
        return memo[address]

    worst, measured = 0, 0
    for root in roots:
        found = [a for a, n in names.items() if root in n]
        if not found:
            print(f"stack: no function matching {root!r} (inlined into its caller?)")
            continue
        measured += 1
        for address in found:
            total, chain = depth(address, frozenset())
            worst = max(worst, total)
            print(f"stack: {names[address]}: worst case {total} bytes")
            for name, own in chain:
                print(f"    {own:6d}  {name}")
    for note in sorted(notes):
        print(f"  note: {note}")
    print(f"stack-roots-measured: {measured}")
    print(f"stack-worst-bytes: {worst}")


if __name__ == "__main__":
    main()
