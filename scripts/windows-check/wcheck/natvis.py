"""What src/procnotify.natvis asks of the PDB: type names, field paths, layout.

`parse(text)` returns the visualizers (each with its type name patterns and
every use of a field path in its expressions) and the layout lines of the
file's header comment. The pdb module resolves both against the PDB's type
records. Nothing here reads a PDB, so the unit tests feed it strings.

Expressions are the NatVis subset the file uses (C++-like): field access
`a.b`, `a->b`, indexing `a[i]`, unary `* & ! - ~`, casts `(int)x`,
`($T1 *)x`, casts to a pointer to a named struct and pointer arithmetic on
the result (`((a::B<$T1 >*)p - 1)->c`: the path `c` is then checked from
`a::B<...>`, its `$Tn` replaced by the visualized type's arguments), binary
operators and `=` (in <Exec>), parentheses, numbers, NatVis variables
(`<Variable Name=...>`) and template parameters (`$T1`). Each field path is
recorded with what its use requires of the value:

- `scalar`: an operand of an operator or of a scalar cast, or a whole
  Condition: an integer, bool, enum or pointer (a struct there means the
  expression no longer reads what it was written for, e.g. an atomic whose
  value moved one field deeper);
- `pointer`: dereferenced with `*`, `->` or `[i]`;
- `any`: displayed as a whole (`{table}`, `<Item>dpc.value</Item>`).

Layout lines (in the comment at the top) state sizes and offsets:

    layout <type pattern> size <bytes> [<path>@<offset>[:<kind>] ...]

e.g. `layout procnotify_core::table::slot::Slot<*> size 128 value@0x0
number@0x58`; kinds are u8 u16 u32 u64 i8 i16 i32 i64 bool pointer struct.
"""

import re
import xml.etree.ElementTree as ET

NS = "{http://schemas.microsoft.com/vstudio/debugger/natvis/2010}"
KINDS = {"u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "bool", "pointer", "struct"}
# C/C++ scalar type names a cast may name
SCALAR_CASTS = {"int", "unsigned", "char", "short", "long", "bool", "__int64", "float", "double",
                "unsigned int", "unsigned char", "unsigned short", "unsigned long", "unsigned __int64"}
TOKEN = re.compile(r"\s*(0[xX][0-9A-Fa-f]+|\d+|[A-Za-z_$][A-Za-z0-9_$]*(?:::[A-Za-z_][A-Za-z0-9_]*)*|->|<<|>>|<=|>=|==|!=|&&|\|\||\S)")
FORMAT_SPECIFIER = re.compile(r",\s*!?[A-Za-z]*!?\s*$")


class NatvisError(Exception):
    """An expression or layout line this module cannot read."""


class Use:
    """A field path an expression uses, and what the use requires of it."""

    def __init__(self, steps, need, expr, where, root=None):
        self.steps = tuple(steps)  # ("field", name) | ("arrow", name) | ("index",)
        self.need = need  # "scalar" | "pointer" | "any"
        self.expr = expr
        self.where = where
        # None: the path starts at the visualized type. A type name (which
        # may hold `$T1` ...): the path starts at that struct, reached
        # through a cast to a pointer to it, e.g. `((a::B<$T1 >*)p - 1)->c`.
        self.root = root

    def text(self):
        out = ""
        for step in self.steps:
            out += {"field": ".", "arrow": "->"}.get(step[0], "") + (step[1] if len(step) > 1 else "[]")
        return f"({self.root})" + out if self.root else out.lstrip(".")

    def __repr__(self):
        return f"Use({self.text()!r}, {self.need})"


class Cast:
    """A cast to a template parameter, e.g. `($T1 *)`: the parameter must name a type.
    (A cast to a named struct pointer is recorded as the root of the Uses
    after it instead: its fields are checked, not only its name.)"""

    def __init__(self, param, expr, where):
        self.param, self.expr, self.where = param, expr, where


def tokenize(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            break
        out.append(m.group(1))
        pos = m.end()
    if expr[pos:].strip():
        raise NatvisError(f"cannot read {expr!r} at {expr[pos:]!r}")
    return out


class _Parser:
    """Recursive descent over one expression; collects Use and Cast records."""

    def __init__(self, expr, variables, where):
        self.tokens = tokenize(expr)
        self.i = 0
        self.expr, self.variables, self.where = expr, variables, where
        self.uses, self.casts = [], []

    def peek(self, k=0):
        return self.tokens[self.i + k] if self.i + k < len(self.tokens) else None

    def take(self, want=None):
        tok = self.peek()
        if tok is None or (want is not None and tok != want):
            raise NatvisError(f"{self.expr!r}: expected {want or 'more'} at token {self.i}")
        self.i += 1
        return tok

    def parse(self, need):
        chains = self.binary()
        if self.peek() is not None:
            raise NatvisError(f"{self.expr!r}: unexpected {self.peek()!r}")
        self.require(chains, need)
        return self

    def require(self, chain, need):
        """Record a chain (a pending Use) with what its context needs."""
        if chain is not None:
            steps, root = chain
            self.uses.append(Use(steps, need, self.expr, self.where, root))

    def binary(self):
        left = self.unary()
        ops = {"<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "&", "|", "^", "="}
        if left is not None and left[1] and not left[0] and self.peek() in ("+", "-"):
            # A pointer just cast to a named struct, moved by whole elements
            # (`(T*)p - 1`): still a pointer to that struct.
            while self.peek() in ("+", "-"):
                self.take()
                self.require(self.unary(), "scalar")
            return left
        if self.peek() in ops:
            self.require(left, "scalar")
            while self.peek() in ops:
                self.take()
                self.require(self.unary(), "scalar")
            return None
        if self.peek() == "?":
            self.require(left, "scalar")
            self.take("?")
            self.require(self.binary(), "any")
            self.take(":")
            self.require(self.binary(), "any")
            return None
        return left

    def cast_ahead(self):
        """If a cast starts here, return (type name, pointer depth, tokens)."""
        if self.peek() != "(":
            return None
        j, words = self.i + 1, []
        while j < len(self.tokens) and re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$:]*", self.tokens[j]):
            words.append(self.tokens[j])
            j += 1
        name = " ".join(words)
        if len(words) == 1 and "::" in name and j < len(self.tokens) and self.tokens[j] == "<":
            # A template type: its arguments up to the matching `>`, kept as
            # written (`$T1 ` and the space before a closing `>` included).
            depth, parts = 0, []
            while j < len(self.tokens):
                tok = self.tokens[j]
                depth += {"<": 1, ">": -1}.get(tok, 0)
                parts.append(tok)
                j += 1
                if depth == 0:
                    break
            if depth != 0:
                return None
            name += "".join(t if t in "<>," else t + " " if t.startswith("$T") else t for t in parts)
        stars = 0
        while j < len(self.tokens) and self.tokens[j] == "*":
            stars += 1
            j += 1
        if not words or j >= len(self.tokens) or self.tokens[j] != ")":
            return None
        if name in SCALAR_CASTS or name.startswith("$T") or ("::" in name and stars == 1):
            return name, stars, j + 1 - self.i
        return None

    def unary(self):
        tok = self.peek()
        if tok in ("*",):
            self.take()
            self.require(self.unary(), "pointer")
            return None
        if tok in ("&",):
            self.take()
            self.require(self.unary(), "any")
            return None
        if tok in ("!", "-", "~", "+"):
            self.take()
            self.require(self.unary(), "scalar")
            return None
        cast = self.cast_ahead()
        if cast:
            name, stars, length = cast
            self.i += length
            if name.startswith("$T"):
                self.casts.append(Cast(name, self.expr, self.where))
            named = "::" in name and stars == 1
            self.require(self.unary(), "scalar" if stars == 0 else "pointer" if named else "any")
            if named:
                # A pointer to a named struct: what follows starts there.
                return ([], name)
            return None
        return self.postfix()

    def postfix(self):
        tok = self.take()
        chain = None
        if tok == "(":
            inner = self.binary()
            self.take(")")
            if inner is not None and inner[1] and not inner[0]:
                chain = ([("pointer",)], inner[1])  # `(T*)...` in parentheses
            else:
                self.require(inner, "any")
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tok) and tok not in self.variables and tok != "sizeof":
            chain = ([("field", tok)], None)
        elif not re.fullmatch(r"0[xX][0-9A-Fa-f]+|\d+|[A-Za-z_$][A-Za-z0-9_$]*", tok):
            raise NatvisError(f"{self.expr!r}: unexpected {tok!r}")
        while self.peek() in (".", "->", "["):
            op = self.take()
            if op == "[":
                self.require(self.binary(), "scalar")
                self.take("]")
                step = ("index",)
            else:
                step = ("field" if op == "." else "arrow", self.take())
            if chain is not None:
                if chain[0] == [("pointer",)]:
                    # The cast pointer itself: `->f` is the struct's field f,
                    # `[i]` an element (the struct), `.f` a mistake.
                    if step[0] == "field":
                        raise NatvisError(f"{self.expr!r}: '.' on a pointer to {chain[1]}")
                    chain[0].clear()
                    if step[0] == "arrow":
                        chain[0].append(("field", step[1]))
                    continue
                chain[0].append(step)
        if chain is not None and chain[0] == [("pointer",)]:
            chain = ([], chain[1])
        return chain


def expression_uses(expr, variables=(), where="", need="any"):
    """(uses, casts) of one expression; `need` is what its context requires."""
    expr = FORMAT_SPECIFIER.sub("", expr.strip())
    p = _Parser(expr, set(variables), where).parse(need)
    return p.uses, p.casts


def display_parts(text):
    """The {expressions} of a DisplayString ({{ and }} are literal braces)."""
    parts, i = [], 0
    while i < len(text):
        if text.startswith("{{", i) or text.startswith("}}", i):
            i += 2
        elif text[i] == "{":
            j = text.index("}", i)
            parts.append(text[i + 1:j])
            i = j + 1
        else:
            i += 1
    return parts


class TypeVis:
    """One <Type>: its name patterns and every field path its expressions use."""

    def __init__(self, names):
        self.names = names
        self.uses, self.casts = [], []


def parse_type(elem):
    t = TypeVis([elem.get("Name")] + [a.get("Name") for a in elem.findall(f"{NS}AlternativeType")])
    variables = {v.get("Name") for v in elem.iter(f"{NS}Variable")}

    def add(expr, where, need="any"):
        uses, casts = expression_uses(expr, variables, where, need)
        t.uses += uses
        t.casts += casts

    for node in elem.iter():
        tag = node.tag.replace(NS, "")
        if node.get("Condition"):
            add(node.get("Condition"), f"{tag} Condition", "scalar")
        if tag == "DisplayString":
            for part in display_parts(node.text or ""):
                add(part, "DisplayString")
        elif tag in ("Item", "ExpandedItem", "Exec") and node.text:
            add(node.text, tag)
        elif tag == "Variable" and node.get("InitialValue"):
            add(node.get("InitialValue"), "Variable InitialValue")
        elif tag in ("Size", "ValuePointer") and node.text:
            add(node.text, tag)
        if tag == "Item" and node.get("Name"):
            for part in display_parts(node.get("Name")):
                add(part, "Item Name")
    return t


LAYOUT = re.compile(r"^\s*layout\s+(\S+)\s+size\s+(0x[0-9A-Fa-f]+|\d+)((?:\s+\S+@\S+)*)\s*$", re.M)
FIELD_AT = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)@(0x[0-9A-Fa-f]+|\d+)(?::(\w+))?$")


class LayoutLine:
    def __init__(self, pattern, size, fields, text):
        self.pattern, self.size, self.fields, self.text = pattern, size, fields, text


def parse_layout(comment):
    out = []
    for m in LAYOUT.finditer(comment):
        fields = []
        for item in m.group(3).split():
            f = FIELD_AT.match(item)
            if not f:
                raise NatvisError(f"layout line {m.group(0).strip()!r}: cannot read {item!r}")
            if f.group(3) and f.group(3) not in KINDS:
                raise NatvisError(f"layout {item!r}: kind {f.group(3)} is not one of {' '.join(sorted(KINDS))}")
            fields.append((f.group(1).split("."), int(f.group(2), 0), f.group(3)))
        out.append(LayoutLine(m.group(1), int(m.group(2), 0), fields, m.group(0).strip()))
    return out


def parse(text):
    """(visualizers, layout lines) of a NatVis file's text."""
    root = ET.fromstring(text)
    types = [parse_type(e) for e in root.findall(f"{NS}Type")]
    comments = re.findall(r"<!--(.*?)-->", text, re.S)
    layout = [line for c in comments for line in parse_layout(c)]
    return types, layout


def pattern_regex(pattern):
    """A NatVis type name pattern (`*` = any text) as a regex."""
    return re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$")


def template_args(name):
    """Top-level template arguments of a type name: `A<B<C>,D>` -> ['B<C>', 'D']."""
    start = name.find("<")
    if start < 0:
        return []
    args, depth, cur = [], 0, ""
    for ch in name[start + 1:name.rfind(">")]:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        args.append(cur.strip())
    return args


def substitute(name, args):
    """`name` with each `$Tn` replaced by the n-th of `args` (a visualized
    type's template arguments), as the debugger expands them."""
    return re.sub(r"\$T(\d+)", lambda m: args[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(args) else m.group(0),
                  name)
