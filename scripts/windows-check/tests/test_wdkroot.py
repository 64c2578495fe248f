import contextlib
import io
import os
import tempfile
import unittest

from wcheck import wdkroot


def write(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def git_set(root):
    write(f"{root}/ddk/km/wdm.h", '#include <DriverSpecs.h>\n#include "sub\\\\Inner.h"\n#include <nowhere.h>\n')
    write(f"{root}/ddk/km/sub/inner.h")
    write(f"{root}/sdk/shared/ntdef.h")
    write(f"{root}/sdk/shared/driverspecs.h")
    write(f"{root}/wdf/src/publicinc/wdf/kmdf/1.33/wdf.h", "#include <WdfTypes.h>\n")
    write(f"{root}/wdf/src/publicinc/wdf/kmdf/1.33/wdftypes.h")


class Layout(unittest.TestCase):
    def test_git_set_with_case_aliases(self):
        with tempfile.TemporaryDirectory() as tmp:
            git_set(f"{tmp}/h")
            with contextlib.redirect_stdout(io.StringIO()) as out:
                self.assertEqual(wdkroot.main(["--headers", f"{tmp}/h", "--out", f"{tmp}/root"]), 0)
            self.assertIn("3 case aliases, 1 include names found nowhere", out.getvalue())
            inc = f"{tmp}/root/Include/10.0.22000.0"
            self.assertTrue(os.path.isfile(f"{inc}/shared/DriverSpecs.h"))
            self.assertTrue(os.path.isfile(f"{inc}/km/sub/Inner.h"))
            self.assertTrue(os.path.isfile(f"{tmp}/root/Include/wdf/kmdf/1.33/WdfTypes.h"))
            for d in ("Lib/10.0.22000.0/km/x64", "Lib/wdf/kmdf/x64/1.33", "Include/10.0.22000.0/km/crt"):
                self.assertTrue(os.path.isdir(f"{tmp}/root/{d}"), d)
            # unchanged input: not laid out again
            with contextlib.redirect_stdout(io.StringIO()) as out:
                wdkroot.main(["--headers", f"{tmp}/h", "--out", f"{tmp}/root"])
            self.assertIn("(unchanged)", out.getvalue())

    def test_wdk_copy(self):
        with tempfile.TemporaryDirectory() as tmp:
            for v in ("10.0.22621.0", "10.0.26100.0"):
                write(f"{tmp}/Include/{v}/km/wdm.h")
                write(f"{tmp}/Include/{v}/shared/ntdef.h")
            write(f"{tmp}/Include/wdf/kmdf/1.33/wdf.h")
            src = wdkroot.find_sources(tmp)
            self.assertEqual((src["version"], src["origin"]), ("10.0.26100.0", "WDK copy 10.0.26100.0"))
            self.assertEqual(wdkroot.find_sources(tmp, "10.0.22621.0")["version"], "10.0.22621.0")

    def test_neither_layout(self):
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaises(wdkroot.HeaderError):
                wdkroot.find_sources(tmp)
            write(f"{tmp}/ddk/km/wdm.h")
            with self.assertRaisesRegex(wdkroot.HeaderError, "lacks"):
                wdkroot.find_sources(tmp)


if __name__ == "__main__":
    unittest.main()
