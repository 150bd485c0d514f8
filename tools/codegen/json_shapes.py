#!/usr/bin/env python3
"""Generate Rust serde wire types from a botocore JSON-protocol service model.

Usage:
    python3 tools/codegen/json_shapes.py SERVICE OUTPUT.rs [--no-rustfmt]

Example:
    python3 tools/codegen/json_shapes.py ecs crates/ecs-wire/src/generated.rs

The model is read with `botocore.session.get_session().get_service_model(SERVICE)`,
so the output is pinned by the installed botocore version (recorded in the header).

Mapping (see crates/ecs-wire/src/lib.rs for the contract the Rust side relies on):
  structure           -> `pub struct`, every member `Option<T>`, serde-renamed to the exact
                         wire name, omitted when `None`; `REQUIRED` lists required wire names.
                         A structure that (directly, not through a list or map) contains
                         itself gets `Box` on the members that close the cycle.
  structure/document  -> `pub type X = serde_json::Value;`
  string with enum    -> `pub enum` via the `string_enum!` macro (as_str, ALL, FromStr,
                         Display; FromStr fails with `UnknownEnumValue`).
  string / blob       -> String (blobs are base64 text on the JSON wire)
  integer, long       -> i32, i64
  float, double       -> f32, f64
  boolean             -> bool
  timestamp           -> f64 (epoch seconds, as the JSON 1.0/1.1 protocols send them)
  list, map           -> Vec<T>, BTreeMap<K, V> (K is String, or the key's enum type)
Only structures, documents and enums become named Rust items; other shapes are inlined.

Stdlib + botocore only.
"""

import argparse
import html
import os
import re
import shutil
import subprocess
import sys

import botocore
import botocore.session

# Rust strict + reserved keywords (2015-2024 editions). Member names that collide get a `_` suffix:
# raw identifiers cannot express `self`, `super`, `crate` or `Self`, a suffix always works.
RUST_KEYWORDS = {
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen", "union",
}

# Type names the generated module (or the code it expands to) already uses. A shape with one of
# these names gets a `Shape` suffix so that `pub use generated::*` never shadows a std name.
RESERVED_TYPE_NAMES = {
    "Operation", "UnknownEnumValue", "Option", "Result", "Vec", "String", "Box", "Some", "None",
    "Ok", "Err", "Default", "Clone", "Copy", "Debug", "PartialEq", "Eq", "PartialOrd", "Ord",
    "Hash", "Send", "Sync", "Sized", "Drop", "Fn", "FnMut", "FnOnce", "From", "Into", "Iterator",
    "IntoIterator", "ToString", "ToOwned", "AsRef", "AsMut", "TryFrom", "TryInto", "Self",
    "BTreeMap", "Display", "FromStr", "Error", "Formatter",
}

SCALAR_TYPES = {
    "string": "String",
    "blob": "String",
    "integer": "i32",
    "long": "i64",
    "float": "f32",
    "double": "f64",
    "boolean": "bool",
    "timestamp": "f64",
}


def is_enum(shape):
    return shape.type_name == "string" and bool(shape.enum)


def is_document(shape):
    return shape.type_name == "structure" and bool(shape.metadata.get("document"))


def is_named_item(shape):
    return shape.type_name == "structure" or is_enum(shape)


def type_name_for(shape_name):
    """Rust type name for a structure/enum shape name."""
    name = camel_case(shape_name)
    if name in RESERVED_TYPE_NAMES:
        name += "Shape"
    return name


def camel_case(value):
    """UpperCamelCase Rust identifier for an arbitrary string (enum value or shape name).

    Words are split on anything that is not an ASCII letter or digit. A word that is all
    upper case ("EC2", "SERVICE") becomes capitalized ("Ec2", "Service"); a mixed-case word keeps
    its inner capitals ("awsvpcTrunking" -> "AwsvpcTrunking"). Two words that would join digit to
    digit keep a `_` between them ("X86_64" -> "X86_64", "V1.1" -> "V1_1"). A leading digit gets
    a `V` prefix ("1" -> "V1").
    """
    out = ""
    for word in re.split(r"[^A-Za-z0-9]+", value):
        if not word:
            continue
        if word.upper() == word:
            word = word[0] + word[1:].lower()
        word = word[0].upper() + word[1:]
        if out and out[-1].isdigit() and word[0].isdigit():
            out += "_"
        out += word
    if not out:
        out = "Empty"
    if out[0].isdigit():
        out = "V" + out
    if out == "Self":
        out = "SelfValue"
    return out


def snake_case(name):
    """snake_case Rust field name for a wire member name ("enableECSManagedTags" ->
    "enable_ecs_managed_tags"); Rust keywords get a `_` suffix ("type" -> "type_")."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_").lower()
    s = re.sub(r"_+", "_", s)
    if not s:
        s = "member"
    if s[0].isdigit():
        s = "n" + s
    if s in RUST_KEYWORDS:
        s += "_"
    return s


def unique(name, taken, separator):
    """`name`, or `name` + separator + N for the first N >= 2 not in `taken`; records the result."""
    candidate, n = name, 2
    while candidate in taken:
        candidate = f"{name}{separator}{n}"
        n += 1
    taken.add(candidate)
    return candidate


def first_sentence(documentation):
    """The first sentence of a botocore HTML documentation string, as safe Markdown text."""
    if not documentation:
        return ""
    # Only the first paragraph matters; stop before the first block-level break.
    text = re.split(r"</p>|<br\s*/?>|<ul>|<ol>|<note>|<important>", documentation, maxsplit=1)[0]
    text = re.sub(r"<[^>]*>", "", text)
    text = html.unescape(text)
    text = " ".join(text.split())
    match = re.search(r"^(.+?[.!?])(\s+[A-Z(]|$)", text)
    if match:
        text = match.group(1)
    if len(text) > 300:
        return ""  # not a sentence we can cut safely; skip rather than bloat
    text = text.replace("\\", "\\\\")
    for ch in "[]<>`*_":
        text = text.replace(ch, "\\" + ch)
    return text


def rust_string(value):
    """A Rust string literal."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u{%x}" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class Generator:
    def __init__(self, service_name):
        self.service_name = service_name
        self.model = botocore.session.get_session().get_service_model(service_name)
        protocol = self.model.metadata.get("protocol")
        if protocol not in ("json", "rest-json"):
            raise SystemExit(f"{service_name}: protocol {protocol!r} is not a JSON protocol")
        self.shapes = {name: self.model.shape_for(name) for name in self.model.shape_names}
        taken = set()
        self.type_names = {}
        for name in sorted(self.shapes):
            if is_named_item(self.shapes[name]):
                self.type_names[name] = unique(type_name_for(name), taken, "")
        self.boxed_edges = self._find_boxed_edges()

    # -- recursion -------------------------------------------------------------------------
    def _direct_struct_members(self, shape):
        """Names of structure shapes that `shape` holds directly (not through a list or map)."""
        return [
            member.name
            for member in shape.members.values()
            if member.type_name == "structure" and not is_document(member)
        ]

    def _find_boxed_edges(self):
        """(struct, member) pairs that need `Box`: the member's structure can reach back to
        the owning structure through direct (un-indirected) structure members."""
        graph = {
            name: self._direct_struct_members(shape)
            for name, shape in self.shapes.items()
            if shape.type_name == "structure" and not is_document(shape)
        }

        def reaches(start, goal):
            seen, stack = set(), [start]
            while stack:
                node = stack.pop()
                if node == goal:
                    return True
                if node in seen:
                    continue
                seen.add(node)
                stack.extend(graph.get(node, ()))
            return False

        boxed = set()
        for owner, shape in self.shapes.items():
            if owner not in graph:
                continue
            for member_name, member in shape.members.items():
                if member.name in graph and reaches(member.name, owner):
                    boxed.add((owner, member_name))
        return boxed

    # -- types -----------------------------------------------------------------------------
    def rust_type(self, shape):
        kind = shape.type_name
        if kind == "structure" or is_enum(shape):
            return self.type_names[shape.name]
        if kind == "list":
            return f"Vec<{self.rust_type(shape.member)}>"
        if kind == "map":
            key = self.rust_type(shape.key)
            return f"std::collections::BTreeMap<{key}, {self.rust_type(shape.value)}>"
        if kind in SCALAR_TYPES:
            return SCALAR_TYPES[kind]
        raise SystemExit(f"{self.service_name}: shape {shape.name}: unsupported type {kind!r}")

    # -- emitters --------------------------------------------------------------------------
    def doc_lines(self, shape, indent=""):
        sentence = first_sentence(shape.documentation)
        return [f"{indent}/// {sentence}"] if sentence else []

    def emit_enum(self, name, shape):
        lines = self.doc_lines(shape, "    ")
        lines.append(f"    {self.type_names[name]} {{")
        taken = set()
        seen_values = set()
        for value in shape.enum:
            if value in seen_values:
                continue
            seen_values.add(value)
            variant = unique(camel_case(value), taken, "")
            lines.append(f"        {variant} = {rust_string(value)},")
        lines.append("    }")
        return ["string_enum! {", *lines, "}"]

    def emit_document(self, name, shape):
        return [
            *self.doc_lines(shape),
            "/// A free-form JSON document.",
            f"pub type {self.type_names[name]} = serde_json::Value;",
        ]

    def emit_struct(self, name, shape):
        type_name = self.type_names[name]
        lines = self.doc_lines(shape)
        lines.append(
            "#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]"
        )
        lines.append(f"pub struct {type_name} {{")
        taken = set()
        for member_name, member in shape.members.items():
            wire_name = member.serialization.get("name", member_name)
            field = unique(snake_case(member_name), taken, "_")
            rust_type = self.rust_type(member)
            if (name, member_name) in self.boxed_edges:
                rust_type = f"Box<{rust_type}>"
            lines.append(
                f"    #[serde(rename = {rust_string(wire_name)}, default, "
                'skip_serializing_if = "Option::is_none")]'
            )
            lines.append(f"    pub {field}: Option<{rust_type}>,")
        lines.append("}")
        required = []
        for member_name in shape.required_members:
            member = shape.members[member_name]
            required.append(rust_string(member.serialization.get("name", member_name)))
        lines.append("")
        lines.append(f"impl {type_name} {{")
        lines.append("    /// Wire names of the members the model marks as required.")
        lines.append(f"    pub const REQUIRED: &'static [&'static str] = &[{', '.join(required)}];")
        lines.append("}")
        return lines

    def emit_operations(self):
        lines = [
            "/// One operation of the service: its name (the part of `X-Amz-Target` after the dot),",
            "/// its input and output shape names, and the error codes the model lists for it.",
            "#[derive(Clone, Copy, Debug, PartialEq, Eq)]",
            "pub struct Operation {",
            "    pub name: &'static str,",
            "    pub input: Option<&'static str>,",
            "    pub output: Option<&'static str>,",
            "    pub errors: &'static [&'static str],",
            "}",
            "",
            "/// Every operation of the service, sorted by name.",
            "pub const OPERATIONS: &[Operation] = &[",
        ]

        def shape_ref(shape):
            return f"Some({rust_string(self.type_names.get(shape.name, shape.name))})" if shape else "None"

        for op_name in sorted(self.model.operation_names):
            op = self.model.operation_model(op_name)
            errors = ", ".join(rust_string(e.error_code or e.name) for e in op.error_shapes)
            lines += [
                "    Operation {",
                f"        name: {rust_string(op_name)},",
                f"        input: {shape_ref(op.input_shape)},",
                f"        output: {shape_ref(op.output_shape)},",
                f"        errors: &[{errors}],",
                "    },",
            ]
        lines += [
            "];",
            "",
            "/// The operation called `name`, if the service has one.",
            "pub fn find_operation(name: &str) -> Option<&'static Operation> {",
            "    OPERATIONS",
            "        .binary_search_by(|operation| operation.name.cmp(name))",
            "        .ok()",
            "        .map(|index| &OPERATIONS[index])",
            "}",
        ]
        return lines

    def emit_prelude(self):
        md = self.model.metadata
        target_prefix = md.get("targetPrefix", "")
        return [
            f"/// The `X-Amz-Target` prefix: requests carry `{target_prefix}.<OperationName>`.",
            f"pub const TARGET_PREFIX: &str = {rust_string(target_prefix)};",
            "/// The SigV4 signing name (service part of the credential scope).",
            f"pub const SIGNING_NAME: &str = {rust_string(self.model.signing_name)};",
            "/// The model's API version.",
            f"pub const API_VERSION: &str = {rust_string(self.model.api_version)};",
            "/// The JSON protocol version (`application/x-amz-json-<version>`).",
            f"pub const JSON_VERSION: &str = {rust_string(md.get('jsonVersion', '1.0'))};",
            "",
            "/// A string is not one of an enum's values (the error of every generated `FromStr`).",
            "#[derive(Clone, Debug, PartialEq, Eq)]",
            "pub struct UnknownEnumValue {",
            "    /// The enum's shape name, e.g. `LaunchType`.",
            "    pub enum_name: &'static str,",
            "    /// The rejected value.",
            "    pub value: String,",
            "}",
            "",
            "impl std::fmt::Display for UnknownEnumValue {",
            "    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {",
            "        write!(f, \"{:?} is not a valid {} value\", self.value, self.enum_name)",
            "    }",
            "}",
            "",
            "impl std::error::Error for UnknownEnumValue {}",
            "",
            "/// A string enum shape: serde by exact wire value, `as_str`, `ALL` (model order),",
            "/// `FromStr` (error: `UnknownEnumValue`) and `Display` (the wire value).",
            "macro_rules! string_enum {",
            "    ($(#[$meta:meta])* $name:ident { $($variant:ident = $value:literal,)+ }) => {",
            "        $(#[$meta])*",
            "        #[derive(",
            "            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,",
            "            serde::Serialize, serde::Deserialize,",
            "        )]",
            "        pub enum $name {",
            "            $(#[serde(rename = $value)] $variant,)+",
            "        }",
            "",
            "        impl $name {",
            "            /// Every value, in model order.",
            "            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];",
            "",
            "            /// The exact wire value.",
            "            pub fn as_str(&self) -> &'static str {",
            "                match self {",
            "                    $(Self::$variant => $value,)+",
            "                }",
            "            }",
            "        }",
            "",
            "        impl std::str::FromStr for $name {",
            "            type Err = UnknownEnumValue;",
            "",
            "            fn from_str(value: &str) -> Result<Self, Self::Err> {",
            "                match value {",
            "                    $($value => Ok(Self::$variant),)+",
            "                    _ => Err(UnknownEnumValue {",
            "                        enum_name: stringify!($name),",
            "                        value: value.to_owned(),",
            "                    }),",
            "                }",
            "            }",
            "        }",
            "",
            "        impl std::fmt::Display for $name {",
            "            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {",
            "                f.write_str(self.as_str())",
            "            }",
            "        }",
            "    };",
            "}",
        ]

    def generate(self, output_path_for_header):
        md = self.model.metadata
        out = [
            f"// @generated by tools/codegen/json_shapes.py from the botocore {botocore.__version__}",
            f"// model of `{self.service_name}` ({md.get('uid', self.model.api_version)}). Do not edit by hand;",
            "// regenerate with:",
            f"//     python3 tools/codegen/json_shapes.py {self.service_name} {output_path_for_header}",
            "",
        ]
        out += self.emit_prelude()
        out += ["", ""]
        out += self.emit_operations()
        for name in sorted(self.shapes):
            shape = self.shapes[name]
            if is_document(shape):
                item = self.emit_document(name, shape)
            elif shape.type_name == "structure":
                item = self.emit_struct(name, shape)
            elif is_enum(shape):
                item = self.emit_enum(name, shape)
            else:
                continue
            out += [""] + item
        return "\n".join(out) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("service", help="botocore service name, e.g. ecs")
    parser.add_argument("output", help="path of the .rs file to write")
    parser.add_argument("--no-rustfmt", action="store_true", help="do not run rustfmt on the output")
    args = parser.parse_args(argv)

    code = Generator(args.service).generate(args.output)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(code)
    if not args.no_rustfmt:
        rustfmt = shutil.which("rustfmt")
        if rustfmt is None:
            print("warning: rustfmt not found; output is not formatted", file=sys.stderr)
        else:
            subprocess.run([rustfmt, "--edition", "2021", args.output], check=True)
    print(f"wrote {args.output} ({os.path.getsize(args.output)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
