# Helpers shared by the VM-side scripts; dot-sourced, not run on its own:
#   . (Join-Path $PSScriptRoot 'Procnotify.Common.ps1')

# Runs a native command, echoes it and its output, and stops the script
# (throws) unless its exit code is one of -AcceptedExitCodes (default: 0 only).
# Native exit codes do not trip $ErrorActionPreference, hence this check.
# With -PassThru it returns the exit code; the command's own output goes to
# the host, never into the return value.
function Invoke-Native {
    param(
        [Parameter(Mandatory)]
        [string] $Exe,
        [string[]] $Arguments = @(),
        [int[]] $AcceptedExitCodes = @(0),
        [switch] $PassThru
    )
    # PowerShell 7.3+ can turn a non-zero exit into an error by itself; the
    # exit code is judged below instead.
    $PSNativeCommandUseErrorActionPreference = $false
    Write-Host "> $Exe $($Arguments -join ' ')"
    & $Exe @Arguments | Out-Host
    $code = $LASTEXITCODE
    if ($AcceptedExitCodes -notcontains $code) {
        throw "$Exe exited with $code (accepted: $($AcceptedExitCodes -join ', '))"
    }
    if ($PassThru) { return $code }
}

# pnputil exit codes that are not failures (Microsoft's "PnPUtil return values"):
#   0    ERROR_SUCCESS
#   3010 ERROR_SUCCESS_REBOOT_REQUIRED: done, but a restart is needed to finish
#   259  ERROR_NO_MORE_ITEMS: nothing was done: no device matches the driver,
#        or the device already uses this driver (or a better one)
# Runs pnputil.exe through Invoke-Native accepting exactly these, says what
# 3010 and 259 mean, and returns the exit code.
function Invoke-PnpUtil {
    param([Parameter(Mandatory)] [string[]] $Arguments)
    $code = Invoke-Native pnputil.exe $Arguments -AcceptedExitCodes 0, 3010, 259 -PassThru
    switch ($code) {
        3010 {
            Write-Warning ('pnputil succeeded but Windows must restart to finish (3010, ERROR_SUCCESS_REBOOT_REQUIRED). ' +
                'Run Restart-Computer, then run this script again to check.')
        }
        259 {
            Write-Host 'pnputil: nothing to do (259, ERROR_NO_MORE_ITEMS): no device needed this change.'
        }
    }
    return $code
}

# Stops the script on a Windows build older than 20348 (Windows Server 2022;
# Windows 11 starts at 22000, so every Windows 11 passes): the driver needs
# KMDF 1.33 and ExAllocatePool2, and the INF is decorated
# NT$ARCH$.10.0...20348, so older builds have no matching model.
function Assert-SupportedWindows {
    $build = [int](Get-CimInstance -ClassName Win32_OperatingSystem).BuildNumber
    if ($build -lt 20348) {
        throw "Windows build $build is too old: procnotify needs build 20348 (Windows Server 2022) or later."
    }
}
