//! [`WindowsKernel`]: the wdk-sys implementation of [`Os`], and
//! [`NonPagedPool`], the tagged pool allocator the engine uses.

use core::alloc::Layout;
use core::ffi::c_void;
use core::fmt;
use core::ptr::{self, NonNull};

use wdk::nt_success;
use wdk_sys::ntddk::{
    DbgPrintEx, ExAllocatePool2, ExFreePoolWithTag, KeDeregisterProcessorChangeCallback, KeFlushQueuedDpcs,
    KeGetCurrentProcessorNumberEx, KeInsertQueueDpc, KeQueryMaximumProcessorCountEx, KeRegisterProcessorChangeCallback,
    KeSetTargetProcessorDpcEx,
};
use wdk_sys::{
    _DPFLTR_TYPE::DPFLTR_IHVDRIVER_ID, ALL_PROCESSOR_GROUPS, DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL, DPFLTR_TRACE_LEVEL,
    DPFLTR_WARNING_LEVEL, KE_PROCESSOR_CHANGE_ADD_EXISTING, POOL_FLAG_NON_PAGED, PROCESSOR_NUMBER, SIZE_T,
};

use super::callback::{KdpcPayload, processor_change};
use crate::driver::Context;
use crate::log::FixedBuf;
use crate::os::{AllocError, Level, NtStatus, Os, PoolAllocator};
use crate::table::Slot;

/// procnotify's pool tag. `from_le_bytes` puts `'P'` in the low byte, so
/// WinDbg (`!poolused 2 PNfy`, `!poolfind PNfy`) and PoolMon show `PNfy`.
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"PNfy");

/// `DPFLTR_IHVDRIVER_ID` (77): the component whose mask is
/// `nt!Kd_IHVDRIVER_Mask`. A C enum, so bindgen makes it an `i32` constant.
#[allow(clippy::cast_sign_loss)] // 77
const COMPONENT: u32 = DPFLTR_IHVDRIVER_ID as u32;

/// Bytes of one formatted log line, NUL included. `DbgPrintEx` accepts 512;
/// the engine's longest line is about 110.
const LINE: usize = 200;

/// `MEMORY_ALLOCATION_ALIGNMENT` on 64-bit Windows: what `ExAllocatePool2`
/// guarantees for any request.
const POOL_ALIGNMENT: usize = 16;

/// Bytes kept just below an over-aligned block for the pool's own pointer.
const HEADER: usize = size_of::<*mut u8>();

/// The non-paged pool under [`POOL_TAG`]. Honours any power-of-two alignment
/// (the table's slots need 128 bytes): a larger alignment over-allocates,
/// places the block at the first aligned address at least [`HEADER`] bytes in,
/// and keeps the pool's own pointer in the word just below it.
#[derive(Clone, Copy, Debug, Default)]
pub struct NonPagedPool;

impl NonPagedPool {
    /// Whether `layout` needs the over-aligned path.
    fn over_aligned(layout: Layout) -> bool {
        layout.align() > POOL_ALIGNMENT
    }
}

// SAFETY: `ExAllocatePool2` returns zeroed (no `POOL_FLAG_UNINITIALIZED`),
// 16-aligned non-paged memory owned by the caller until `ExFreePoolWithTag`;
// larger alignments are served from inside a bigger block, see `allocate`.
unsafe impl PoolAllocator for NonPagedPool {
    fn allocate(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let size = layout.size().max(1);
        let align = layout.align();
        let total = if Self::over_aligned(layout) {
            size.checked_add(align).and_then(|n| n.checked_add(HEADER)).ok_or(AllocError)?
        } else {
            size
        };
        let bytes = SIZE_T::try_from(total).map_err(|_| AllocError)?;
        // SAFETY: no preconditions beyond IRQL <= DISPATCH_LEVEL for non-paged
        // pool; the engine allocates at PASSIVE or APC level.
        let raw = unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, bytes, POOL_TAG) };
        let raw = NonNull::new(raw.cast::<u8>()).ok_or(AllocError)?;
        if !Self::over_aligned(layout) {
            return Ok(raw);
        }
        // The first `align`-aligned address at least HEADER bytes in: the
        // offset is in HEADER ..= HEADER + align - 1, whatever `raw`'s alignment.
        let start = raw.as_ptr().addr().wrapping_add(HEADER);
        let aligned = start.wrapping_add(align.wrapping_sub(1)) & !align.wrapping_sub(1);
        let offset = aligned.wrapping_sub(raw.as_ptr().addr());
        // SAFETY: `offset <= HEADER + align - 1`, and the allocation is
        // `size + align + HEADER` bytes, so `raw + offset` and the `size` bytes
        // after it are inside it.
        let block = unsafe { raw.add(offset) };
        #[allow(clippy::cast_ptr_alignment)] // `block` is `align`-aligned, so this word is pointer-aligned
        let saved = block.as_ptr().wrapping_sub(HEADER).cast::<*mut u8>();
        // SAFETY: `offset >= HEADER`: the pointer-aligned word below `block` is
        // inside the allocation and not part of the caller's block.
        unsafe { saved.write(raw.as_ptr()) };
        Ok(block)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        let raw = if Self::over_aligned(layout) {
            #[allow(clippy::cast_ptr_alignment)] // `ptr` is `align`-aligned, so this word is pointer-aligned
            let saved = ptr.as_ptr().wrapping_sub(HEADER).cast::<*mut u8>();
            // SAFETY: `allocate` stored the pool's pointer in this word for every
            // over-aligned layout, and the caller passes the same layout.
            unsafe { saved.read() }
        } else {
            ptr.as_ptr()
        };
        // SAFETY: `raw` came from `ExAllocatePool2` with this tag and is freed
        // once (the caller's contract).
        unsafe { ExFreePoolWithTag(raw.cast::<c_void>(), POOL_TAG) };
    }
}

/// The handle `KeRegisterProcessorChangeCallback` returned.
pub struct Registration(NonNull<c_void>);

// SAFETY: an opaque kernel handle; `KeDeregisterProcessorChangeCallback` may
// be called on any thread at PASSIVE_LEVEL.
unsafe impl Send for Registration {}

/// The Windows kernel as the engine sees it. A ZST: every method is a kernel
/// call.
#[derive(Clone, Copy, Debug, Default)]
pub struct WindowsKernel;

// SAFETY: `KeDeregisterProcessorChangeCallback` waits for a running callback
// and none runs afterwards; the callback receives only the context passed to
// `register`. Every other method is a plain kernel call.
unsafe impl Os for WindowsKernel {
    type Payload = KdpcPayload;
    type Allocator = NonPagedPool;
    type Registration = Registration;

    fn allocator(&self) -> NonPagedPool {
        NonPagedPool
    }

    fn max_processors(&self) -> u32 {
        let all_groups = u16::try_from(ALL_PROCESSOR_GROUPS).unwrap_or(u16::MAX);
        // SAFETY: no preconditions; callable at any IRQL.
        unsafe { KeQueryMaximumProcessorCountEx(all_groups) }
    }

    fn current_processor(&self) -> u32 {
        // SAFETY: the out-parameter is optional; NULL asks for the index only.
        unsafe { KeGetCurrentProcessorNumberEx(ptr::null_mut()) }
    }

    fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        let line = FixedBuf::<LINE>::format(args);
        let level = match level {
            Level::Error => DPFLTR_ERROR_LEVEL,
            Level::Warning => DPFLTR_WARNING_LEVEL,
            Level::Trace => DPFLTR_TRACE_LEVEL,
            Level::Info => DPFLTR_INFO_LEVEL,
        };
        // SAFETY: a constant format with one `%s`, matched by a NUL-terminated
        // string that outlives the call. Callable at IRQL <= DIRQL.
        unsafe { DbgPrintEx(COMPONENT, level, c"%s\n".as_ptr().cast(), line.as_c_str().as_ptr()) };
    }

    unsafe fn register(&self, context: NonNull<Context<Self>>) -> Option<Registration> {
        // SAFETY: `processor_change` has the PROCESSOR_CALLBACK_FUNCTION
        // signature; the caller keeps `context` alive until deregistration (or
        // until this returns NULL). PASSIVE_LEVEL: called from DriverEntry.
        let handle = unsafe {
            KeRegisterProcessorChangeCallback(
                Some(processor_change),
                context.as_ptr().cast::<c_void>(),
                KE_PROCESSOR_CHANGE_ADD_EXISTING,
            )
        };
        NonNull::new(handle).map(Registration)
    }

    fn deregister(&self, registration: Registration) {
        // SAFETY: a handle returned by KeRegisterProcessorChangeCallback,
        // deregistered once (it is consumed). PASSIVE_LEVEL: unload.
        unsafe { KeDeregisterProcessorChangeCallback(registration.0.as_ptr()) };
    }

    fn kick(&self, slot: &Slot<KdpcPayload>) {
        let Some(payload) = slot.payload() else {
            self.log(Level::Error, format_args!("procnotify: dpc index={} has no KDPC", slot.index()));
            return;
        };
        let dpc = payload.as_ptr();
        let target = slot.proc_number();
        let mut number = PROCESSOR_NUMBER { Group: target.group, Number: target.number, ..PROCESSOR_NUMBER::default() };
        // SAFETY: `dpc` was initialised by KeInitializeDpc and lives until the
        // table is dropped, after KeFlushQueuedDpcs. It is not queued: each
        // slot is kicked once, when it goes online, from the serialised callback.
        let status = unsafe { KeSetTargetProcessorDpcEx(dpc, &raw mut number) };
        if !nt_success(status) {
            self.log(
                Level::Error,
                format_args!(
                    "procnotify: dpc index={} group={} number={} target status={}",
                    slot.index(),
                    target.group,
                    target.number,
                    NtStatus(status),
                ),
            );
            return;
        }
        // SAFETY: as above; the DPC routine only reads its DeferredContext.
        let queued = unsafe { KeInsertQueueDpc(dpc, ptr::null_mut(), ptr::null_mut()) };
        self.log(
            Level::Trace,
            format_args!(
                "procnotify: dpc index={} group={} number={} queued={}",
                slot.index(),
                target.group,
                target.number,
                queued != 0,
            ),
        );
    }

    fn flush_deferred(&self) {
        // SAFETY: PASSIVE_LEVEL (unload); waits for every queued DPC.
        unsafe { KeFlushQueuedDpcs() };
    }
}
