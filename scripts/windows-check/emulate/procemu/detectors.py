"""Tests of the detectors themselves (`#@ detector KIND`): each makes the
failure its detector exists for happen, and passes only if that detector
reports it, so no check here is one that cannot fail.

- `use-after-free dpc-after-unload`: after the script (and its unload), the
  emulated kernel runs one of the driver's DPCs whose KDPC was freed: what a
  kernel would do if unload freed the table before KeFlushQueuedDpcs, with
  the system arguments it was last queued with (SystemArgument1 is the
  address of the processor's value). The driver's DPC routine reads that
  value from freed pool.
- `use-after-free callback-after-deregister`: after unload, the kernel calls
  the processor-change callback with the freed context: what would happen if
  deregistration did not wait for (or stop) callbacks (§4).
- `leak`: unload's first ExFreePoolWithTag is lost, so a block stays live.
- `line-diff`: one of the image's lines is altered before the comparison.
- `stack BYTES`: the stack limit is lowered to BYTES.
- `query tail | address | status` (ioctl.tamper): after the driver completed
  a query, a byte past the bytes written is set, a pool address is written
  into the reply's first row, or STATUS_BUFFER_OVERFLOW becomes
  STATUS_SUCCESS; the query's checks must report it.
- `unbind`: after the load, DriverObject->DriverUnload is set back to the
  framework's own, as a stub that ignored DisplaceDriverUnload would leave
  it (so it would never call WdfVersionUnbind); the framework checks must
  report it.
"""

import struct

from .kernel import ADD_START, SUCCESS


def inject_after(session):
    """Runs the injected use after free, if the scenario asks for one."""
    kind, arg = session.script.detector
    if kind != 'use-after-free':
        return
    k = session.kernel
    if arg == 'dpc-after-unload':
        if not k.freed_dpcs:
            session.violation('detector', 'no freed KDPC to deliver: the scenario must load, add and unload')
            return
        dpc, state = next(iter(k.freed_dpcs.items()))
        session.note('detector', 'the kernel runs the DPC at 0x%x after its memory was freed' % dpc)
        session.step(_call(state.routine, [dpc, state.context, *state.arguments]))
    else:
        if not k.deregistered:
            session.violation('detector', 'nothing was deregistered: the scenario must load and unload')
            return
        reg = k.deregistered[-1]
        session.note('detector', 'the kernel calls the callback after deregistration (context 0x%x)' % reg.context)
        session.guest.write(k.notify, struct.pack('<IIIHBB', ADD_START, 0, SUCCESS, 0, 0, 0))
        session.guest.w32(k.operation_status, SUCCESS)
        session.step(_call(reg.callback, [reg.context, k.notify, k.operation_status]))


def _call(fn, args):
    yield fn, args
    return 0


def detected(kind, violations, mismatch, stack, limit):
    """(passed, what was seen) for a detector scenario."""
    if kind == 'use-after-free':
        hits = [text for k, text in violations if k == 'use-after-free']
    elif kind == 'leak':
        hits = [text for k, text in violations if k == 'leak']
    elif kind == 'query':
        hits = [text for k, text in violations if k in ('query', 'ioctl')]
    elif kind == 'unbind':
        hits = [text for k, text in violations if k == 'wdf']
    elif kind == 'line-diff':
        changed = [line for line in (mismatch or '').splitlines() if line[:1] in '-+' and line[:3] not in ('---', '+++')]
        hits = ['the comparison reports ' + ' / '.join(changed)] if changed else []
    else:
        hits = ['deepest stack use %s bytes > limit %s' % (format(stack, ','), format(limit, ','))] \
            if stack > limit else []
    return bool(hits), (hits[0].splitlines()[0] if hits else 'NOT detected')
