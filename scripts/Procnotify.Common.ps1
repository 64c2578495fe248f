# Helpers shared by the VM-side scripts; dot-sourced, not run on its own:
#   . (Join-Path $PSScriptRoot 'Procnotify.Common.ps1')

# Runs a native command, echoes it, and stops the script if it fails
# (native exit codes do not trip $ErrorActionPreference), unless
# -AllowFailure is given.
function Invoke-Native {
    param([string] $Exe, [string[]] $Arguments, [switch] $AllowFailure)
    Write-Host "> $Exe $($Arguments -join ' ')"
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0 -and -not $AllowFailure) { throw "$Exe exited with $LASTEXITCODE" }
}
