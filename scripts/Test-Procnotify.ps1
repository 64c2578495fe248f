<#
.SYNOPSIS
    Checks, without a debugger, that procnotify holds an online slot with a
    DPC visit for every processor: once after load (Hyper-V), or after each
    hot-add of the QEMU loop.

.DESCRIPTION
    Run in an elevated PowerShell on the test VM, with procnotify installed
    (Install-Procnotify.ps1) and procnotify-ctl.exe copied to the VM. It asks
    Windows how many processors are active (GetActiveProcessorCount over all
    groups) and runs

        procnotify-ctl check --expect-online 0,1,...,n-1

    which exits 0 only when each of those processors has an online slot whose
    DPC ran on it at least once (exit 1 with a one-line reason otherwise).
    Processor indices are dense (0 .. n-1) on a VM that only ever adds
    processors, which is what both loops do.

    -Mode Load (the default; Hyper-V, or any VM after install): one check of
    the processors present, retried for -SettleSeconds, then the table.

    -Mode HotAdd (QEMU/KVM): the same check first, then the script waits for
    the processor count to grow (scripts/add-qemu-vcpu.sh on the host adds
    one), checks again after each addition, and stops after -HotAdds
    additions, or when no processor arrives within -TimeoutSeconds. Start it
    before the first add-qemu-vcpu.sh.

    Exit code: 0 every check passed; 1 a check failed, or no processor
    arrived in time; 3, 4, 5, 6: procnotify-ctl's own (driver not installed,
    access denied, version mismatch, other failure), passed through. The
    script stops at the first failure.

.PARAMETER CtlPath
    procnotify-ctl.exe. Defaults to the one beside this script, then PATH.

.PARAMETER Mode
    Load: check the processors present once. HotAdd: also after each hot-add.

.PARAMETER HotAdds
    HotAdd mode: how many additions to wait for (default 1; 0 = until
    interrupted or timed out).

.PARAMETER TimeoutSeconds
    HotAdd mode: how long to wait for each addition (default 600).

.PARAMETER SettleSeconds
    How long a failing check is retried before it counts (default 15): the
    AddComplete and the new processor's DPC follow the processor count by a
    moment.

.EXAMPLE
    .\Test-Procnotify.ps1                                  # Hyper-V, after Install-Procnotify.ps1

.EXAMPLE
    .\Test-Procnotify.ps1 -Mode HotAdd -HotAdds 4          # QEMU: then run add-qemu-vcpu.sh 4 times on the host
#>
[CmdletBinding()]
param(
    [string] $CtlPath,
    [ValidateSet('Load', 'HotAdd')]
    [string] $Mode = 'Load',
    [ValidateRange(0, 2048)]
    [int] $HotAdds = 1,
    [ValidateRange(1, 86400)]
    [int] $TimeoutSeconds = 600,
    [ValidateRange(0, 600)]
    [int] $SettleSeconds = 15
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
# procnotify-ctl's exit codes are judged below; PowerShell 7.3+ must not turn
# a non-zero one into an error by itself.
$PSNativeCommandUseErrorActionPreference = $false

. (Join-Path $PSScriptRoot 'Procnotify.Common.ps1')

if (-not $CtlPath) {
    $beside = Join-Path $PSScriptRoot 'procnotify-ctl.exe'
    $onPath = Get-Command procnotify-ctl.exe -ErrorAction SilentlyContinue
    if (Test-Path $beside) { $CtlPath = $beside }
    elseif ($onPath) { $CtlPath = $onPath.Source }
    else { throw 'procnotify-ctl.exe not found: pass -CtlPath (build it with cargo build -p procnotify-ctl, docs\windows.md).' }
}

# The number of active logical processors in every group, as the kernel
# counts them (KeQueryActiveProcessorCountEx(ALL_PROCESSOR_GROUPS) in user
# mode); read afresh at each call.
if (-not ('Procnotify.Native' -as [type])) {
    Add-Type -Namespace Procnotify -Name Native -MemberDefinition @'
[System.Runtime.InteropServices.DllImport("kernel32.dll")]
public static extern uint GetActiveProcessorCount(ushort groupNumber);
'@
}
function Get-ActiveProcessorCount {
    return [int][Procnotify.Native]::GetActiveProcessorCount(0xFFFF)   # ALL_PROCESSOR_GROUPS
}

# Runs procnotify-ctl check for processors 0 .. Count-1, retrying a failed
# check (exit 1) every half second for SettleSeconds. Returns 0 on success;
# any other exit code ends the script with it.
function Test-Online {
    param([Parameter(Mandatory)] [int] $Count)
    $list = (0..($Count - 1)) -join ','
    $deadline = (Get-Date).AddSeconds($SettleSeconds)
    while ($true) {
        # stdout only: procnotify-ctl's errors (stderr) go straight to the
        # console (redirecting them would make Windows PowerShell 5.1 throw).
        $output = & $CtlPath check --expect-online $list
        $code = $LASTEXITCODE
        if ($code -eq 0 -or $code -ne 1 -or (Get-Date) -ge $deadline) { break }
        Start-Sleep -Milliseconds 500
    }
    $output | ForEach-Object { Write-Host $_ }
    if ($code -ne 0) {
        Write-Host "FAIL: procnotify-ctl check --expect-online $list exited $code"
        & $CtlPath table | Out-Host
        exit $code
    }
    Write-Host "PASS: processors 0..$($Count - 1) online, each visited by its DPC"
}

$count = Get-ActiveProcessorCount
Write-Host "== $count active processors; procnotify-ctl: $CtlPath"
Test-Online -Count $count
if ($Mode -eq 'Load') {
    & $CtlPath table | Out-Host
    exit 0
}

$added = 0
while ($HotAdds -eq 0 -or $added -lt $HotAdds) {
    Write-Host "== waiting up to ${TimeoutSeconds}s for processor $count (run scripts/add-qemu-vcpu.sh on the host)"
    $deadline = (Get-Date).AddSeconds($TimeoutSeconds)
    while (($now = Get-ActiveProcessorCount) -le $count) {
        if ((Get-Date) -ge $deadline) {
            Write-Host "FAIL: no processor was added within ${TimeoutSeconds}s (still $count)"
            exit 1
        }
        Start-Sleep -Seconds 1
    }
    Write-Host "== hot-add: $count -> $now active processors"
    $added += $now - $count
    $count = $now
    Test-Online -Count $count
}
& $CtlPath table | Out-Host
Write-Host "== done: $added processor(s) hot-added, every check passed"
exit 0
