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
 * sources: fxldr.h's WDF_BIND_INFO2 and the loader's WdfVersionBind contract
 * in fxlibrarycommon.cpp, microsoft/Windows-Driver-Frameworks):
 *   - defines the image entry point FxDriverEntry (`/ENTRY:FxDriverEntry`,
 *     which wdk-build passes to the linker);
 *   - binds to the framework: WdfVersionBind(DriverObject, RegistryPath,
 *     &BindInfo, &WdfDriverGlobals) with a KMDF 1.33 bind info whose
 *     FuncTable points at WdfFunctions_01033 (the loader stores the address
 *     of the framework's function table there) and whose FuncCount is
 *     WdfFunctionTableNumEntries (458, which the loader requires exactly);
 *   - calls the driver's DriverEntry; if that fails, unbinds
 *     (WdfVersionUnbind) and returns its status;
 *   - on success, if the driver object has an unload routine (KMDF installs
 *     one when the driver sets EvtDriverUnload), displaces it with its own,
 *     which calls the original and then unbinds;
 *   - defines the globals client code links against (WdfFunctions_01033,
 *     WdfDriverGlobals, WdfFunctionCount, WdfStructureCount, WdfStructures,
 *     WdfClientVersionHigherThanFramework, WdfMinimumVersionRequired,
 *     WdfDriverMiniportUnloadOverride).
 *
 * What the real one does beyond it (none of which this check can see):
 *   - initialises the /GS security cookie and the NX non-paged pool opt-in
 *     before anything else (this file is compiled with /GS- and allocates
 *     nothing);
 *   - binds the class extensions the driver declares (WdfVersionBindClass)
 *     and initialises the driver's WDF object type information;
 *   - consults the framework (WdfDriverGlobals) on whether to displace the
 *     unload routine, handles miniport drivers (WdfDriverMiniportUnloadOverride),
 *     and copies the registry path into storage the framework owns;
 *   - is built by Microsoft with the WDK's compiler, flags and checks.
 *
 * Only WDFLDR.SYS's WdfVersionBind and WdfVersionUnbind are imported
 * (scripts/windows-check/link/WdfLdr.def lists exactly these).
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

/* The registry path, kept for WdfVersionUnbind at unload (bounded copy). */
static WCHAR StandinRegistryPathBuffer[512];
static UNICODE_STRING StandinRegistryPath = {0, sizeof(StandinRegistryPathBuffer), StandinRegistryPathBuffer};
static PDRIVER_UNLOAD StandinOriginalUnload = NULL;

static void StandinKeepRegistryPath(PCUNICODE_STRING RegistryPath)
{
    USHORT bytes = 0;
    USHORT i;
    if (RegistryPath != NULL && RegistryPath->Buffer != NULL) {
        bytes = RegistryPath->Length;
        if (bytes > sizeof(StandinRegistryPathBuffer)) {
            bytes = sizeof(StandinRegistryPathBuffer);
        }
        for (i = 0; i < bytes / sizeof(WCHAR); i++) {
            StandinRegistryPathBuffer[i] = RegistryPath->Buffer[i];
        }
    }
    StandinRegistryPath.Length = bytes & (USHORT)~1u;
}

NTSTATUS FxDriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    NTSTATUS status;

    StandinKeepRegistryPath(RegistryPath);
    status = WdfVersionBind(DriverObject, &StandinRegistryPath, &StandinBindInfo.V1, &WdfDriverGlobals);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    status = DriverEntry(DriverObject, RegistryPath);
    if (!NT_SUCCESS(status)) {
        WdfVersionUnbind(&StandinRegistryPath, &StandinBindInfo.V1, WdfDriverGlobals);
        return status;
    }
    if (DriverObject->DriverUnload != NULL) {
        StandinOriginalUnload = DriverObject->DriverUnload;
        DriverObject->DriverUnload = StandinDriverUnload;
    }
    return status;
}

static void StandinDriverUnload(PDRIVER_OBJECT DriverObject)
{
    StandinOriginalUnload(DriverObject);
    WdfVersionUnbind(&StandinRegistryPath, &StandinBindInfo.V1, WdfDriverGlobals);
}
