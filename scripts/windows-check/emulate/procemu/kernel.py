"""The processor-change machinery of the Windows kernel, as the image calls
it: a model of docs/processor-change-semantics.md (cited as §N below), the
same contract the simulator (crates/procnotify-sim/src/kernel) implements.

Single threaded: a callback, a DPC and a step never overlap, which is the
serialisation §3 step 7 promises for callbacks; DPCs run when the scenario
delivers them (at the end of a step, or in KeFlushQueuedDpcs).
"""

import struct

from .guest import Stop

SUCCESS = 0
ADD_START, ADD_COMPLETE, ADD_FAILURE = 0, 1, 2
STATE_NAME = {ADD_START: 'AddStart', ADD_COMPLETE: 'AddComplete', ADD_FAILURE: 'AddFailure'}
ADD_EXISTING = 1                        # KE_PROCESSOR_CHANGE_ADD_EXISTING
ALL_PROCESSOR_GROUPS = 0xFFFF
STATUS_INVALID_PARAMETER = 0xC000000D
# KDPC (wdm.h, x64): Type @0, Importance @1, Number @2, DeferredRoutine @24,
# DeferredContext @32, SystemArgument1/2 @40/@48, DpcData @56.
KDPC_SIZE, DPC_OBJECT = 64, 0x13
MEDIUM_IMPORTANCE = 1
# What KeInvokeProcessorCallbacks leaves in *OperationStatus before an
# AddComplete / AddFailure: the variable is not reset (§9), so it holds a
# stale value. The driver must neither read nor write it.
STALE_STATUS = 0xC0DE5A1E
KERNEL_DATA = 0x7FD00000                # a page: the notification context, *OperationStatus, handles


def failed(status):
    """!NT_SUCCESS: the NTSTATUS is negative (errors and warnings)."""
    return status & 0x80000000 != 0


def dense(index):
    """(group, number) of index: 64 to a group, as the simulator places them."""
    return index // 64, index % 64


class Registration:
    def __init__(self, rid, owner, callback=None, context=0, veto=None):
        self.id, self.owner, self.callback, self.context, self.veto = rid, owner, callback, context, veto
        self.handle = 0
        self.handle_returned = False


class Dpc:
    def __init__(self, routine, context):
        self.routine, self.context = routine, context
        self.target = None        # processor index, or None: the processor that queues it
        self.importance = MEDIUM_IMPORTANCE
        self.arguments = (0, 0)   # SystemArgument1/2 of the last KeInsertQueueDpc


class Kernel:
    def __init__(self, guest, pool, boot, maximum, reported, dynamic, log):
        self.guest, self.pool, self.log = guest, pool, log
        self.count, self.max, self.reported, self.dynamic = boot, maximum, reported, dynamic
        self.current = 0
        self.registrations = []   # linked registrations, in registration order
        self.next_id = 1
        self.fail_register = 0    # pending: the next registration(s) return NULL with no callback
        self.fail_start = []      # pending HAL start failures: statuses
        self.fail_prepare = 0
        self.dpcs = {}            # KDPC address -> Dpc
        self.queue = []           # queued KDPC addresses, in order
        self.ran_dpcs = []        # (KDPC, target, processor it ran on)
        self.last_veto = None     # what the image left in *OperationStatus last (None: nothing)
        self.deregistered = []    # the image's registrations, once deregistered
        self.freed_dpcs = {}      # KDPCs whose memory was freed
        pool.on_free.append(self._freed)
        base = KERNEL_DATA
        guest.map(base, 0x1000)
        self.notify, self.operation_status = base, base + 0x40
        self.handles = base + 0x100

    # -- processors (§6) -------------------------------------------------------------------
    def KeQueryActiveProcessorCountEx(self, group):
        return self.count if group & 0xFFFF in (0, ALL_PROCESSOR_GROUPS) else 0

    def KeQueryMaximumProcessorCountEx(self, group):
        return self.reported if group & 0xFFFF in (0, ALL_PROCESSOR_GROUPS) else 0

    def KeGetCurrentProcessorNumberEx(self, number):
        if number:
            group, num = dense(self.current)
            self.guest.write(number, struct.pack('<HBB', group, num, 0))
        return self.current

    # The emulated machine runs one kernel thread: DriverEntry, the callbacks,
    # the DPCs and unload all run on it, so one ID serves. The engine only
    # compares it with the ID it stored while a callback runs (and clears
    # afterwards), to refuse an unload from inside a hook.
    THREAD_ID = 0x1f4

    def PsGetCurrentThreadId(self):
        return self.THREAD_ID

    def RtlCopyUnicodeString(self, destination, source):
        """The stand-in KMDF stub copies the registry path (wdm.h): at most
        the destination's MaximumLength bytes, Length set to what was copied;
        a NULL source gives an empty string."""
        length, maximum = struct.unpack('<HH', self.guest.read(destination, 4))
        if not source:
            self.guest.write(destination, struct.pack('<H', 0))
            return 0
        src_length = struct.unpack('<H', self.guest.read(source, 2))[0]
        count = min(src_length, maximum)
        if count:
            self.guest.write(self.guest.r64(destination + 8), self.guest.read(self.guest.r64(source + 8), count))
        self.guest.write(destination, struct.pack('<H', count))
        return 0

    # -- one callback ------------------------------------------------------------------------
    def call(self, reg, state, index, status, group=None, number=None, preset=SUCCESS):
        """Calls one registration (§1): a guest call for the image's, a Python
        call for another driver's. Returns what it left in *OperationStatus."""
        if group is None:
            group, number = dense(index)
        group, number = group & 0xFFFF, number & 0xFF     # USHORT Group, UCHAR Number
        if reg.callback is None:
            return reg.veto(state, index)
        if self.pool.live_at(reg.context) is None:
            raise Stop('the kernel would call registration #%d with a context that is not live pool (0x%x)'
                       % (reg.id, reg.context))
        self.guest.write(self.notify, struct.pack('<IIIHBB', state, index, status, group, number, 0))
        self.guest.w32(self.operation_status, preset)
        yield reg.callback, [reg.context, self.notify, self.operation_status]
        result = self.guest.r32(self.operation_status)
        if state != ADD_START and result != preset:
            raise Stop('the callback wrote *OperationStatus = 0x%08X for %s (only an AddStart may be vetoed, §1)'
                       % (result, STATE_NAME.get(state, state)))
        self.last_veto = result if state == ADD_START and result != SUCCESS else None
        return SUCCESS if state != ADD_START else result

    # -- registration (§2) and deregistration (§4) -------------------------------------------
    def KeRegisterProcessorChangeCallback(self, callback, context, flags):
        if flags & ~ADD_EXISTING:
            raise Stop('KeRegisterProcessorChangeCallback flags 0x%x' % flags)
        return self.register(Registration(0, 'procnotify', callback, context), flags)

    def register(self, reg, flags):
        """Generator: the registration steps of §2, returning the handle or 0."""
        reg.id, self.next_id = self.next_id, self.next_id + 1
        if self.fail_register:                       # fails before linking anything
            self.fail_register -= 1
            self.log('ke', 'KeRegisterProcessorChangeCallback #%d -> NULL (injected failure)' % reg.id)
            return 0
        reg.handle = self.handles + 8 * reg.id
        self.registrations.append(reg)               # step 2: linked, handle not returned yet
        if flags & ADD_EXISTING:
            failure = None
            for index in range(self.count):          # step 4: AddStart in index order
                status = yield from self.call(reg, ADD_START, index, SUCCESS)
                if failed(status):                   # step 5: stop at the first failure
                    failure = (index, status)
                    break
            if failure is None:                      # step 6: AddComplete for every processor
                for index in range(self.count):
                    yield from self.call(reg, ADD_COMPLETE, index, SUCCESS, preset=STALE_STATUS)
            else:                                    # step 7: unlink, AddFailure for 0..k-1, NULL
                self.registrations.remove(reg)
                stopped_at, status = failure
                for index in range(stopped_at):
                    yield from self.call(reg, ADD_FAILURE, index, status, preset=status)
                self.log('ke', 'registration #%d vetoed at processor %d (0x%08X): NULL' % (reg.id, stopped_at, status))
                return 0
        reg.handle_returned = True
        self.log('ke', 'registration #%d (%s) -> handle 0x%x' % (reg.id, reg.owner, reg.handle))
        return reg.handle

    def KeDeregisterProcessorChangeCallback(self, handle):
        # §4: unlink; no callback runs after this returns (none is running:
        # callbacks and unload never overlap here).
        for reg in self.registrations:
            if reg.handle == handle and reg.callback is not None:
                self.registrations.remove(reg)
                self.log('ke', 'KeDeregisterProcessorChangeCallback(#%d)' % reg.id)
                self.deregistered.append(reg)
                return 0
        raise Stop('KeDeregisterProcessorChangeCallback(0x%x): not a registered handle' % handle)

    def image_registrations(self):
        return [reg for reg in self.registrations if reg.callback is not None]

    # -- hot-add (§3) ---------------------------------------------------------------------------
    def hot_add(self, veto_by=None):
        """Generator: KeStartDynamicProcessor in §3's order. Returns
        ('added', index) | ('failed', index, status) | ('refused', reason)."""
        if not self.dynamic:                          # step 1: refusals, no notification
            return ('refused', 'not-supported')
        if self.count >= self.max:
            return ('refused', 'at-maximum')
        if self.fail_prepare:                         # step 3: preparation fails
            self.fail_prepare -= 1
            return ('refused', 'prepare-failed')
        index = self.count                            # step 2: the index is the count
        failure = None
        for reg in list(self.registrations):          # step 4: AddStart until one fails
            status = yield from self.call(reg, ADD_START, index, SUCCESS)
            if failed(status):
                failure = status
                break
        if failure is None and self.fail_start:       # step 5: the HAL starts it, or fails
            failure = self.fail_start.pop(0)
            self.log('ke', 'HAL failed to start processor %d: 0x%08X' % (index, failure))
        if failure is None:
            self.count += 1                           # running from now on, before AddComplete
        state = ADD_COMPLETE if failure is None else ADD_FAILURE
        for reg in list(self.registrations):          # step 6: one final notification to every registration
            if reg in self.registrations:
                preset = STALE_STATUS if failure is None else failure
                yield from self.call(reg, state, index, failure or SUCCESS, preset=preset)
        return ('added', index) if failure is None else ('failed', index, failure)

    def inject(self, state, index, status, group, number):
        """Generator: a raw notification to every registration (the
        simulator's `notify`), serialised like any other."""
        for reg in list(self.registrations):
            preset = SUCCESS if state == ADD_START else STALE_STATUS
            yield from self.call(reg, state, index, status, group, number, preset=preset)
        return 0

    # -- DPCs ---------------------------------------------------------------------------------------
    def KeInitializeDpc(self, dpc, routine, context):
        self._check_dpc_memory(dpc, 'KeInitializeDpc')
        if dpc in self.queue:
            raise Stop('KeInitializeDpc on a queued KDPC 0x%x' % dpc)
        self.guest.write(dpc, bytes([DPC_OBJECT, MEDIUM_IMPORTANCE]) + bytes(KDPC_SIZE - 2))
        self.guest.w64(dpc + 24, routine)
        self.guest.w64(dpc + 32, context)
        self.dpcs[dpc] = Dpc(routine, context)
        return 0

    def KeSetImportanceDpc(self, dpc, importance):
        self._known(dpc, 'KeSetImportanceDpc').importance = importance & 0xFF
        self.guest.write(dpc + 1, bytes([importance & 0xFF]))
        return 0

    def KeSetTargetProcessorDpcEx(self, dpc, number):
        state = self._known(dpc, 'KeSetTargetProcessorDpcEx')
        if dpc in self.queue:
            raise Stop('KeSetTargetProcessorDpcEx on a queued KDPC 0x%x' % dpc)
        group, num, reserved = struct.unpack('<HBB', self.guest.read(number, 4))
        if num >= 64 or reserved or group * 64 + num >= self.max:
            return STATUS_INVALID_PARAMETER           # no such processor in the partition
        state.target = group * 64 + num
        return SUCCESS

    def KeInsertQueueDpc(self, dpc, argument1, argument2):
        self._known(dpc, 'KeInsertQueueDpc')
        if dpc in self.queue:
            return 0                                  # already queued: keeps its first arguments
        self.guest.w64(dpc + 40, argument1)
        self.guest.w64(dpc + 48, argument2)
        self.dpcs[dpc].arguments = (argument1, argument2)
        self.queue.append(dpc)
        return 1

    def _known(self, dpc, api):
        self._check_dpc_memory(dpc, api)
        state = self.dpcs.get(dpc)
        if state is None:
            raise Stop('%s on a KDPC (0x%x) KeInitializeDpc never initialised' % (api, dpc))
        return state

    def _check_dpc_memory(self, dpc, api):
        block = self.pool.live_at(dpc)
        if block is None or dpc + KDPC_SIZE > block.ptr + block.size:
            raise Stop('%s: KDPC 0x%x is not inside a live non-paged pool block' % (api, dpc))

    def run_queued(self):
        """Generator: runs every queued DPC, in order, each on its target
        processor (the DPC dispatcher; also what KeFlushQueuedDpcs waits for)."""
        saved = self.current
        while self.queue:
            dpc = self.queue.pop(0)
            self._check_dpc_memory(dpc, 'the DPC dispatcher')
            state = self.dpcs[dpc]
            self.current = saved if state.target is None else state.target
            self.ran_dpcs.append((dpc, state.target, self.current))
            yield state.routine, [dpc, state.context, self.guest.r64(dpc + 40), self.guest.r64(dpc + 48)]
        self.current = saved

    def KeFlushQueuedDpcs(self):
        self.log('ke', 'KeFlushQueuedDpcs: %d queued' % len(self.queue))
        return self.run_queued()

    def _freed(self, block):
        """ExFreePoolWithTag of a block: its KDPCs are gone; freeing one that
        is still queued is the bug KeFlushQueuedDpcs exists to prevent (§4)."""
        for dpc in [d for d in self.dpcs if block.ptr <= d < block.ptr + block.size]:
            if dpc in self.queue:
                raise Stop('ExFreePoolWithTag frees KDPC 0x%x while it is queued (%s)' % (dpc, block.describe()))
            self.freed_dpcs[dpc] = self.dpcs.pop(dpc)
