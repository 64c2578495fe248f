import contextlib
import io
import os
import tempfile
import unittest

from wcheck import defs

HERE = os.path.dirname(os.path.abspath(__file__))
LINK = os.path.join(HERE, "..", "link")

NTOS = """; comment
LIBRARY ntoskrnl.exe
EXPORTS
    KeInsertQueueDpc
    memcmp                 ; profile: debug
    DbgPrint               ; profile: none (unused)
"""
LDR = "LIBRARY WDFLDR.SYS\nEXPORTS\n    WdfVersionBind\n"


def load(*texts):
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, text in enumerate(texts):
            paths.append(os.path.join(tmp, f"{i}.def"))
            with open(paths[-1], "w") as f:
                f.write(text)
        return defs.load_defs(paths)


class ParseDef(unittest.TestCase):
    def test_profiles(self):
        lib, symbols = defs.parse_def(NTOS)
        self.assertEqual(lib, "ntoskrnl.exe")
        self.assertEqual(symbols, {"KeInsertQueueDpc": {"debug", "release"}, "memcmp": {"debug"}, "DbgPrint": set()})

    def test_errors(self):
        for text in ("EXPORTS\n x\n", "LIBRARY a\nfoo\n", "LIBRARY a\nEXPORTS\n x ; profile: fast\n",
                     "LIBRARY a\nEXPORTS\n x\n x\n", "LIBRARY a\nEXPORTS\n x=y\n"):
            with self.assertRaises(defs.DefError, msg=text):
                defs.parse_def(text)


class Compare(unittest.TestCase):
    def setUp(self):
        self.d = load(NTOS, LDR)

    def test_exact(self):
        imports = {"ntoskrnl.exe": {"KeInsertQueueDpc", "memcmp"}, "WDFLDR.SYS": {"WdfVersionBind"}}
        self.assertEqual(defs.compare(self.d, imports, "debug"), [])
        release = {"ntoskrnl.exe": {"KeInsertQueueDpc"}, "WDFLDR.SYS": {"WdfVersionBind"}}
        self.assertEqual(defs.compare(self.d, release, "release"), [])

    def test_new_import_fails(self):
        imports = {"ntoskrnl.exe": {"KeInsertQueueDpc", "memcmp", "KeStallExecutionProcessor"},
                   "WDFLDR.SYS": {"WdfVersionBind"}}
        problems = defs.compare(self.d, imports, "debug")
        self.assertEqual(len(problems), 1)
        self.assertIn("KeStallExecutionProcessor", problems[0])

    def test_profile_tag_is_exact(self):
        # memcmp is listed for debug only: a release image importing it fails
        imports = {"ntoskrnl.exe": {"KeInsertQueueDpc", "memcmp"}, "WDFLDR.SYS": {"WdfVersionBind"}}
        self.assertIn("memcmp", " ".join(defs.compare(self.d, imports, "release")))

    def test_stale_entry_fails(self):
        imports = {"ntoskrnl.exe": {"memcmp"}, "WDFLDR.SYS": {"WdfVersionBind"}}
        self.assertIn("KeInsertQueueDpc", " ".join(defs.compare(self.d, imports, "debug")))

    def test_unknown_module_fails(self):
        imports = {"ntoskrnl.exe": {"KeInsertQueueDpc", "memcmp"}, "WDFLDR.SYS": {"WdfVersionBind"},
                   "HAL.dll": {"KeStallExecutionProcessor"}}
        self.assertIn("hal.dll", " ".join(defs.compare(self.d, imports, "debug")))

    def test_module_names_ignore_case(self):
        imports = {"NTOSKRNL.EXE": {"KeInsertQueueDpc", "memcmp"}, "wdfldr.sys": {"WdfVersionBind"}}
        self.assertEqual(defs.compare(self.d, imports, "debug"), [])


class LinkLog(unittest.TestCase):
    def test_undefined_symbols(self):
        log = ("lld-link: error: undefined symbol: KeStallExecutionProcessor\n>>> referenced by x.o\n"
               "lld-link: error: undefined symbol: __imp_WdfVersionBind\n"
               "lld-link: error: undefined symbol: KeStallExecutionProcessor\n")
        self.assertEqual(defs.undefined_symbols(log), ["KeStallExecutionProcessor", "WdfVersionBind"])

    def test_cli_names_the_unlisted_ones(self):
        with tempfile.TemporaryDirectory() as tmp:
            log, ntos = os.path.join(tmp, "link.log"), os.path.join(tmp, "ntoskrnl.def")
            with open(log, "w") as f:
                f.write("lld-link: error: undefined symbol: KeInsertQueueDpc\n"
                        "lld-link: error: undefined symbol: KeStallExecutionProcessor\n")
            with open(ntos, "w") as f:
                f.write(NTOS)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                self.assertEqual(defs.main(["undefined", "link[debug]", log, ntos]), 1)
            self.assertIn("== link[debug]: FAIL the objects import KeStallExecutionProcessor,", out.getvalue())
            self.assertNotIn("KeInsertQueueDpc", out.getvalue())

    def test_unreferenced(self):
        d = load(NTOS, LDR)
        self.assertEqual(defs.unreferenced(d, {"KeInsertQueueDpc", "memcmp", "WdfVersionBind"}), ["DbgPrint"])


class RepositoryDefs(unittest.TestCase):
    def test_the_repository_defs_parse(self):
        paths = [os.path.join(LINK, n) for n in os.listdir(LINK) if n.endswith(".def")]
        d = defs.load_defs(paths)
        self.assertEqual(set(d), {"ntoskrnl.exe", "wdfldr.sys", "hal.dll", "wmilib.sys"})
        self.assertEqual(set(d["wdfldr.sys"][1]), {"WdfVersionBind", "WdfVersionUnbind"})
        self.assertEqual(d["hal.dll"][1], {})


if __name__ == "__main__":
    unittest.main()
