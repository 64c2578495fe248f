<#
.SYNOPSIS
    Installs the procnotify driver package on the test VM and creates its
    root-enumerated device (Root\procnotify), which loads the driver.

.DESCRIPTION
    Run in an elevated PowerShell on the VM, after Setup-TestVm.ps1 and a
    reboot. Steps: trust the test certificate (LocalMachine Root and
    TrustedPublisher), create the device with devgen, add and install the
    driver package with pnputil. DriverEntry runs during the last step:
    watch WinDbg.

.PARAMETER PackageDir
    The procnotify_package folder copied from the build machine
    (target\debug\procnotify_package).

.PARAMETER DevgenPath
    devgen.exe from the WDK (e.g. C:\Program Files (x86)\Windows Kits\10\Tools\10.0.26100.0\x64\devgen.exe)
    copied to the VM. Defaults to devgen.exe on PATH or in PackageDir.

.EXAMPLE
    .\Install-Procnotify.ps1 -PackageDir C:\procnotify_package -DevgenPath C:\tools\devgen.exe
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)]
    [string] $PackageDir,
    [string] $DevgenPath,
    [string] $HardwareId = 'Root\procnotify'
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

. (Join-Path $PSScriptRoot 'Procnotify.Common.ps1')

$PackageDir = (Resolve-Path $PackageDir).Path
$inf = Join-Path $PackageDir 'procnotify.inf'
$cer = Join-Path $PackageDir 'WDRLocalTestCert.cer'
foreach ($file in @($inf, $cer, (Join-Path $PackageDir 'procnotify.sys'), (Join-Path $PackageDir 'procnotify.cat'))) {
    if (-not (Test-Path $file)) { throw "Missing ${file}: copy the whole procnotify_package folder." }
}

if (-not $DevgenPath) {
    $inPackage = Join-Path $PackageDir 'devgen.exe'
    $onPath = Get-Command devgen.exe -ErrorAction SilentlyContinue
    if (Test-Path $inPackage) { $DevgenPath = $inPackage }
    elseif ($onPath) { $DevgenPath = $onPath.Source }
    else { throw 'devgen.exe not found: pass -DevgenPath (it ships in the WDK Tools folder).' }
}

# 1. Trust the test certificate the package was signed with.
foreach ($store in @('Root', 'TrustedPublisher')) {
    Import-Certificate -FilePath $cer -CertStoreLocation "Cert:\LocalMachine\$store" | Out-Null
    Write-Host "Imported WDRLocalTestCert into LocalMachine\$store"
}

# 2. The root-enumerated device the INF matches (skip if one exists).
$existing = @(Get-PnpDevice -PresentOnly -ErrorAction SilentlyContinue |
    Where-Object { $_.HardwareID -contains $HardwareId })
if ($existing.Count -eq 0) {
    Invoke-Native $DevgenPath @('/add', '/bus', 'ROOT', '/hardwareid', $HardwareId)
} else {
    Write-Host "Device with hardware ID $HardwareId already present: $($existing[0].InstanceId)"
}

# 3. Add the package to the driver store and install it on the device:
#    procnotify.sys loads and DriverEntry registers the callback.
Invoke-Native pnputil.exe @('/add-driver', $inf, '/install')

$device = @(Get-PnpDevice -PresentOnly | Where-Object { $_.HardwareID -contains $HardwareId })
$device | Format-Table -AutoSize Status, Class, FriendlyName, InstanceId
Invoke-Native sc.exe @('query', 'procnotify')
