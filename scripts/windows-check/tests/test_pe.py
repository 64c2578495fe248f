"""The pe step's judgements on image facts (no pefile needed)."""

import os
import unittest

from wcheck import allowlist, defs, pe

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")

MAP = """ procnotify

 Preferred load address is 0000000180000000

  Address         Publics by Value              Rva+Base               Lib:Object

 0001:00007cf0       DriverEntry                0000000180008cf0     procnotify.o
 0001:0000aca0       FxDriverEntry              000000018000bca0     WdfDriverEntry:wdf_driver_entry_standin.obj

 entry point at         0001:0000aca0
"""


def good_facts():
    with open(os.path.join(ROOT, "link", "ntoskrnl.def")) as f:
        _lib, ntos = defs.parse_def(f.read())
    return {
        "size": 20992, "machine": 0x8664, "subsystem": 1, "subsystem_version": "6.0", "entry_rva": 0xBCA0,
        "image_base": 0x180000000, "dll_characteristics": 0x01E0, "checksum": 0x1234, "checksum_computed": 0x1234,
        "sections": [(".text", 0x60000020, 100), (".rdata", 0x40000040, 10), (".data", 0xC0000040, 10)],
        "imports": {"ntoskrnl.exe": {s for s, p in ntos.items() if "release" in p},
                    "WDFLDR.SYS": {"WdfVersionBind", "WdfVersionUnbind"}},
        "delay_imports": [], "exports": ["DriverEntry", "_fltused", "__CxxFrameHandler3", "__CxxFrameHandler4",
                                         "__GSHandlerCheck_EH4"],
        "entry_symbols": pe.symbols_at(MAP, 0x18000BCA0),
    }


def judge(facts):
    paths = [os.path.join(ROOT, "link", n) for n in os.listdir(os.path.join(ROOT, "link")) if n.endswith(".def")]
    with open(os.path.join(ROOT, "ntoskrnl-allowlist.tsv")) as f:
        rows = allowlist.parse_allowlist(f.read())
    with open(os.path.join(ROOT, "exports.tsv")) as f:
        exports = pe.parse_exports(f.read())
    return {name: (ok, detail) for name, ok, detail in
            pe.checks(facts, "release", defs.load_defs(paths), rows, (10, 0, 20348), exports)}


class Checks(unittest.TestCase):
    def test_good_image_passes(self):
        for name, (ok, detail) in judge(good_facts()).items():
            self.assertTrue(ok, f"{name}: {detail}")

    def expect_failure(self, check, change):
        facts = good_facts()
        change(facts)
        result = judge(facts)
        self.assertFalse(result[check][0], result[check][1])
        others = [n for n, (ok, _) in result.items() if not ok and n != check]
        self.assertEqual(others, [], f"only {check} should fail")

    def test_machine(self):
        self.expect_failure("machine", lambda f: f.update(machine=0xAA64))

    def test_subsystem(self):
        self.expect_failure("subsystem", lambda f: f.update(subsystem=2))

    def test_entry(self):
        self.expect_failure("entry", lambda f: f.update(entry_symbols=["DriverEntry"]))

    def test_force_integrity(self):
        self.expect_failure("dll characteristics", lambda f: f.update(dll_characteristics=0x0160))

    def test_writable_executable_section(self):
        self.expect_failure("sections", lambda f: f["sections"].append(("INIT", 0xE0000020, 10)))

    def test_other_module(self):
        def add_hal(f):
            f["imports"]["HAL.dll"] = {"KeStallExecutionProcessor"}
        facts = good_facts()
        add_hal(facts)
        result = judge(facts)
        self.assertFalse(result["import modules"][0])
        self.assertFalse(result["imports = .def"][0])

    def test_new_kernel_import(self):
        facts = good_facts()
        facts["imports"]["ntoskrnl.exe"].add("KeStallExecutionProcessor")
        result = judge(facts)
        self.assertFalse(result["imports = .def"][0])
        self.assertFalse(result["ntoskrnl allowlist"][0])

    def test_unexpected_export(self):
        self.expect_failure("exports", lambda f: f["exports"].append("procnotify_private"))

    def test_checksum(self):
        self.expect_failure("checksum", lambda f: f.update(checksum=0))


class MapFile(unittest.TestCase):
    def test_symbols_at(self):
        self.assertEqual(pe.symbols_at(MAP, 0x18000BCA0), ["FxDriverEntry"])
        self.assertEqual(pe.symbols_at(MAP, 0x180001000), [])


if __name__ == "__main__":
    unittest.main()
