import os
import unittest

from wcheck import allowlist, defs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
REPO = os.path.join(ROOT, "..", "..")
URL = "https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-x"
ROWS = (f"# comment\nExAllocatePool2\tWindows 10, version 2004\t10.0.19041\t{URL}\n"
        f"KeInitializeDpc\tAvailable starting with Windows 2000.\t5.0.2195\t{URL}\n"
        f"KeNew\tWindows 11, version 22H2\t10.0.22621\t{URL}\n"
        f"memcpy\tno minimum stated\tany\t{URL}\n")
FLOOR = (10, 0, 20348)


class Parse(unittest.TestCase):
    def test_rows(self):
        rows = allowlist.parse_allowlist(ROWS)
        self.assertEqual(rows["ExAllocatePool2"][1], (10, 0, 19041))
        self.assertEqual(rows["memcpy"][1], allowlist.ANY)

    def test_errors(self):
        for text in ("A\tb\t1.2.3\n", f"A\tb\t10.0\t{URL}\n", "A\tb\t1.2.3\thttps://example.com/\n",
                     f"A\tb\t1.2.3\t{URL}\nA\tb\t1.2.3\t{URL}\n"):
            with self.assertRaises(allowlist.AllowlistError, msg=text):
                allowlist.parse_allowlist(text)


class Floor(unittest.TestCase):
    def test_floor(self):
        inf = "[Manufacturer]\n%M% = Standard,NT$ARCH$.10.0...20348\n[Standard.NT$ARCH$.10.0...20348]\n"
        self.assertEqual(allowlist.inf_floor(inf), FLOOR)

    def test_floors_must_agree(self):
        with self.assertRaises(allowlist.AllowlistError):
            allowlist.inf_floor("NT$ARCH$.10.0...20348\nNT$ARCH$.10.0...19041\n")
        with self.assertRaises(allowlist.AllowlistError):
            allowlist.inf_floor("[Manufacturer]\n%M% = Standard,NT$ARCH$\n")

    def test_the_repository_inf(self):
        with open(os.path.join(REPO, "inf", "procnotify.inx")) as f:
            self.assertEqual(allowlist.inf_floor(f.read()), FLOOR)


class Check(unittest.TestCase):
    def setUp(self):
        self.rows = allowlist.parse_allowlist(ROWS)

    def test_pass(self):
        problems, newest = allowlist.check({"ExAllocatePool2", "KeInitializeDpc", "memcpy"}, self.rows, FLOOR)
        self.assertEqual(problems, [])
        self.assertEqual(newest[0], "ExAllocatePool2")

    def test_newer_than_the_floor_fails(self):
        problems, _ = allowlist.check({"KeNew", "KeInitializeDpc"}, self.rows, FLOOR)
        self.assertEqual(len(problems), 1)
        self.assertIn("KeNew", problems[0])

    def test_unlisted_fails(self):
        problems, _ = allowlist.check({"KeStallExecutionProcessor"}, self.rows, FLOOR)
        self.assertIn("not in the allowlist", problems[0])

    def test_floor_is_inclusive(self):
        rows = allowlist.parse_allowlist(f"K\tWindows Server 2022\t10.0.20348\t{URL}\n")
        self.assertEqual(allowlist.check({"K"}, rows, FLOOR)[0], [])


class Repository(unittest.TestCase):
    """The committed allowlist covers every ntoskrnl.def entry, at or below the INF floor."""

    def test_def_entries_are_allowed(self):
        with open(os.path.join(ROOT, "ntoskrnl-allowlist.tsv")) as f:
            rows = allowlist.parse_allowlist(f.read())
        with open(os.path.join(ROOT, "link", "ntoskrnl.def")) as f:
            _lib, symbols = defs.parse_def(f.read())
        with open(os.path.join(REPO, "inf", "procnotify.inx")) as f:
            floor = allowlist.inf_floor(f.read())
        problems, _ = allowlist.check(set(symbols), rows, floor)
        self.assertEqual(problems, [])
        self.assertEqual(set(rows), set(symbols), "every allowlist row is an import and vice versa")


if __name__ == "__main__":
    unittest.main()
