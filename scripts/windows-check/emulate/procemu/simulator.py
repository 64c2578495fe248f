"""The other side of the comparison: `simulate script FILE` (crates/procnotify-sim), and
`procnotify-ctl --reply FILE table` (crates/procnotify-ctl), which prints the
emulated driver's query replies as it prints a real one."""

import json
import os
import re
import subprocess
import tempfile

from .catalogue import REPO


def build(package, binary):
    """`cargo build -p PACKAGE --bin BINARY` for the host; the executable's
    path from cargo's own report."""
    env = {k: v for k, v in os.environ.items() if k not in ('CARGO_BUILD_TARGET', 'RUSTFLAGS')}
    done = subprocess.run(['cargo', 'build', '-q', '-p', package, '--bin', binary,
                           '--message-format=json'], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit('emulate: cargo build of %s failed:\n%s' % (binary, done.stderr))
    for line in done.stdout.splitlines():
        message = json.loads(line)
        if message.get('reason') == 'compiler-artifact' and message.get('executable') \
                and message['target']['name'] == binary:
            return message['executable']
    raise SystemExit('emulate: cargo built no %s executable' % binary)


def executable(path, what):
    if not os.access(path, os.X_OK):
        raise SystemExit('emulate: %s %s is not an executable' % (what, path))
    return path


class Simulator:
    def __init__(self, path=None):
        self.path = executable(path or build('procnotify-sim', 'simulate'), 'the simulator')
        self.scratch = tempfile.TemporaryDirectory(prefix='procnotify-emulate-')

    def run(self, script):
        """(exit status, stdout, stderr) of `simulate script` on the script's
        text (with --query-after-each when the script asks for it)."""
        path = os.path.join(self.scratch.name, script.name + '.txt')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(script.text)
        flags = ['--query-after-each'] if script.query_after_each else []
        done = subprocess.run([self.path, *flags, 'script', path], capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr


class Ctl:
    """`procnotify-ctl --reply FILE table`: the real tool decoding and
    printing a reply the emulated driver wrote."""

    def __init__(self, path=None):
        self.path = executable(path or build('procnotify-ctl', 'procnotify-ctl'), 'procnotify-ctl')
        self.scratch = tempfile.TemporaryDirectory(prefix='procnotify-emulate-ctl-')
        self.count = 0

    def table(self, reply):
        """(exit status, stdout, stderr) for the reply's bytes."""
        self.count += 1
        path = os.path.join(self.scratch.name, 'reply-%d.bin' % self.count)
        with open(path, 'wb') as f:
            f.write(reply)
        done = subprocess.run([self.path, '--reply', path, 'table'], capture_output=True, text=True)
        os.remove(path)
        return done.returncode, done.stdout, done.stderr


def pool_allocations(output):
    """The simulator summary's count of successful pool allocations."""
    found = re.search(r'^pool: allocations=(\d+) ', output, re.M)
    return int(found.group(1)) if found else None
