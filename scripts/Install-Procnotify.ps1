<#
.SYNOPSIS
    Installs the procnotify driver package on the test VM and creates its
    root-enumerated device (Root\procnotify), which loads the driver.

.DESCRIPTION
    Run in an elevated PowerShell on the VM (Windows Server 2022 / build 20348
    or later), after Setup-TestVm.ps1 and a reboot. Steps: trust the test
    certificate (LocalMachine Root and TrustedPublisher), create the device
    with devgen, add and install the driver package with pnputil, check that
    the procnotify service runs. DriverEntry runs during the pnputil step:
    watch WinDbg.

    Safe to run again: a certificate already trusted, a device already
    present, a package already in the driver store and already installed on
    the device (pnputil 259) are reported and skipped. A newer build of the
    package replaces the installed one: the device restarts, so the driver
    unloads and loads again.

.PARAMETER PackageDir
    The procnotify_package folder copied from the build machine
    (target\x86_64-pc-windows-msvc\debug\procnotify_package on the build
    machine; C:\procnotify\procnotify_package after docs\windows.md section 6).

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

Assert-SupportedWindows   # build 20348 (Windows Server 2022) or later

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

# 1. Trust the test certificate the package was signed with (skip a store
#    that already holds it: same thumbprint).
$certificate = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList $cer
foreach ($store in @('Root', 'TrustedPublisher')) {
    if (Test-Path "Cert:\LocalMachine\$store\$($certificate.Thumbprint)") {
        Write-Host "WDRLocalTestCert ($($certificate.Thumbprint)) already in LocalMachine\$store"
    } else {
        Import-Certificate -FilePath $cer -CertStoreLocation "Cert:\LocalMachine\$store" | Out-Null
        Write-Host "Imported WDRLocalTestCert ($($certificate.Thumbprint)) into LocalMachine\$store"
    }
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
#    procnotify.sys loads and DriverEntry registers the callback. A package
#    already in the store is not added twice; 259 means the device already
#    has this driver (or a better one), so nothing was reinstalled.
$code = Invoke-PnpUtil @('/add-driver', $inf, '/install')
if ($code -eq 3010) {
    Write-Warning 'Windows finishes this install at the restart: check WinDbg and "sc query procnotify" after it.'
    return
}

# 4. The driver must be loaded: its service runs once DriverEntry succeeded.
$device = @(Get-PnpDevice -PresentOnly | Where-Object { $_.HardwareID -contains $HardwareId })
$deadline = (Get-Date).AddSeconds(15)
while ($true) {
    $service = Get-Service -Name procnotify -ErrorAction SilentlyContinue
    if ($service -and $service.Status -eq 'Running') { break }
    if ((Get-Date) -gt $deadline) {
        $device | Format-Table -AutoSize Status, Class, FriendlyName, InstanceId | Out-Host
        $state = if ($service) { "$($service.Status)" } else { 'not installed' }
        throw ("The procnotify service is $state. Stopped: DriverEntry most likely failed, and WinDbg shows " +
            '"procnotify: load failed: status=0x...". Not installed: the package was not installed on the ' +
            'device (see %windir%\inf\setupapi.dev.log).')
    }
    Start-Sleep -Milliseconds 500
}

$device | Format-Table -AutoSize Status, Class, FriendlyName, InstanceId | Out-Host
Invoke-Native sc.exe @('query', 'procnotify')
