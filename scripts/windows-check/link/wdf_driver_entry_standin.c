/*
 * STAND-IN for Microsoft's WdfDriverEntry.lib (the KMDF 1.33 client stub).
 *
 * What this is: a few dozen lines of C written for procnotify's Windows check
 * on Linux (scripts/windows-check/run.sh), compiled with clang-cl into
 * target/windows-check/wdkroot/Lib/wdf/kmdf/x64/1.33/WdfDriverEntry.lib, the
 * place a WDK keeps the real one, because the real library is part of the
 * WDK and cannot be downloaded or redistributed. It is NOT Microsoft's code.
 * The real build (`cargo make` on Windows with the WDK) never uses it: it
 * links the WDK's WdfDriverEntry.lib.
 *
 * What it does, as the real stub does (modelled on the framework's MIT
 * sources: fxldr.h's WDF_BIND_INFO2, the loader's WdfVersionBind contract in
 * fxlibrarycommon.cpp, and wdfglobals.h's DisplaceDriverUnload, in
 * microsoft/Windows-Driver-Frameworks):
 *   - defines the image entry point FxDriverEntry (`/ENTRY:FxDriverEntry`,
 *     which wdk-build passes to the linker);
 *   - keeps a copy of the registry path (RtlCopyUnicodeString) and binds to
 *     the framework: WdfVersionBind(DriverObject, &copy, &BindInfo,
 *     &WdfDriverGlobals) with a KMDF 1.33 bind info whose FuncTable points
 *     at WdfFunctions_01033 (the loader stores the address of the
 *     framework's function table there) and whose FuncCount is
 *     WdfFunctionTableNumEntries (458, which the loader requires exactly);
 *   - calls the driver's DriverEntry; if that fails, unbinds
 *     (WdfVersionUnbind) and returns its status;
 *   - on success, if the framework's WdfDriverGlobals->DisplaceDriverUnload
 *     is TRUE, puts its own unload routine first in the chain: it calls the
 *     driver object's previous DriverUnload (KMDF's, when the driver set
 *     EvtDriverUnload), then unbinds;
 *   - with a NULL driver object (a miniport's second call) only calls
 *     DriverEntry;
 *   - defines the globals client code links against (WdfFunctions_01033,
 *     WdfDriverGlobals, WdfFunctionCount, WdfStructureCount, WdfStructures,
 *     WdfClientVersionHigherThanFramework, WdfMinimumVersionRequired,
 *     WdfDriverMiniportUnloadOverride).
 *
 * What the real one does beyond it (none of which this check can see):
 *   - FxDriverEntry first initialises the /GS security cookie
 *     (__security_init_cookie, from the WDK's static libraries; this file is
 *     compiled with /GS- and the check links an empty
 *     BufferOverflowFastFailK.lib);
 *   - binds the class extensions the driver declares (WdfVersionBindClass;
 *     procnotify declares none), initialises the driver's WDF object type
 *     information, and on a DriverEntry failure reports it to the loader
 *     (WdfLdrQueryInterface) and logs it with DbgPrintEx;
 *   - is Microsoft's code, built with the WDK's compiler, flags and checks.
 *
 * It imports WdfVersionBind and WdfVersionUnbind from WDFLDR.SYS and
 * RtlCopyUnicodeString from ntoskrnl.exe (the .def files beside this one).
 * An emulator serving WdfVersionBind must fill in WdfDriverGlobals (zeroed,
 * as the framework allocates them) and *BindInfo->FuncTable, and its
 * WdfDriverCreate must set WdfDriverGlobals->DisplaceDriverUnload, as KMDF
 * does (fxdriverapi.cpp: TRUE for a PnP driver, and for a miniport or
 * legacy driver only when it has an EvtDriverUnload).
 */
#include <ntddk.h>
#include <wdf.h>

/* fxldr.h (private to the framework, MIT): the bind information the stub
 * hands to WdfVersionBind. Version 2 (stubs of KMDF 1.25 and later) appends
 * pointers to the client's globals to version 1; V1.Size is the size of
 * the whole version 2 structure. */
typedef struct _PN_WDF_VERSION {
    ULONG Major;
    ULONG Minor;
    ULONG Build;
} PN_WDF_VERSION;

typedef struct _PN_WDF_BIND_INFO {
    ULONG Size;
    PWCHAR Component;
    PN_WDF_VERSION Version;
    ULONG FuncCount;
    WDFFUNC *FuncTable;
    PVOID Module;
} PN_WDF_BIND_INFO;

typedef struct _PN_WDF_BIND_INFO2 {
    PN_WDF_BIND_INFO V1;
    ULONG *MinimumVersionRequired;
    BOOLEAN *ClientVersionHigherThanFramework;
    ULONG *FuncCountPtr;
    ULONG *StructCountPtr;
    WDF_STRUCT_INFO *StructTable;
} PN_WDF_BIND_INFO2;

__declspec(dllimport) NTSTATUS WdfVersionBind(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath,
                                              PN_WDF_BIND_INFO *BindInfo, PWDF_DRIVER_GLOBALS *Globals);
__declspec(dllimport) NTSTATUS WdfVersionUnbind(PUNICODE_STRING RegistryPath, PN_WDF_BIND_INFO *BindInfo,
                                                PWDF_DRIVER_GLOBALS Globals);

DRIVER_INITIALIZE DriverEntry; /* the driver's, exported by the Rust crate */
DRIVER_INITIALIZE FxDriverEntry;
static DRIVER_UNLOAD StandinDriverUnload;

/* The client globals, with the types wdf.h and wdffuncenum.h declare. */
const WDFFUNC *WdfFunctions_01033 = NULL; /* set by WdfVersionBind */
PWDF_DRIVER_GLOBALS WdfDriverGlobals = NULL; /* set by WdfVersionBind */
BOOLEAN WdfClientVersionHigherThanFramework = FALSE;
ULONG WdfFunctionCount = WdfFunctionTableNumEntries; /* wdk-sys bounds the table with it */
ULONG WdfStructureCount = 0;
WDF_STRUCT_INFO WdfStructures = NULL;
ULONG WdfMinimumVersionRequired = KMDF_VERSION_MINOR;
WDFFUNC WdfDriverMiniportUnloadOverride = NULL;

static WCHAR StandinComponent[] = L"KmdfLibrary";
static PN_WDF_BIND_INFO2 StandinBindInfo = {
    {sizeof(PN_WDF_BIND_INFO2), StandinComponent, {KMDF_VERSION_MAJOR, KMDF_VERSION_MINOR, 0},
     WdfFunctionTableNumEntries, (WDFFUNC *)&WdfFunctions_01033, NULL},
    &WdfMinimumVersionRequired,
    &WdfClientVersionHigherThanFramework,
    &WdfFunctionCount,
    &WdfStructureCount,
    &WdfStructures,
};

/* The registry path, kept for WdfVersionUnbind at unload (260 characters,
 * truncated beyond, as RtlCopyUnicodeString does). */
static WCHAR StandinRegistryPathBuffer[260];
static UNICODE_STRING StandinRegistryPath = {0, sizeof(StandinRegistryPathBuffer), StandinRegistryPathBuffer};
static PDRIVER_UNLOAD StandinOriginalUnload = NULL;

NTSTATUS FxDriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    NTSTATUS status;

    if (DriverObject == NULL) {
        return DriverEntry(NULL, RegistryPath);
    }
    RtlCopyUnicodeString(&StandinRegistryPath, RegistryPath);
    status = WdfVersionBind(DriverObject, &StandinRegistryPath, &StandinBindInfo.V1, &WdfDriverGlobals);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    status = DriverEntry(DriverObject, RegistryPath);
    if (!NT_SUCCESS(status)) {
        WdfVersionUnbind(&StandinRegistryPath, &StandinBindInfo.V1, WdfDriverGlobals);
        return status;
    }
    if (WdfDriverGlobals->DisplaceDriverUnload) {
        StandinOriginalUnload = DriverObject->DriverUnload;
        DriverObject->DriverUnload = StandinDriverUnload;
    }
    return status;
}

static void StandinDriverUnload(PDRIVER_OBJECT DriverObject)
{
    if (StandinOriginalUnload != NULL) {
        StandinOriginalUnload(DriverObject);
    }
    WdfVersionUnbind(&StandinRegistryPath, &StandinBindInfo.V1, WdfDriverGlobals);
}
