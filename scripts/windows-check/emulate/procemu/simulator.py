"""The other side of the comparison: `simulate script FILE` (crates/procnotify-sim)."""

import json
import os
import re
import subprocess
import tempfile

from .catalogue import REPO


class Simulator:
    def __init__(self, path=None):
        self.path = path or self._build()
        if not os.access(self.path, os.X_OK):
            raise SystemExit('emulate: the simulator %s is not an executable' % self.path)
        self.scratch = tempfile.TemporaryDirectory(prefix='procnotify-emulate-')

    @staticmethod
    def _build():
        """`cargo build -p procnotify-sim --bin simulate` for the host; the
        executable's path from cargo's own report."""
        env = {k: v for k, v in os.environ.items() if k not in ('CARGO_BUILD_TARGET', 'RUSTFLAGS')}
        done = subprocess.run(['cargo', 'build', '-q', '-p', 'procnotify-sim', '--bin', 'simulate',
                               '--message-format=json'], cwd=REPO, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit('emulate: cargo build of the simulator failed:\n' + done.stderr)
        for line in done.stdout.splitlines():
            message = json.loads(line)
            if message.get('reason') == 'compiler-artifact' and message.get('executable') \
                    and message['target']['name'] == 'simulate':
                return message['executable']
        raise SystemExit('emulate: cargo built no simulate executable')

    def run(self, script):
        """(exit status, stdout, stderr) of `simulate script` on the script's text."""
        path = os.path.join(self.scratch.name, script.name + '.txt')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(script.text)
        done = subprocess.run([self.path, 'script', path], capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr


def pool_allocations(output):
    """The simulator summary's count of successful pool allocations."""
    found = re.search(r'^pool: allocations=(\d+) ', output, re.M)
    return int(found.group(1)) if found else None
