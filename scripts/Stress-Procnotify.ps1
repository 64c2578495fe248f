<#
.SYNOPSIS
    Installs and uninstalls procnotify in a loop on the test VM, for the
    stress procedure of docs\windows.md section 13: run it while the QEMU/KVM host
    hot-adds vCPUs, so that notifications race the driver's load and unload.

.DESCRIPTION
    Run in an elevated PowerShell on the VM, after Setup-TestVm.ps1 (with
    Driver Verifier on procnotify.sys) and a reboot. Each iteration runs
    Install-Procnotify.ps1, checks that the procnotify service runs, runs
    Uninstall-Procnotify.ps1 -KeepCertificate, and checks that the service
    is gone or stopped. It stops at the first failure (a script error, the
    service in the wrong state, or a restart that pnputil asked for).

    What a failure of the deregistration inference looks like is a bugcheck
    of the VM (0xCE, 0xD5, 0xCC or 0xC4, with procnotify on the stack) or a
    callback trace line in WinDbg after "procnotify: unloaded=true": see
    docs\windows.md section 13. This script only reports the loop's own failures.

.PARAMETER PackageDir
    The procnotify_package folder (as for Install-Procnotify.ps1).

.PARAMETER DevgenPath
    devgen.exe (as for Install-Procnotify.ps1).

.PARAMETER Iterations
    Install/uninstall cycles to run.

.EXAMPLE
    .\Stress-Procnotify.ps1 -PackageDir C:\procnotify\procnotify_package -DevgenPath C:\procnotify\devgen.exe -Iterations 500
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)]
    [string] $PackageDir,
    [string] $DevgenPath,
    [ValidateRange(1, 1000000)]
    [int] $Iterations = 100
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

. (Join-Path $PSScriptRoot 'Procnotify.Common.ps1')

Assert-SupportedWindows   # build 20348 (Windows Server 2022) or later

$install = Join-Path $PSScriptRoot 'Install-Procnotify.ps1'
$uninstall = Join-Path $PSScriptRoot 'Uninstall-Procnotify.ps1'
$installArguments = @{ PackageDir = $PackageDir }
if ($DevgenPath) { $installArguments['DevgenPath'] = $DevgenPath }

$started = Get-Date
for ($i = 1; $i -le $Iterations; $i++) {
    $processors = (Get-CimInstance -ClassName Win32_ComputerSystem).NumberOfLogicalProcessors
    Write-Host "=== cycle $i of ${Iterations}: $processors logical processors"

    & $install @installArguments
    $service = Get-Service -Name procnotify -ErrorAction SilentlyContinue
    if (-not $service -or $service.Status -ne 'Running') {
        throw "cycle ${i}: procnotify is not running after the install (a restart may be pending; see the output above)."
    }

    & $uninstall -KeepCertificate
    $service = Get-Service -Name procnotify -ErrorAction SilentlyContinue
    if ($service -and $service.Status -ne 'Stopped') {
        throw "cycle ${i}: procnotify is still $($service.Status) after the uninstall."
    }
}
$seconds = [int]((Get-Date) - $started).TotalSeconds
Write-Host "$Iterations install/uninstall cycles completed in $seconds s, no failure. Check the WinDbg log (docs\windows.md section 13)."
