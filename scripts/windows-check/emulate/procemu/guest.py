"""The image under speakeasy: its imports turned into Python traps, guest calls
from Python into the image, the 24 KiB kernel stack and its high-water mark.

speakeasy-emulator loads and maps the PE and drives unicorn; everything the
image calls is served here, not by speakeasy's own API handlers:

- every import address table slot is rewritten to point at a *trap*: an
  address in a page of our own with a unicorn code hook on it. Reaching a
  trap runs the Python handler registered for that import (see `serve`). An
  import without a handler stops the run and fails the scenario, so a new
  kernel API cannot slip into the image unmodelled.
- `memcpy`, `memset` and `memcmp` are served by a few bytes of x86-64 of our
  own (`_STRING_CODE`), so their accesses go through unicorn's page
  protection like the driver's own loads and stores (freed pool is caught
  there too).
- a handler may be a generator: each value it yields is a guest call
  `(function, [args])` that runs *inside* the API, on the same stack, before
  the API returns (the kernel calling the processor-change callback from
  `KeRegisterProcessorChangeCallback`, or running DPCs in
  `KeFlushQueuedDpcs`). The generator's return value is the API's. The guest
  function returns to the *return trap*, which resumes the generator.
- a scenario step is a generator too: `run_step` starts a speakeasy run at
  the *step trap*, whose handler is that generator, so top-level events
  (DriverEntry, a hot-add's callbacks, DPCs, unload) use the same machinery.

Every trap holds a `ret` instruction. A handler never writes RIP (unicorn
1.0.2 discards its translated code when a hook does, which made the debug
image many times slower): it arranges the stack so that the trap's own `ret`
goes where it must, back to the caller, or into a guest function whose
return address is the return trap.
"""

import logging
import struct
import traceback

import unicorn
from unicorn import x86_const as X
from speakeasy import Speakeasy

from .stop import Stop  # noqa: F401 (re-exported: the handlers' modules import it from here)

PAGE = 0x1000
MASK64 = (1 << 64) - 1

# KERNEL_STACK_SIZE on x64 (ntddk.h / docs/processor-change-semantics.md §6).
KERNEL_STACK = 24 * 1024
STACK_TOP = 0x7FFF0000          # the page below STACK_TOP - KERNEL_STACK stays unmapped: overflow faults
STACK_FILL = b'\xa5' * 8
TRAP_BASE = 0x7FE00000          # import traps, the return trap, the step trap, string routines
TRAP_STRIDE = 16
TRAP_PAGES = 9                  # 8 pages of traps (2048), then the string routines
# Bytes the emulated kernel keeps between its caller's stack pointer and a
# callee's frame when it calls into the driver (its own frame, much smaller
# than a real kernel's: see docs/windows-check.md, "Emulation").
KERNEL_FRAME = 0x60
# Arguments a guest call can pass: four in registers, the rest on the stack
# above the home space, inside KERNEL_FRAME (0x28 + 8 * 2 + 8 < 0x60 - 8).
MAX_GUEST_ARGS = 6

ARG_REGS = (X.UC_X86_REG_RCX, X.UC_X86_REG_RDX, X.UC_X86_REG_R8, X.UC_X86_REG_R9)
VOLATILE = (X.UC_X86_REG_RCX, X.UC_X86_REG_RDX, X.UC_X86_REG_R8, X.UC_X86_REG_R9,
            X.UC_X86_REG_R10, X.UC_X86_REG_R11)
POISON = 0xBAD0BAD0BAD0BAD0     # what a kernel API leaves in the volatile registers

# memcpy(rcx=dst, rdx=src, r8=n) -> dst; memset(rcx=dst, edx=c, r8=n) -> dst;
# memcmp(rcx=a, rdx=b, r8=n) -> int. rdi/rsi are non-volatile: saved in r9/r10.
_STRING_CODE = {
    'memcpy': bytes.fromhex(
        '4889c8'      # mov rax, rcx
        '4989f9'      # mov r9, rdi
        '4989f2'      # mov r10, rsi
        '4889cf'      # mov rdi, rcx
        '4889d6'      # mov rsi, rdx
        '4c89c1'      # mov rcx, r8
        'f3a4'        # rep movsb
        '4c89cf'      # mov rdi, r9
        '4c89d6'      # mov rsi, r10
        'c3'),        # ret
    'memset': bytes.fromhex(
        '4989f9'      # mov r9, rdi
        '4889cf'      # mov rdi, rcx
        '4989ca'      # mov r10, rcx
        '89d0'        # mov eax, edx
        '4c89c1'      # mov rcx, r8
        'f3aa'        # rep stosb
        '4c89d0'      # mov rax, r10
        '4c89cf'      # mov rdi, r9
        'c3'),        # ret
    'memcmp': bytes.fromhex(
        '4989f9'      # mov r9, rdi
        '4989f2'      # mov r10, rsi
        '4889ce'      # mov rsi, rcx   (cmpsb compares [rsi] with [rdi])
        '4889d7'      # mov rdi, rdx
        '4c89c1'      # mov rcx, r8
        '31c0'        # xor eax, eax   (ZF=1: equal when n == 0)
        'f3a6'        # repe cmpsb
        '740a'        # je done
        '0fb646ff'    # movzx eax, byte [rsi-1]
        '0fb64fff'    # movzx ecx, byte [rdi-1]
        '29c8'        # sub eax, ecx
        '4c89cf'      # done: mov rdi, r9
        '4c89d6'      # mov rsi, r10
        'c3'),        # ret
}


class Frame:
    """An API (or a step) in progress whose generator makes guest calls."""

    def __init__(self, name, gen, ret, resume_sp):
        self.name, self.gen, self.ret, self.resume_sp = name, gen, ret, resume_sp
        self.expect_sp = None     # rsp after the current guest call returns


class Guest:
    """One speakeasy instance with the image loaded and its imports trapped.
    A run (one step) that takes more than `timeout` seconds is stopped by
    unicorn and fails (a driver stuck in a loop)."""

    def __init__(self, image, timeout=60):
        config_logger = logging.getLogger('procemu.speakeasy')
        config_logger.setLevel(logging.CRITICAL)
        self.se = Speakeasy(logger=config_logger)
        self.se.config['timeout'] = timeout
        self.module = self.se.load_module(image)
        self.emu = self.se.emu
        self.uc = self.emu.emu_eng.emu
        self.violations = []      # (kind, message), in order
        self.frames = []
        self.handlers = {}        # trap address -> (name, function, argc)
        self.step_gen = None
        self.stopped = False
        self._invalid_hook = None
        self._map_stack()
        self._map_traps()

    # -- memory ----------------------------------------------------------------------
    def read(self, addr, n):
        return bytes(self.uc.mem_read(addr, n))

    def write(self, addr, data):
        self.uc.mem_write(addr, bytes(data))

    def r64(self, addr):
        return struct.unpack('<Q', self.read(addr, 8))[0]

    def w64(self, addr, value):
        self.write(addr, struct.pack('<Q', value & MASK64))

    def r32(self, addr):
        return struct.unpack('<I', self.read(addr, 4))[0]

    def w32(self, addr, value):
        self.write(addr, struct.pack('<I', value & 0xFFFFFFFF))

    def cstring(self, addr, limit=1024):
        """A NUL-terminated string, read page by page (it may end just
        before unmapped memory)."""
        data = b''
        while len(data) < limit:
            chunk = self.read(addr + len(data), PAGE - (addr + len(data)) % PAGE)
            end = chunk.find(b'\0')
            if end >= 0:
                return (data + chunk[:end]).decode('latin-1')
            data += chunk
        raise Stop('string at 0x%x not terminated within %d bytes' % (addr, limit))

    def map(self, base, size, perms=unicorn.UC_PROT_READ | unicorn.UC_PROT_WRITE):
        self.uc.mem_map(base, size, perms)

    def map_known(self, base, size, tag):
        """Maps memory speakeasy itself must know about (it looks up the
        stack and the code it starts runs at); read, write and execute."""
        got = self.emu.mem_map(size, base=base, tag='emu.procemu.' + tag)
        if got != base:
            raise RuntimeError('speakeasy mapped %s at 0x%x, not 0x%x' % (tag, got, base))

    def protect(self, base, size, perms):
        self.uc.mem_protect(base, size, perms)

    # -- stack -----------------------------------------------------------------------
    def _map_stack(self):
        base = STACK_TOP - KERNEL_STACK
        self.map_known(base, KERNEL_STACK, 'kernel_stack')
        self.emu.stack_base = STACK_TOP      # speakeasy's reset_stack starts every run here
        self.fill_stack()

    def fill_stack(self):
        self.write(STACK_TOP - KERNEL_STACK, STACK_FILL * (KERNEL_STACK // 8))

    def stack_used(self):
        """Bytes of the 24 KiB stack ever written since `fill_stack` (by the
        driver, the stand-in stub, and the emulator's own small frames)."""
        data = self.read(STACK_TOP - KERNEL_STACK, KERNEL_STACK)
        for offset in range(0, KERNEL_STACK, 8):
            if data[offset:offset + 8] != STACK_FILL:
                return KERNEL_STACK - offset
        return 0

    # -- traps -------------------------------------------------------------------------
    def _map_traps(self):
        self.map_known(TRAP_BASE, TRAP_PAGES * PAGE, 'traps')
        self.write(TRAP_BASE, b'\xc3' * (TRAP_PAGES * PAGE))   # ret: see the module's doc
        self.return_trap = TRAP_BASE
        self.step_trap = TRAP_BASE + TRAP_STRIDE
        self.end_trap = TRAP_BASE + 2 * TRAP_STRIDE               # where a finished step "returns"
        self.write(self.end_trap, b'\xeb\xfe')                   # jmp $: the run stops here
        self.next_trap = TRAP_BASE + 3 * TRAP_STRIDE
        self.trap_end = TRAP_BASE + (TRAP_PAGES - 1) * PAGE
        self.import_traps = {}    # (module, name) -> trap address, kept across reloads
        self.unmodelled = []      # imports with no handler: the scenario fails before it starts
        self.strings = {}
        cursor = self.trap_end
        for name, code in _STRING_CODE.items():
            self.write(cursor, code)
            self.strings[name] = cursor
            cursor += 0x40
        self.se.add_code_hook(self._on_trap, begin=TRAP_BASE, end=self.trap_end - 1)

    def new_trap(self, name, fn, argc):
        """A fresh trap address whose handler is `fn(*args[:argc])`."""
        addr = self.next_trap
        if addr >= self.trap_end:
            raise RuntimeError('out of trap addresses')
        self.next_trap += TRAP_STRIDE
        self.handlers[addr] = (name, fn, argc)
        return addr

    def imports(self):
        """[(IAT slot, module, name)] of the image, in address order."""
        return sorted((slot, mod, fn) for slot, (mod, fn) in self.module.imports.items())

    def bind_imports(self, serve):
        """Points every IAT slot at a trap (or a string routine). `serve` maps
        (module, name) to (function, argc) or None; an import it does not
        serve gets a trap that fails the run when called."""
        for slot, mod, fn in self.imports():
            if mod.lower() == 'ntoskrnl' and fn in self.strings:
                self.w64(slot, self.strings[fn])
                continue
            key = (mod.lower(), fn)
            if key not in self.import_traps:
                entry = serve(mod, fn)
                if entry is None:
                    self.unmodelled.append('%s!%s' % (mod, fn))
                    entry = (self._unmodelled(mod, fn), 0)
                self.import_traps[key] = self.new_trap('%s!%s' % (mod, fn), *entry)
            self.w64(slot, self.import_traps[key])

    def _unmodelled(self, mod, fn):
        def handler():
            raise Stop('the image called %s!%s, which the emulated kernel does not model' % (mod, fn), 'import')
        return handler

    def reload_image(self, serve):
        """Writes the image's pristine bytes back (its .data as at load) and
        rebinds its imports: what loading the driver again does."""
        self.write(self.module.base, self.module.mapped_image)
        self.bind_imports(serve)

    # -- trap dispatch -----------------------------------------------------------------
    def reg(self, r):
        return self.uc.reg_read(r)

    def set_reg(self, r, v):
        self.uc.reg_write(r, v & MASK64)

    def _on_trap(self, se, addr, size, ctx):
        try:
            if addr == self.return_trap:
                self._returned()
            elif addr == self.end_trap:
                self.uc.emu_stop()
            elif addr == self.step_trap:
                gen, self.step_gen = self.step_gen, None
                self._enter('step', gen)
            elif addr in self.handlers:
                self._api(addr)
            else:
                raise Stop('execution reached 0x%x in the trap page (no handler)' % addr)
        except Stop as stop:
            self.fail(stop.kind, str(stop))
        except Exception:                              # an emulator bug: never silent
            self.fail('emulator', 'internal error at trap 0x%x:\n%s' % (addr, traceback.format_exc()))
        return True

    def _api(self, addr):
        name, fn, argc = self.handlers[addr]
        sp = self.reg(X.UC_X86_REG_RSP)
        args = [self.reg(r) for r in ARG_REGS]
        args += [self.r64(sp + 0x28 + 8 * i) for i in range(max(0, argc - 4))]
        result = fn(*args[:argc])
        if hasattr(result, 'send'):
            self._enter(name, result)
        else:
            self._return(self.r64(sp), sp + 8, result or 0)

    def _enter(self, name, gen):
        sp = self.reg(X.UC_X86_REG_RSP)
        frame = Frame(name, gen, ret=self.r64(sp), resume_sp=sp + 8)
        self.frames.append(frame)
        self._advance(frame, None)

    def _advance(self, frame, value):
        try:
            call = frame.gen.send(value)
        except StopIteration as done:
            self.frames.pop()
            if frame.name == 'step':
                # The step is over: stop at the end trap rather than return to
                # speakeasy's end-of-run address, whose handling installs a code
                # hook on every instruction for the rest of the session.
                self.step_done = True
                self._return(self.end_trap, frame.resume_sp, 0)
                self.uc.emu_stop()
                return
            self._return(frame.ret, frame.resume_sp, done.value or 0)
            return
        fn, args = call
        if len(args) > MAX_GUEST_ARGS:
            raise Stop('guest calls with more than %d arguments are not modelled' % MAX_GUEST_ARGS)
        # Below the caller's stack pointer: the kernel's own frame, then a
        # 16-byte aligned call frame (return address, 32 bytes of home space,
        # then the fifth argument on: EvtIoDeviceControl has five).
        sp = ((frame.resume_sp - 8 - KERNEL_FRAME) & ~0xF) - 8
        self.w64(sp, self.return_trap)            # the callee's return address
        self.w64(sp - 8, fn)                      # popped by the trap's ret: the jump to the callee
        for reg, value in zip(ARG_REGS, args):
            self.set_reg(reg, value)
        for i, value in enumerate(args[len(ARG_REGS):]):
            self.w64(sp + 0x28 + 8 * i, value)
        self.set_reg(X.UC_X86_REG_RSP, sp - 8)
        frame.expect_sp = sp + 8

    def _returned(self):
        if not self.frames:
            raise Stop('the return trap was reached with no guest call in progress')
        frame = self.frames[-1]
        sp = self.reg(X.UC_X86_REG_RSP)
        if sp != frame.expect_sp:
            raise Stop('a guest call made from %s returned with rsp 0x%x, expected 0x%x'
                       % (frame.name, sp, frame.expect_sp))
        self._advance(frame, self.reg(X.UC_X86_REG_RAX))

    def _return(self, ret, sp, value):
        """The trap's ret returns `value` to `ret` with rsp = `sp` after it."""
        for reg in VOLATILE:
            self.set_reg(reg, POISON)
        self.set_reg(X.UC_X86_REG_RAX, value)
        self.w64(sp - 8, ret)
        self.set_reg(X.UC_X86_REG_RSP, sp - 8)

    # -- runs --------------------------------------------------------------------------
    def fail(self, kind, message):
        """Records a violation and stops the current run."""
        self.violations.append((kind, message))
        self.stopped = True
        self.uc.emu_stop()

    def watch_memory(self, describe):
        """`describe(address)` names an invalid access (freed pool,
        a guard page, the stack's end); every one fails the run."""
        names = {unicorn.UC_MEM_READ_UNMAPPED: 'read of unmapped', unicorn.UC_MEM_WRITE_UNMAPPED: 'write to unmapped',
                 unicorn.UC_MEM_FETCH_UNMAPPED: 'execution of unmapped', unicorn.UC_MEM_READ_PROT: 'read of protected',
                 unicorn.UC_MEM_WRITE_PROT: 'write to protected', unicorn.UC_MEM_FETCH_PROT: 'execution of protected'}

        def hook(se, access, address, size, value, ctx):
            if address in (self.emu.return_hook, self.emu.exit_hook):
                return True                          # speakeasy's end-of-run address
            try:
                kind, what = describe(address)
                pc = self.reg(X.UC_X86_REG_RIP)
                self.fail(kind, '%s memory 0x%x (%d bytes) at pc 0x%x: %s'
                          % (names.get(access, 'access %d to' % access), address, size, pc, what))
            except Exception:                        # an emulator bug: never silent
                self.fail('emulator', 'internal error in the memory hook:\n' + traceback.format_exc())
            return False
        self._invalid_hook = self.se.add_mem_invalid_hook(hook)

    def run_step(self, gen):
        """Runs one top-level step (a generator of guest calls) as its own
        speakeasy run. Returns the generator's value, or None if the run
        stopped (a violation was recorded)."""
        self.stopped = self.step_done = False
        self.frames = []
        self.step_result = None

        def top():
            self.step_result = yield from gen
            return 0
        self.step_gen = top()
        self.se.call(self.step_trap, [])
        run = self.emu.runs[-1]
        if run.error and not self.stopped:
            self.fail('emulator', 'speakeasy stopped the run: %s at pc %s (%s)'
                      % (run.error.get('type'), run.error.get('pc'), run.error.get('instr', '?')))
        if not self.step_done and not self.stopped:
            self.fail('emulator', 'the run ended before its step did (%d guest calls open)' % len(self.frames))
        return None if self.stopped else self.step_result
