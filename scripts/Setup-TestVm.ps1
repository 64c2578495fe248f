<#
.SYNOPSIS
    Prepares a Windows test VM (the debuggee) for procnotify: test signing,
    kernel debugging, Driver Verifier on procnotify.sys, and a debug-print
    filter that shows procnotify's trace lines. Reboot afterwards.

.DESCRIPTION
    Run in an elevated PowerShell on the VM: Windows Server 2022 (build 20348)
    or later, Datacenter edition for processor hot-add. Secure Boot must be
    off (test signing is ignored while it is on). Safe to run again.

.PARAMETER DebugTransport
    'net' (KDNET; needs a KDNET-supported NIC, e.g. QEMU's e1000e or a Hyper-V
    synthetic NIC), 'serial' (COM1), or 'none'.

.PARAMETER HostIp
    For 'net': the IP address of the machine running WinDbg (the target sends
    its connection offers there; docs\windows.md section 5.4 and section 8).

.PARAMETER Port
    For 'net': the UDP port WinDbg listens on (50000-50039).

.PARAMETER Key
    For 'net': the connection key, four dot-separated words (e.g. 1.2.3.4).
    WinDbg needs the same key.

.PARAMETER BaudRate
    For 'serial': the baud rate.

.PARAMETER NoVerifier
    Skip Driver Verifier.

.EXAMPLE
    .\Setup-TestVm.ps1 -DebugTransport net -HostIp 192.168.1.10 -Port 50000 -Key 1.2.3.4
    Restart-Computer
#>
[CmdletBinding()]
param(
    [ValidateSet('net', 'serial', 'none')]
    [string] $DebugTransport = 'net',
    [string] $HostIp,
    [ValidateRange(49152, 65535)]
    [int] $Port = 50000,
    [ValidatePattern('^[0-9a-z]+\.[0-9a-z]+\.[0-9a-z]+\.[0-9a-z]+$')]
    [string] $Key = '1.2.3.4',
    [int] $BaudRate = 115200,
    [switch] $NoVerifier
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

. (Join-Path $PSScriptRoot 'Procnotify.Common.ps1')

Assert-SupportedWindows   # build 20348 (Windows Server 2022) or later

if (-not ([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()).IsInRole(
        [Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw 'Run this script from an elevated PowerShell.'
}

try {
    if (Confirm-SecureBootUEFI) { throw 'Secure Boot is on: turn it off in the VM settings first (test signing needs it off).' }
} catch [System.PlatformNotSupportedException] {
    Write-Host 'Legacy BIOS: no Secure Boot.'
}

# 1. Test-signed drivers (procnotify is signed with WDRLocalTestCert).
Invoke-Native bcdedit.exe @('/set', 'testsigning', 'on')

# 2. Kernel debugging.
switch ($DebugTransport) {
    'net' {
        if (-not $HostIp) { throw '-HostIp is required for -DebugTransport net.' }
        Invoke-Native bcdedit.exe @('/debug', 'on')
        Invoke-Native bcdedit.exe @('/dbgsettings', 'net', "hostip:$HostIp", "port:$Port", "key:$Key")
        Write-Host "WinDbg on ${HostIp}: WinDbgX -k net:port=$Port,key=$Key"
        Write-Host '  (with QEMU user-mode networking add ,target=<kvm-host-ip>: docs\windows.md section 8)'
    }
    'serial' {
        Invoke-Native bcdedit.exe @('/debug', 'on')
        Invoke-Native bcdedit.exe @('/dbgsettings', 'serial', 'debugport:1', "baudrate:$BaudRate")
    }
    'none' { Write-Host 'Kernel debugging left unchanged.' }
}

# 3. Driver Verifier, standard settings, on procnotify.sys only. It takes
#    effect at the next boot and stays on until `verifier /reset`. verifier.exe
#    can exit with 2 after changing settings (a restart is needed to apply
#    them): not a failure.
if (-not $NoVerifier) {
    Invoke-Native verifier.exe @('/standard', '/driver', 'procnotify.sys') -AcceptedExitCodes 0, 2
}

# 4. Show procnotify's warning, trace and info lines (DbgPrintEx component
#    IHVDRIVER, levels 1-3). Error-level lines show without this. Read at boot;
#    in a live session `ed nt!Kd_IHVDRIVER_Mask 0xF` does the same at once.
$filter = 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager\Debug Print Filter'
if (-not (Test-Path $filter)) { New-Item -Path $filter -Force | Out-Null }
New-ItemProperty -Path $filter -Name 'IHVDRIVER' -PropertyType DWord -Value 0xF -Force | Out-Null

Write-Host 'Done. Restart the VM (Restart-Computer) for these settings to take effect.'
