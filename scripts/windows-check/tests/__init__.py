"""Unit tests of the Windows check's logic; they need no headers, no build
and no pefile. Run from the repository root:

    python3 -m unittest discover -s scripts/windows-check/tests -t scripts/windows-check
"""
