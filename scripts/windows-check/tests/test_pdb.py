"""The pdb step's resolution against small `llvm-pdbutil dump -types` fixtures:
one laid out as rustc 1.95 lays out atomics, one as rustc 1.96 does."""

import unittest

from wcheck import natvis, pdb

NATVIS = """<?xml version="1.0" encoding="utf-8"?>
<!--
  layout demo::Cell<*> size 16 next@0x0 state@0x8 value@0xC
  layout core::sync::atomic::AtomicU8 size 1 v.value@0x0:u8
-->
<AutoVisualizer xmlns="http://schemas.microsoft.com/vstudio/debugger/natvis/2010">
  <Type Name="demo::Cell&lt;*&gt;">
    <DisplayString Condition="state.v.value == 0">{{ empty }}</DisplayString>
    <DisplayString>{{ next={next.p.value} }}</DisplayString>
    <Expand>
      <Item Name="[state]">(int)state.v.value</Item>
      <ExpandedItem Condition="next.p.value != 0">*next.p.value</ExpandedItem>
      <Item Name="[value]">*($T1 *)&amp;value</Item>
    </Expand>
  </Type>
</AutoVisualizer>
"""


def record(index, kind, name=None, lines=()):
    head = f"   0x{index:04X} | {kind} [size = 40]" + (f" `{name}`" if name else "")
    return "\n".join([head] + [" " * 12 + l for l in lines])


def fields(index, *members):
    return record(index, "LF_FIELDLIST", None,
                  [f"- LF_MEMBER [name = `{n}`, Type = 0x{t:04X}, offset = {o}, attrs = public]" for n, t, o in members])


def struct(index, name, fieldlist, size, forward=None):
    options = f"forward ref (-> 0x{forward:04X}) | has unique name, sizeof 0" if forward else \
        f"has unique name, sizeof {size}"
    return record(index, "LF_STRUCTURE", name, ["unique name: `x`",
                  f"vtable: <no type>, base list: <no type>, field list: "
                  + (f"0x{fieldlist:04X}" if fieldlist else "<no type>"), f"options: {options}"])


COMMON = [
    struct(0x1004, "demo::Cell<demo::Payload>", None, 0, forward=0x100B),
    record(0x1005, "LF_POINTER", None, ["referent = 0x1004, mode = pointer, opts = None, kind = ptr64"]),
    fields(0x1006, ("value", 0x1005, 0)),
    struct(0x1007, "core::cell::UnsafeCell<ptr_mut$<demo::Cell<demo::Payload> > >", 0x1006, 8),
    fields(0x1008, ("p", 0x1007, 0)),
    struct(0x1009, "core::sync::atomic::AtomicPtr<demo::Cell<demo::Payload> >", 0x1008, 8),
    fields(0x100A, ("next", 0x1009, 0), ("state", 0x1003, 8), ("value", 0x100D, 12)),
    struct(0x100B, "demo::Cell<demo::Payload>", 0x100A, 16),
    fields(0x100C, ("x", 0x0075, 0)),
    struct(0x100D, "demo::Payload", 0x100C, 4),
]
# rustc 1.95: AtomicU8 { v: UnsafeCell<u8> { value: u8 } }
RUSTC_195 = "\n".join([
    fields(0x1000, ("value", 0x0020, 0)),
    struct(0x1001, "core::cell::UnsafeCell<u8>", 0x1000, 1),
    fields(0x1002, ("v", 0x1001, 0)),
    struct(0x1003, "core::sync::atomic::AtomicU8", 0x1002, 1),
] + COMMON)
# rustc 1.96: Atomic<u8> { v: UnsafeCell<Align1<u8>> { value: Align1<u8> { __0: u8 } } }
RUSTC_196 = "\n".join([
    fields(0x1010, ("__0", 0x0020, 0)),
    struct(0x1011, "core::sync::atomic::Align1<u8>", 0x1010, 1),
    fields(0x1000, ("value", 0x1011, 0)),
    struct(0x1001, "core::cell::UnsafeCell<core::sync::atomic::Align1<u8> >", 0x1000, 1),
    fields(0x1002, ("v", 0x1001, 0)),
    struct(0x1003, "core::sync::atomic::Atomic<u8>", 0x1002, 1),
] + COMMON)


def run(dump, text=NATVIS):
    types = pdb.Types(dump)
    visualizers, layout = natvis.parse(text)
    return {name: (ok, detail) for name, ok, detail in pdb.check_types(types, visualizers)
            + [pdb.check_layout(types, layout)]}


class Resolution(unittest.TestCase):
    def test_rustc_195_layout_passes(self):
        results = run(RUSTC_195)
        for name, (ok, detail) in results.items():
            self.assertTrue(ok, f"{name}: {detail}")

    def test_rustc_196_atomics_fail(self):
        results = run(RUSTC_196)
        self.assertTrue(results["types"][0])
        self.assertFalse(results["fields"][0])
        self.assertIn("state.v.value", results["fields"][1])
        self.assertIn("needs a scalar", results["fields"][1])
        self.assertFalse(results["layout"][0])
        self.assertIn("core::sync::atomic::AtomicU8: no type record", results["layout"][1])

    def test_renamed_type_fails(self):
        results = run(RUSTC_195, NATVIS.replace("demo::Cell&lt;", "demo::cell::Cell&lt;"))
        self.assertFalse(results["types"][0])
        self.assertIn("demo::cell::Cell<*>", results["types"][1])

    def test_missing_field_and_moved_offset_fail(self):
        results = run(RUSTC_195, NATVIS.replace("next.p.value", "next.q.value").replace("state@0x8", "state@0x9"))
        self.assertFalse(results["fields"][0])
        self.assertIn("has no field q", results["fields"][1])
        self.assertFalse(results["layout"][0])
        self.assertIn("at 0x8, the NatVis says 0x9", results["layout"][1])

    def test_cast_to_a_named_struct_resolves_from_that_struct(self):
        # What the driver's NatVis does for the table's out-of-line state:
        # `((demo::Side<$T1 >*)ptr - 1)->x`, $T1 = the visualized type's argument.
        side = "\n".join([fields(0x1020, ("x", 0x0075, 0)), struct(0x1021, "demo::Side<demo::Payload>", 0x1020, 4)])
        expr = "((demo::Side&lt;$T1 &gt;*)next.p.value - 1)-&gt;x"
        text = NATVIS.replace('<Item Name="[state]">', f'<Item Name="[side]">{expr}</Item>\n      <Item Name="[state]">')
        results = run(RUSTC_195 + "\n" + side, text)
        self.assertTrue(results["fields"][0], results["fields"][1])
        results = run(RUSTC_195 + "\n" + side, text.replace("-&gt;x", "-&gt;y"))
        self.assertFalse(results["fields"][0])
        self.assertIn("demo::Side<demo::Payload> has no field y", results["fields"][1])
        results = run(RUSTC_195, text)
        self.assertFalse(results["fields"][0])
        self.assertIn("no type record named demo::Side<demo::Payload >", results["fields"][1])

    def test_walk_offsets(self):
        types = pdb.Types(RUSTC_195)
        cell = types.named("demo::Cell<demo::Payload>")[0]
        index, offset = types.walk(cell, [("field", "state"), ("field", "v"), ("field", "value")])
        self.assertEqual((types.kind(index), offset), ("u8", 8))
        index, offset = types.walk(cell, [("field", "next"), ("field", "p"), ("field", "value"), ("arrow", "value")])
        self.assertEqual((types.name(index), offset), ("demo::Payload", None))

    def test_debug_context(self):
        types = pdb.Types(RUSTC_195 + "\n" + "\n".join([
            struct(0x1100, "core::sync::atomic::AtomicPtr<procnotify_core::engine::Context<a,b> >", None, 8)]))
        dump = ("  296352 | S_LDATA32 [size = 48] `procnotify::entry::DEBUG_CONTEXT`\n"
                "           type = 0x1100 (core::sync::atomic::AtomicPtr<pr...), addr = 0003:0136\n")
        self.assertTrue(pdb.debug_context(dump, types)[0])
        self.assertFalse(pdb.debug_context(dump.replace("DEBUG_CONTEXT", "OTHER"), types)[0])


if __name__ == "__main__":
    unittest.main()
