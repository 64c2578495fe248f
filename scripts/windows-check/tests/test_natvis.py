import os
import unittest

from wcheck import natvis

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.join(HERE, "..", "..", "..")


def uses(expr, variables=(), need="any"):
    return [(u.text(), u.need) for u in natvis.expression_uses(expr, variables, need=need)[0]]


class Expressions(unittest.TestCase):
    def test_paths_and_needs(self):
        self.assertEqual(uses("state.v.value == 0"), [("state.v.value", "scalar")])
        self.assertEqual(uses("(int)state.v.value"), [("state.v.value", "scalar")])
        self.assertEqual(uses("*p.value"), [("p.value", "pointer")])
        self.assertEqual(uses("table"), [("table", "any")])
        self.assertEqual(uses("recorded.v.value,x"), [("recorded.v.value", "any")])
        self.assertEqual(uses("1 << first_shift"), [("first_shift", "scalar")])

    def test_indexing_and_variables(self):
        self.assertEqual(uses("links.pointer[i].p.value != 0", {"i"}), [("links.pointer[].p.value", "scalar")])
        self.assertEqual(uses("i < capacity", {"i"}), [("capacity", "scalar")])
        self.assertEqual(uses("i = i + 1", {"i"}), [])
        self.assertEqual(uses("a->b.c"), [("a->b.c", "any")])

    def test_template_cast(self):
        found, casts = natvis.expression_uses("*($T1 *)&value")
        self.assertEqual([(u.text(), u.need) for u in found], [("value", "any")])
        self.assertEqual([c.param for c in casts], ["$T1"])

    def test_named_struct_cast(self):
        found, casts = natvis.expression_uses("((a::Shared*)(t.links.pointer + t.capacity))->stats.n.v.value")
        self.assertEqual([(u.text(), u.need, u.root) for u in found],
                         [("t.links.pointer", "scalar", None), ("t.capacity", "scalar", None),
                          ("(a::Shared).stats.n.v.value", "any", "a::Shared")])
        self.assertEqual(casts, [])
        found, _ = natvis.expression_uses("((a::b::Control<$T1 >*)links.pointer - 1)->allocated.v.value")
        self.assertEqual([(u.text(), u.need, u.root) for u in found],
                         [("links.pointer", "pointer", None),
                          ("(a::b::Control<$T1 >).allocated.v.value", "any", "a::b::Control<$T1 >")])
        with self.assertRaises(natvis.NatvisError):
            natvis.expression_uses("((a::Shared*)p).stats")

    def test_substitute(self):
        self.assertEqual(natvis.substitute("a::C<$T1 >", ["x::P<y::K<z> >", "q"]), "a::C<x::P<y::K<z> > >")
        self.assertEqual(natvis.substitute("a::C<$T3 >", ["x"]), "a::C<$T3 >")

    def test_condition_context(self):
        self.assertEqual(uses("p.value", need="scalar"), [("p.value", "scalar")])

    def test_unreadable(self):
        with self.assertRaises(natvis.NatvisError):
            natvis.expression_uses("a.b)")
        with self.assertRaises(natvis.NatvisError):
            natvis.expression_uses("a @ b")


class Parts(unittest.TestCase):
    def test_display_parts(self):
        self.assertEqual(natvis.display_parts("{{ capacity={table.capacity} n={x} }}"), ["table.capacity", "x"])
        self.assertEqual(natvis.display_parts("{{ not loaded }}"), [])

    def test_template_args(self):
        self.assertEqual(natvis.template_args("a::B<c::D<e>,f::G>"), ["c::D<e>", "f::G"])
        self.assertEqual(natvis.template_args("a::B"), [])

    def test_pattern(self):
        rx = natvis.pattern_regex("a::B<*>")
        self.assertTrue(rx.match("a::B<c::D<e> >"))
        self.assertFalse(rx.match("a::b::B<c>"))

    def test_layout(self):
        (line,) = natvis.parse_layout("  layout a::B<*> size 0x80 value@0x0 number@88 v.value@0x60:u8\n")
        self.assertEqual((line.pattern, line.size), ("a::B<*>", 128))
        self.assertEqual(line.fields, [(["value"], 0, None), (["number"], 88, None), (["v", "value"], 0x60, "u8")])
        with self.assertRaises(natvis.NatvisError):
            natvis.parse_layout("layout a size 1 x@1:int128\n")


class RepositoryNatvis(unittest.TestCase):
    def test_src_natvis_parses(self):
        with open(os.path.join(REPO, "src", "procnotify.natvis")) as f:
            types, layout = natvis.parse(f.read())
        names = [t.names[0] for t in types]
        self.assertIn("procnotify_core::table::slot::Slot<*>", names)
        self.assertGreaterEqual(len(layout), 5)
        slot = next(t for t in types if t.names[0].startswith("procnotify_core::table::slot::Slot"))
        self.assertIn(("state.v.value", "scalar"), [(u.text(), u.need) for u in slot.uses])
        self.assertEqual([c.param for c in slot.casts][:1], ["$T1"])


if __name__ == "__main__":
    unittest.main()
