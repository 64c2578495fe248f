#!/usr/bin/env python3
"""Every repository path written in backticks in README.md and docs/*.md exists.

A path is a word inside an inline code span (`...`, outside fenced code
blocks) whose first component is a top-level file or folder of the
repository, e.g. `crates/procnotify-sim/src/script/` or
`tests/golden/simulate-boot4-add4-fail6.txt`; a span holding a command is
split into words. Words with a placeholder or pattern (`...`, `*`, `<`, `{`,
`NAME`-style capitals after a slash, `$`) are skipped, and so are paths
under an anchored entry of .gitignore (made by a run, like
`fuzz/artifacts/`), and a trailing `:LINE`, `#anchor` or punctuation is
dropped. A path of another project's sources must not start with one of
ours (write `wdk-build-0.6.0/src/...`, not `src/...`). Relative links ([text](path)) are not
checked here: they are links, and resolve or not on their own.

Exit status 1, with each missing path and where it is written, if any is
missing. Standard library only.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_TOP = {".git", "target"}
PLACEHOLDER = re.compile(r"\.\.\.|[*<>{}$]|/[A-Z][A-Z_]+(/|$|\.)")
SPAN = re.compile(r"(`+)(.+?)\1")


def documents():
    yield "README.md"
    docs = os.path.join(ROOT, "docs")
    for name in sorted(os.listdir(docs)):
        if name.endswith(".md"):
            yield f"docs/{name}"


def spans(text):
    """(line number, span text) of every inline code span outside fences."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced:
            for match in SPAN.finditer(line):
                yield number, match.group(2)


def candidates(span, top):
    for word in span.split():
        word = word.strip("'\"()[],;")
        word = re.sub(r"(:\d+(-\d+)?|#.*|[.:])$", "", word)
        if "/" not in word or PLACEHOLDER.search(word):
            continue
        if word.split("/", 1)[0] in top:
            yield word


def ignored():
    """The anchored entries of .gitignore (`/fuzz/artifacts`), without the slash."""
    with open(os.path.join(ROOT, ".gitignore"), encoding="utf-8") as file:
        return [line.strip()[1:].rstrip("/") for line in file if line.startswith("/")]


def main():
    top = {name for name in os.listdir(ROOT) if name not in SKIP_TOP}
    generated = ignored()
    missing, checked = [], 0
    for document in documents():
        with open(os.path.join(ROOT, document), encoding="utf-8") as file:
            text = file.read()
        for number, span in spans(text):
            for path in candidates(span, top):
                if any(path.rstrip("/") == g or path.startswith(g + "/") for g in generated):
                    continue
                checked += 1
                if not os.path.exists(os.path.join(ROOT, path)):
                    missing.append(f"{document}:{number}: `{path}` does not exist")
    for line in missing:
        print(f"docs-paths: {line}")
    if missing:
        print(f"docs-paths: FAILED: {len(missing)} of {checked} paths in backticks do not exist")
        return 1
    print(f"docs-paths: OK: {checked} paths in backticks exist (README.md and docs/*.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
