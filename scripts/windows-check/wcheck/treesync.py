"""Copy the project's working tree into the scratch build folder.

    python3 -m wcheck.treesync REPO DEST

The Windows build runs in a copy (target/windows-check/tree) because it uses
a patched wdk-build through `[patch.crates-io]`, which rewrites Cargo.lock:
the user's checkout is never modified. The copy holds what git would commit
(tracked files and untracked ones git does not ignore, as they are in the
working tree now); a file is copied only when its size or modification time
differs, with its modification time kept, so cargo rebuilds only what
changed. Files gone from the working tree are removed from the copy; the
copy's own target/ (the cargo target folder) is kept.

Prints the commit and whether the working tree differs from it.
"""

import os
import shutil
import subprocess
import sys


def tree_files(repo):
    out = subprocess.run(["git", "-C", repo, "ls-files", "-z", "-c", "-o", "--exclude-standard"],
                         check=True, capture_output=True).stdout
    return sorted({p for p in out.decode().split("\0") if p and os.path.isfile(os.path.join(repo, p))})


def sync(repo, dest, files):
    """Make dest hold exactly `files` (plus target/); return (copied, removed)."""
    copied = removed = 0
    wanted = set(files)
    for rel in files:
        src, dst = os.path.join(repo, rel), os.path.join(dest, rel)
        s = os.stat(src)
        try:
            d = os.stat(dst)
            if d.st_size == s.st_size and d.st_mtime_ns == s.st_mtime_ns and d.st_mode == s.st_mode:
                continue
        except FileNotFoundError:
            pass
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.lexists(dst):
            os.unlink(dst)
        shutil.copy2(src, dst)
        copied += 1
    for dirpath, dirs, names in os.walk(dest, topdown=True):
        rel_dir = os.path.relpath(dirpath, dest)
        if rel_dir == ".":
            dirs[:] = [d for d in dirs if d != "target"]
        for name in names:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel not in wanted:
                os.unlink(os.path.join(dirpath, name))
                removed += 1
    return copied, removed


def describe(repo):
    head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True)
    commit = head.stdout.strip() if head.returncode == 0 else "none"
    status = subprocess.run(["git", "-C", repo, "status", "--porcelain"], capture_output=True, text=True)
    return commit, ("clean" if not status.stdout.strip() else "modified")


def main(argv=None):
    repo, dest = (os.path.abspath(p) for p in (argv or sys.argv[1:]))
    os.makedirs(dest, exist_ok=True)
    copied, removed = sync(repo, dest, tree_files(repo))
    commit, state = describe(repo)
    print(f"{commit[:12]} ({'working tree ' + state}; {copied} files copied, {removed} removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
