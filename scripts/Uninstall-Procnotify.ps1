<#
.SYNOPSIS
    Removes the procnotify device (which unloads the driver), deletes the
    driver package from the driver store, and checks that nothing is left.

.DESCRIPTION
    Run in an elevated PowerShell on the test VM. Removing the last device
    makes KMDF call EvtDriverUnload: deregister, flush DPCs, free. With Driver
    Verifier on, a pool leak at that point is bugcheck 0xC4 (0x62).

.PARAMETER KeepCertificate
    Leave WDRLocalTestCert in the Root and TrustedPublisher stores.

.EXAMPLE
    .\Uninstall-Procnotify.ps1
#>
[CmdletBinding()]
param(
    [string] $HardwareId = 'Root\procnotify',
    [switch] $KeepCertificate
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

. (Join-Path $PSScriptRoot 'Procnotify.Common.ps1')

# 1. Remove every device with our hardware ID (present or not): the driver unloads.
$devices = @(Get-PnpDevice -ErrorAction SilentlyContinue | Where-Object { $_.HardwareID -contains $HardwareId })
foreach ($device in $devices) {
    Invoke-Native pnputil.exe @('/remove-device', $device.InstanceId)
}
if ($devices.Count -eq 0) { Write-Host "No device with hardware ID $HardwareId." }

# 2. The service must stop (EvtDriverUnload ran). Give it a few seconds.
$deadline = (Get-Date).AddSeconds(15)
while ($true) {
    $service = Get-Service -Name procnotify -ErrorAction SilentlyContinue
    if (-not $service -or $service.Status -eq 'Stopped') { break }
    if ((Get-Date) -gt $deadline) { throw "procnotify is still $($service.Status) after removing its device." }
    Start-Sleep -Milliseconds 500
}

# 3. Delete the package(s) from the driver store (oemNN.inf names vary).
$packages = @(Get-WindowsDriver -Online | Where-Object { $_.OriginalFileName -like '*\procnotify.inf' })
foreach ($package in $packages) {
    Invoke-Native pnputil.exe @('/delete-driver', $package.Driver, '/uninstall', '/force')
}
if ($packages.Count -eq 0) { Write-Host 'No procnotify package in the driver store.' }

# 4. The service entry normally goes with the package; remove a leftover.
if (Get-Service -Name procnotify -ErrorAction SilentlyContinue) {
    Invoke-Native sc.exe @('delete', 'procnotify')
}

# 5. Optionally forget the test certificate.
if (-not $KeepCertificate) {
    foreach ($store in @('Root', 'TrustedPublisher')) {
        Get-ChildItem "Cert:\LocalMachine\$store" |
            Where-Object { $_.Subject -eq 'CN=WDRLocalTestCert' } |
            Remove-Item
    }
}

# 6. Check.
Invoke-Native sc.exe @('query', 'procnotify') -AllowFailure   # expected: 1060, service does not exist
$left = @(Get-WindowsDriver -Online | Where-Object { $_.OriginalFileName -like '*\procnotify.inf' })
if ($left.Count -ne 0) { throw "Driver store still holds: $($left.Driver -join ', ')" }
Write-Host 'procnotify is gone. In WinDbg, !poolused 2 PNfy should list no PNfy allocations.'
