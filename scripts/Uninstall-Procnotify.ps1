<#
.SYNOPSIS
    Removes the procnotify device (which unloads the driver), deletes the
    driver package from the driver store, and checks that nothing is left.

.DESCRIPTION
    Run in an elevated PowerShell on the test VM. Removing the last device
    makes KMDF call EvtDriverUnload: deregister, flush DPCs, free. With Driver
    Verifier on, a pool leak at that point is bugcheck 0xC4 (0x62).

    Safe to run again: a device, package, service or certificate that is
    already gone is reported and skipped. If pnputil asks for a restart
    (3010), the script says so instead of failing; run it again after the
    restart to check that nothing is left.

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

$restartNeeded = $false

# 1. Remove every device with our hardware ID (present or not): the driver unloads.
$devices = @(Get-PnpDevice -ErrorAction SilentlyContinue | Where-Object { $_.HardwareID -contains $HardwareId })
foreach ($device in $devices) {
    if ((Invoke-PnpUtil @('/remove-device', $device.InstanceId)) -eq 3010) { $restartNeeded = $true }
}
if ($devices.Count -eq 0) { Write-Host "No device with hardware ID ${HardwareId}: nothing to remove." }

# 2. The service must stop (EvtDriverUnload ran). Give it a few seconds.
$deadline = (Get-Date).AddSeconds(15)
while ($true) {
    $service = Get-Service -Name procnotify -ErrorAction SilentlyContinue
    if (-not $service -or $service.Status -eq 'Stopped') { break }
    if ((Get-Date) -gt $deadline) {
        if ($restartNeeded) {
            Write-Warning "procnotify is still $($service.Status): it unloads at the restart pnputil asked for."
            break
        }
        throw "procnotify is still $($service.Status) after removing its device."
    }
    Start-Sleep -Milliseconds 500
}

# 3. Delete the package(s) from the driver store (oemNN.inf names vary).
#    Get-WindowsDriver lists third-party packages; none left is not an error.
$packages = @(Get-WindowsDriver -Online | Where-Object { $_.OriginalFileName -like '*\procnotify.inf' })
foreach ($package in $packages) {
    if ((Invoke-PnpUtil @('/delete-driver', $package.Driver, '/uninstall', '/force')) -eq 3010) { $restartNeeded = $true }
}
if ($packages.Count -eq 0) { Write-Host 'No procnotify package in the driver store: nothing to delete.' }

# 4. The service entry normally goes with the package; remove a leftover.
#    1072 (ERROR_SERVICE_MARKED_FOR_DELETE): an earlier run or the package
#    removal already deleted it; Windows drops it once nothing holds it open
#    (at the latest at the next restart). 1060: it vanished meanwhile.
if (Get-Service -Name procnotify -ErrorAction SilentlyContinue) {
    $code = Invoke-Native sc.exe @('delete', 'procnotify') -AcceptedExitCodes 0, 1060, 1072 -PassThru
    if ($code -eq 1072) { Write-Host 'The procnotify service is already marked for deletion.' }
}

# 5. Optionally forget the test certificate.
if (-not $KeepCertificate) {
    foreach ($store in @('Root', 'TrustedPublisher')) {
        $certificates = @(Get-ChildItem "Cert:\LocalMachine\$store" |
            Where-Object { $_.Subject -eq 'CN=WDRLocalTestCert' })
        foreach ($certificate in $certificates) {
            Remove-Item -Path $certificate.PSPath
            Write-Host "Removed WDRLocalTestCert ($($certificate.Thumbprint)) from LocalMachine\$store"
        }
        if ($certificates.Count -eq 0) { Write-Host "No WDRLocalTestCert in LocalMachine\$store." }
    }
}

# 6. Check. sc.exe query: 1060 (ERROR_SERVICE_DOES_NOT_EXIST) is the expected
#    result; 0 means the service entry still exists (marked for deletion).
$code = Invoke-Native sc.exe @('query', 'procnotify') -AcceptedExitCodes 0, 1060 -PassThru
$left = @(Get-WindowsDriver -Online | Where-Object { $_.OriginalFileName -like '*\procnotify.inf' })
if ($left.Count -ne 0) { throw "Driver store still holds: $($left.Driver -join ', ')" }
if ($restartNeeded) {
    Write-Warning 'pnputil asked for a restart: run Restart-Computer, then this script again to confirm nothing is left.'
} elseif ($code -eq 0) {
    Write-Warning 'The procnotify service entry still exists (marked for deletion); it goes at the next restart.'
} else {
    Write-Host 'procnotify is gone. In WinDbg, !poolused 2 PNfy should list no PNfy allocations.'
}
