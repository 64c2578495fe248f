#!/usr/bin/env python3
"""The public API of a crate as sorted text, one item per line, from its rustdoc
JSON (the format cargo-semver-checks reads; scripts/api-baseline.sh makes it).

    python3 scripts/api-listing.py CRATE.json > CRATE.txt

Beside cargo-semver-checks, which judges whether a change breaks users but
does not see every kind of change (a parameter's or a return value's type,
for one), this listing changes whenever the public API does, so CI's API
check (.ci/semver.sh) compares it with the recorded one in api/ and a
reviewer reads an API change as a diff of a few lines.

What it lists: every item reachable through public modules and public
re-exports (each re-export as a `pub use` line), with its full signature;
fields and variants; trait items; inherent methods; the crate's own trait
impls and the five stable auto traits (Send, Sync, Unpin, UnwindSafe,
RefUnwindSafe), with their bounds. Types are written with their public path
(the shortest one for the crate's own items), so moving an item between
private modules does not change the listing. Not listed: private and
`#[doc(hidden)]` items, blanket impls (From, Into, Any, ...), docs, spans.
Understands rustdoc JSON format versions 57 (Rust 1.95); anything else is
refused with a message, not misread.
"""

import json
import sys

FORMATS = {57}
AUTO_TRAITS = {"Send", "Sync", "Unpin", "UnwindSafe", "RefUnwindSafe"}


class Listing:
    def __init__(self, doc):
        self.index = doc["index"]
        self.paths = doc["paths"]
        self.root = str(doc["root"])
        self.public = {}  # id -> [public paths]
        self.lines = set()

    # ---- reachability ----------------------------------------------------

    def item(self, item_id):
        return self.index.get(str(item_id))

    def hidden(self, item):
        for attr in item.get("attrs", []):
            text = attr if isinstance(attr, str) else json.dumps(attr)
            if "doc(hidden)" in text.replace(" ", ""):
                return True
        return False

    def walk(self, module_id, prefix, seen):
        module = self.item(module_id)
        if module is None or module_id in seen:
            return
        seen = seen | {module_id}
        for child_id in module["inner"]["module"]["items"]:
            child = self.item(child_id)
            if child is None or child["visibility"] != "public" or self.hidden(child):
                continue
            inner = child["inner"]
            if "use" in inner:
                use = inner["use"]
                if use["id"] is None:
                    continue
                target = self.item(use["id"])
                if use["is_glob"]:
                    if target is not None and "module" in target["inner"]:
                        self.walk(str(use["id"]), prefix, seen)
                    continue
                self.reach(str(use["id"]), f"{prefix}::{use['name']}", seen)
            elif child.get("name"):
                self.reach(str(child_id), f"{prefix}::{child['name']}", seen)

    def reach(self, item_id, path, seen):
        self.public.setdefault(item_id, [])
        if path not in self.public[item_id]:
            self.public[item_id].append(path)
        target = self.item(item_id)
        if target is not None and "module" in target["inner"]:
            self.walk(item_id, path, seen)

    def canonical(self, item_id):
        paths = self.public.get(str(item_id))
        if paths:
            return min(paths, key=lambda p: (p.count("::"), p))
        known = self.paths.get(str(item_id))
        if known:
            return "::".join(known["path"])
        return None

    # ---- types -----------------------------------------------------------

    def path(self, path):
        name = self.canonical(path["id"]) or path["path"]
        return name + self.args(path.get("args"))

    def args(self, args):
        if not args:
            return ""
        if "angle_bracketed" in args:
            parts = []
            for arg in args["angle_bracketed"]["args"]:
                if "type" in arg:
                    parts.append(self.ty(arg["type"]))
                elif "lifetime" in arg:
                    parts.append(arg["lifetime"])
                elif "const" in arg:
                    parts.append(arg["const"].get("expr") or "_")
                else:
                    parts.append("_")
            for constraint in args["angle_bracketed"]["constraints"]:
                binding = constraint["binding"]
                name = constraint["name"] + self.args(constraint.get("args"))
                if "equality" in binding:
                    term = binding["equality"]
                    parts.append(f"{name} = {self.ty(term['type']) if 'type' in term else term.get('constant')}")
                else:
                    parts.append(f"{name}: {self.bounds(binding['constraint'])}")
            return f"<{', '.join(parts)}>" if parts else ""
        if "parenthesized" in args:
            inputs = ", ".join(self.ty(t) for t in args["parenthesized"]["inputs"])
            output = args["parenthesized"]["output"]
            return f"({inputs})" + (f" -> {self.ty(output)}" if output else "")
        return ""

    def ty(self, ty):
        if ty is None:
            return "()"
        if isinstance(ty, str):
            return "_" if ty == "infer" else ty
        (kind, value), = ty.items()
        if kind == "resolved_path":
            return self.path(value)
        if kind in ("generic", "primitive"):
            return value
        if kind == "borrowed_ref":
            lifetime = f"{value['lifetime']} " if value["lifetime"] else ""
            mutable = "mut " if value["is_mutable"] else ""
            return f"&{lifetime}{mutable}{self.ty(value['type'])}"
        if kind == "raw_pointer":
            return f"*{'mut' if value['is_mutable'] else 'const'} {self.ty(value['type'])}"
        if kind == "tuple":
            return f"({', '.join(self.ty(t) for t in value)}{',' if len(value) == 1 else ''})"
        if kind == "slice":
            return f"[{self.ty(value)}]"
        if kind == "array":
            return f"[{self.ty(value['type'])}; {value['len']}]"
        if kind == "impl_trait":
            return f"impl {self.bounds(value)}"
        if kind == "dyn_trait":
            traits = [self.poly(t) for t in value["traits"]]
            if value.get("lifetime"):
                traits.append(value["lifetime"])
            return f"dyn {' + '.join(traits)}"
        if kind == "qualified_path":
            base = self.ty(value["self_type"])
            if value.get("trait"):
                base = f"<{base} as {self.path(value['trait'])}>"
            return f"{base}::{value['name']}{self.args(value.get('args'))}"
        if kind == "function_pointer":
            header = self.header(value["header"])
            sig = value["sig"]
            inputs = ", ".join(self.ty(t) for _, t in sig["inputs"])
            output = f" -> {self.ty(sig['output'])}" if sig["output"] else ""
            return f"{self.hrtb(value['generic_params'])}{header}fn({inputs}){output}"
        if kind == "pat":
            return f"{self.ty(value['type'])} is {value['__pat_unstable_do_not_use']}"
        return json.dumps(ty, sort_keys=True)

    def poly(self, poly):
        return self.hrtb(poly["generic_params"]) + self.path(poly["trait"])

    def hrtb(self, params):
        return f"for<{', '.join(self.param(p) for p in params)}> " if params else ""

    def bounds(self, bounds):
        parts = []
        for bound in bounds:
            if "trait_bound" in bound:
                tb = bound["trait_bound"]
                modifier = {"none": "", "maybe": "?", "maybe_const": "~const "}.get(tb["modifier"], "")
                parts.append(self.hrtb(tb["generic_params"]) + modifier + self.path(tb["trait"]))
            elif "outlives" in bound:
                parts.append(bound["outlives"])
            elif "use" in bound:
                parts.append(f"use<{', '.join(str(a) if isinstance(a, str) else next(iter(a.values())) for a in bound['use'])}>")
        return " + ".join(parts)

    # ---- generics and headers --------------------------------------------

    def param(self, param):
        kind = param["kind"]
        name = param["name"]
        if "lifetime" in kind:
            outlives = kind["lifetime"]["outlives"]
            return name + (f": {' + '.join(outlives)}" if outlives else "")
        if "type" in kind:
            text = name
            if kind["type"]["bounds"]:
                text += f": {self.bounds(kind['type']['bounds'])}"
            if kind["type"]["default"] is not None:
                text += f" = {self.ty(kind['type']['default'])}"
            return text
        if "const" in kind:
            text = f"const {name}: {self.ty(kind['const']['type'])}"
            if kind["const"].get("default"):
                text += f" = {kind['const']['default']}"
            return text
        return name

    def generics(self, generics):
        params = [p for p in generics["params"] if not self.synthetic(p)]
        return f"<{', '.join(self.param(p) for p in params)}>" if params else ""

    def synthetic(self, param):
        return "type" in param["kind"] and param["kind"]["type"].get("is_synthetic")

    def where(self, generics):
        clauses = []
        for predicate in generics["where_predicates"]:
            if "bound_predicate" in predicate:
                bp = predicate["bound_predicate"]
                clauses.append(f"{self.hrtb(bp['generic_params'])}{self.ty(bp['type'])}: {self.bounds(bp['bounds'])}")
            elif "lifetime_predicate" in predicate:
                lp = predicate["lifetime_predicate"]
                clauses.append(f"{lp['lifetime']}: {' + '.join(lp['outlives'])}")
            elif "eq_predicate" in predicate:
                eq = predicate["eq_predicate"]
                rhs = eq["rhs"]
                clauses.append(f"{self.ty(eq['lhs'])} == {self.ty(rhs['type']) if 'type' in rhs else rhs}")
        return f" where {', '.join(clauses)}" if clauses else ""

    def header(self, header):
        text = ""
        if header["is_const"]:
            text += "const "
        if header["is_async"]:
            text += "async "
        if header["is_unsafe"]:
            text += "unsafe "
        abi = header["abi"]
        if abi != "Rust":
            name = abi if isinstance(abi, str) else next(iter(abi))
            text += f'extern "{name}" '
        return text

    def function(self, name, function):
        sig = function["sig"]
        inputs = []
        for arg, ty in sig["inputs"]:
            if arg == "self":
                inputs.append(self.receiver(ty))
            else:
                inputs.append(f"{arg}: {self.ty(ty)}")
        output = f" -> {self.ty(sig['output'])}" if sig["output"] is not None else ""
        generics = function["generics"]
        return (
            f"{self.header(function['header'])}fn {name}{self.generics(generics)}"
            f"({', '.join(inputs)}){output}{self.where(generics)}"
        )

    def receiver(self, ty):
        if ty == {"generic": "Self"}:
            return "self"
        if "borrowed_ref" in ty and ty["borrowed_ref"]["type"] == {"generic": "Self"}:
            ref = ty["borrowed_ref"]
            lifetime = f"{ref['lifetime']} " if ref["lifetime"] else ""
            return f"&{lifetime}{'mut ' if ref['is_mutable'] else ''}self"
        return f"self: {self.ty(ty)}"

    def attrs(self, item):
        keep = []
        for attr in item.get("attrs", []):
            if attr == "non_exhaustive":
                keep.append("#[non_exhaustive]")
            elif isinstance(attr, dict) and "repr" in attr:
                repr_ = attr["repr"]
                kind = {"c": "C"}.get(repr_.get("kind"), repr_.get("kind"))
                parts = [kind] if kind and kind != "rust" else []
                if repr_.get("int"):
                    parts.append(repr_["int"])
                if repr_.get("align"):
                    parts.append(f"align({repr_['align']})")
                if repr_.get("packed"):
                    parts.append(f"packed({repr_['packed']})")
                if parts:
                    keep.append(f"#[repr({', '.join(parts)})]")
        if item.get("deprecation"):
            keep.append("#[deprecated]")
        return " ".join(keep) + (" " if keep else "")

    # ---- items -----------------------------------------------------------

    def emit(self, text):
        self.lines.add(" ".join(text.split()))

    def list_item(self, item_id, path):
        item = self.item(item_id)
        if item is None:
            self.emit(f"pub {path} (item of another crate)")
            return
        inner = item["inner"]
        (kind, value), = inner.items()
        attrs = self.attrs(item)
        if kind == "module":
            self.emit(f"pub mod {path}")
        elif kind == "function":
            self.emit(f"{attrs}pub {self.function(path, value)}")
        elif kind == "struct":
            self.struct(path, value, attrs)
        elif kind == "enum":
            self.enum(path, value, attrs)
        elif kind == "union":
            self.emit(f"{attrs}pub union {path}{self.generics(value['generics'])}{self.where(value['generics'])}")
            self.fields(path, value["fields"], value["has_stripped_fields"])
            self.impls(path, value["generics"], value["impls"])
        elif kind == "trait":
            self.trait(path, value, attrs)
        elif kind == "constant":
            self.emit(f"{attrs}pub const {path}: {self.ty(value['type'])} = {value['const']['expr']}")
        elif kind == "static":
            mutable = "mut " if value["is_mutable"] else ""
            self.emit(f"{attrs}pub static {mutable}{path}: {self.ty(value['type'])}")
        elif kind == "type_alias":
            generics = value["generics"]
            self.emit(
                f"{attrs}pub type {path}{self.generics(generics)}{self.where(generics)} = {self.ty(value['type'])}"
            )
        elif kind == "macro":
            self.emit(f"macro {path}: {value}")
        elif kind == "proc_macro":
            self.emit(f"proc_macro {path} ({value['kind']})")
        else:
            self.emit(f"pub {kind} {path}")

    def struct(self, path, struct, attrs):
        generics = struct["generics"]
        self.emit(f"{attrs}pub struct {path}{self.generics(generics)}{self.where(generics)}")
        kind = struct["kind"]
        if kind == "unit":
            self.emit(f"pub struct {path} (unit)")
        elif "tuple" in kind:
            shown = []
            for field_id in kind["tuple"]:
                field = self.item(field_id) if field_id is not None else None
                if field is None or field["visibility"] != "public" or self.hidden(field):
                    shown.append("(private)")
                else:
                    shown.append(self.ty(field["inner"]["struct_field"]))
            self.emit(f"pub struct {path}({', '.join(shown)})")
        else:
            self.fields(path, kind["plain"]["fields"], kind["plain"]["has_stripped_fields"])
        self.impls(path, generics, struct["impls"])

    def fields(self, path, field_ids, stripped):
        private = stripped
        for position, field_id in enumerate(field_ids):
            field = self.item(field_id)
            if field["visibility"] != "public" or self.hidden(field):
                private = True
                continue
            # The position too: the order of a #[repr(C)] struct's fields is its layout.
            ty = self.ty(field["inner"]["struct_field"])
            self.emit(f"pub field {path}::{field['name']}: {ty} (field {position})")
        if private:
            self.emit(f"field {path}: has private fields")

    def enum(self, path, enum, attrs):
        generics = enum["generics"]
        self.emit(f"{attrs}pub enum {path}{self.generics(generics)}{self.where(generics)}")
        for position, variant_id in enumerate(enum["variants"]):
            variant = self.item(variant_id)
            if self.hidden(variant):
                continue
            value = variant["inner"]["variant"]
            kind = value["kind"]
            text = f"pub variant {path}::{variant['name']}"
            if isinstance(kind, dict) and "tuple" in kind:
                text += f"({', '.join(self.ty(self.item(f)['inner']['struct_field']) if f is not None else '_' for f in kind['tuple'])})"
            elif isinstance(kind, dict) and "struct" in kind:
                fields = [self.item(f) for f in kind["struct"]["fields"]]
                text += " { " + ", ".join(f"{f['name']}: {self.ty(f['inner']['struct_field'])}" for f in fields) + " }"
            if value.get("discriminant"):
                text += f" = {value['discriminant']['value']}"
            text += f" (variant {position})"
            self.emit(f"{self.attrs(variant)}{text}")
        if enum["has_stripped_variants"]:
            self.emit(f"pub enum {path}: has hidden variants")
        self.impls(path, generics, enum["impls"])

    def trait(self, path, trait, attrs):
        generics = trait["generics"]
        unsafe = "unsafe " if trait["is_unsafe"] else ""
        auto = "auto " if trait["is_auto"] else ""
        supertraits = f": {self.bounds(trait['bounds'])}" if trait["bounds"] else ""
        dyn = "" if trait["is_dyn_compatible"] else " (not dyn-compatible)"
        self.emit(
            f"{attrs}pub {unsafe}{auto}trait {path}{self.generics(generics)}{supertraits}{self.where(generics)}{dyn}"
        )
        for item_id in trait["items"]:
            item = self.item(item_id)
            if item is None or self.hidden(item):
                continue
            (kind, value), = item["inner"].items()
            name = item["name"]
            if kind == "function":
                provided = " (provided)" if value["has_body"] else " (required)"
                self.emit(f"{self.attrs(item)}trait {path}: {self.function(name, value)}{provided}")
            elif kind == "assoc_type":
                bounds = f": {self.bounds(value['bounds'])}" if value["bounds"] else ""
                default = f" = {self.ty(value['type'])}" if value.get("type") else ""
                self.emit(f"trait {path}: type {name}{self.generics(value['generics'])}{bounds}{default}")
            elif kind == "assoc_const":
                default = f" = {value['value']}" if value.get("value") else ""
                self.emit(f"trait {path}: const {name}: {self.ty(value['type'])}{default}")

    def impls(self, path, generics, impl_ids):
        for impl_id in impl_ids:
            item = self.item(impl_id)
            if item is None or self.hidden(item):
                continue
            impl = item["inner"]["impl"]
            if impl["blanket_impl"] is not None:
                continue
            trait = impl["trait"]
            if impl["is_synthetic"] and (trait is None or trait["path"].split("::")[-1] not in AUTO_TRAITS):
                continue
            head = f"impl{self.generics(impl['generics'])} "
            if impl["is_unsafe"]:
                head = "unsafe " + head
            where = self.where(impl["generics"])
            if trait is not None:
                negative = "!" if impl["is_negative"] else ""
                self.emit(f"{head}{negative}{self.path(trait)} for {self.ty(impl['for'])}{where}")
                continue
            for method_id in impl["items"]:
                method = self.item(method_id)
                if method is None or method["visibility"] != "public" or self.hidden(method):
                    continue
                (kind, value), = method["inner"].items()
                prefix = f"{head}{self.ty(impl['for'])}{where}:"
                if kind == "function":
                    self.emit(f"{prefix} {self.attrs(method)}pub {self.function(method['name'], value)}")
                elif kind == "assoc_const":
                    self.emit(f"{prefix} pub const {method['name']}: {self.ty(value['type'])} = {value.get('value')}")
                elif kind == "assoc_type":
                    self.emit(f"{prefix} pub type {method['name']} = {self.ty(value.get('type'))}")

    def run(self):
        name = self.index[self.root]["name"]
        self.walk(self.root, name, frozenset())
        for item_id, paths in sorted(self.public.items(), key=lambda kv: self.canonical(kv[0])):
            canonical = self.canonical(item_id)
            for alias in paths:
                if alias != canonical:
                    self.emit(f"pub use {alias} = {canonical}")
            self.list_item(item_id, canonical)
        return sorted(self.lines)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 scripts/api-listing.py CRATE.json")
    with open(sys.argv[1], encoding="utf-8") as file:
        doc = json.load(file)
    if doc.get("format_version") not in FORMATS:
        sys.exit(
            f"api-listing: {sys.argv[1]} is rustdoc JSON format v{doc.get('format_version')}; "
            f"this script reads v{', v'.join(map(str, sorted(FORMATS)))} (update it with the toolchain)"
        )
    for line in Listing(doc).run():
        print(line)


if __name__ == "__main__":
    main()
