import os
import subprocess
import tempfile
import unittest

from wcheck import treesync


def git(repo, *args):
    subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True)


class Sync(unittest.TestCase):
    def test_copy_what_git_would_commit(self):
        with tempfile.TemporaryDirectory() as tmp:
            repo, dest = os.path.join(tmp, "repo"), os.path.join(tmp, "dest")
            os.makedirs(os.path.join(repo, "src"))
            git(repo, "init", "-q")
            for name, text in (("src/lib.rs", "a"), (".gitignore", "ignored.txt\n"), ("ignored.txt", "x"),
                               ("new.rs", "untracked")):
                with open(os.path.join(repo, name), "w") as f:
                    f.write(text)
            git(repo, "add", "src/lib.rs", ".gitignore")
            os.makedirs(os.path.join(dest, "target"))
            with open(os.path.join(dest, "stale.rs"), "w") as f:
                f.write("gone")
            with open(os.path.join(dest, "target", "keep"), "w") as f:
                f.write("cargo's")
            copied, removed = treesync.sync(repo, dest, treesync.tree_files(repo))
            self.assertEqual((copied, removed), (3, 1))
            self.assertTrue(os.path.isfile(os.path.join(dest, "new.rs")))
            self.assertFalse(os.path.exists(os.path.join(dest, "ignored.txt")))
            self.assertFalse(os.path.exists(os.path.join(dest, "stale.rs")))
            self.assertTrue(os.path.isfile(os.path.join(dest, "target", "keep")))
            src = os.stat(os.path.join(repo, "src", "lib.rs"))
            self.assertEqual(os.stat(os.path.join(dest, "src", "lib.rs")).st_mtime_ns, src.st_mtime_ns)
            # nothing changed: nothing copied
            self.assertEqual(treesync.sync(repo, dest, treesync.tree_files(repo)), (0, 0))


if __name__ == "__main__":
    unittest.main()
