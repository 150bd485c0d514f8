#!/usr/bin/env python3
"""Generate Rust wire types from a botocore query-protocol service model (ELBv2).

Usage:
    python3 tools/codegen/query_shapes.py SERVICE OUTPUT.rs [--no-rustfmt]

Example:
    python3 tools/codegen/query_shapes.py elbv2 crates/elbv2-wire/src/generated.rs
    python3 tools/codegen/query_shapes.py cloudwatch crates/cloudwatch-wire/src/generated.rs \
        --json-timestamps

The sibling of `json_shapes.py` (whose naming helpers it shares). The model is read with
`botocore.session.get_session().get_service_model(SERVICE)`; the botocore version is recorded in
the header. The runtime the generated code calls (`Form`, `Violations`, `XmlWriter`, the
`FromForm` / `ToXml` traits) lives in `crates/elbv2-wire/src/lib.rs`.

Mapping:
  structure     -> `pub struct`, every member `Option<T>` (serde-renamed to the wire name so a
                   shape can be stored as JSON). Structures reachable from an operation's input
                   implement `FromForm`; those reachable from an output implement `ToXml`.
  string, enum  -> String (enum values are checked while decoding)
  integer, long -> i32, i64;  double/float -> f64;  boolean -> bool
  timestamp     -> i64, epoch milliseconds (written as ISO 8601 with milliseconds)
  list          -> Vec<T>;  map -> BTreeMap<String, V>

Query-protocol request decoding (what botocore's QuerySerializer sends):
  scalar        `Prefix.Name=value`
  structure     `Prefix.Name.Member=…`
  list          `Prefix.Name.member.N…` (N from 1; flattened lists `Prefix.Name.N`); an empty list
                is sent as `Prefix.Name=` (empty value)
  map           `Prefix.Name.entry.N.key` / `.value` (flattened: `Prefix.Name.N.key`)
Constraints checked while decoding, each reported in AWS's wording:
  required      "Value null at 'name' failed to satisfy constraint: Member must not be null"
  enum          "Value 'x' at 'type' failed to satisfy constraint: Member must satisfy enum value
                 set: [application, network, gateway]"
  string length "… Member must have length less than or equal to 32" (and "greater than or equal")
  number range  "… Member must have value less than or equal to 400" (and "greater than or equal")
Paths are lowerCamel member names; a list element is `<list>.<N>.member`.

Response encoding (what botocore's QueryParser reads): members as elements named by their
serialized name, lists as `<member>` elements (or the list member's locationName), maps as
`<entry><key/><value/></entry>`, booleans `true`/`false`, timestamps ISO 8601.

Stdlib + botocore only.
"""

import argparse
import os
import shutil
import subprocess
import sys

import botocore
import botocore.session

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from json_shapes import (  # noqa: E402  (sibling generator's naming rules)
    first_sentence,
    rust_string,
    snake_case,
    type_name_for,
    unique,
)

SCALAR_TYPES = {
    "string": "String",
    "blob": "String",
    "integer": "i32",
    "long": "i64",
    "float": "f64",
    "double": "f64",
    "boolean": "bool",
    "timestamp": "i64",
}

DECODERS = {
    "string": "decode_string",
    "blob": "decode_string",
    "integer": "decode_i32",
    "long": "decode_i64",
    "float": "decode_f64",
    "double": "decode_f64",
    "boolean": "decode_bool",
    "timestamp": "decode_timestamp",
}


def lower_camel(name):
    return name[0].lower() + name[1:] if name else name


def wire_name(member_name, shape):
    return shape.serialization.get("name", member_name)


class Generator:
    def __init__(self, service_name, json_timestamps=False):
        self.model = botocore.session.get_session().get_service_model(service_name)
        self.service_name = service_name
        self.json_timestamps = json_timestamps
        self.input_structs = set()
        self.output_structs = set()
        self.all_structs = {}
        for name in self.model.operation_names:
            op = self.model.operation_model(name)
            if op.input_shape is not None:
                self._collect(op.input_shape, self.input_structs)
            if op.output_shape is not None:
                self._collect(op.output_shape, self.output_structs)
        self.rust_names = {}
        taken = set()
        for shape_name in sorted(self.all_structs):
            self.rust_names[shape_name] = unique(type_name_for(shape_name), taken, "")

    def _collect(self, shape, into):
        if shape.type_name == "structure":
            if shape.name in into:
                return
            into.add(shape.name)
            self.all_structs[shape.name] = shape
            for member in shape.members.values():
                self._collect(member, into)
        elif shape.type_name == "list":
            self._collect(shape.member, into)
        elif shape.type_name == "map":
            self._collect(shape.key, into)
            self._collect(shape.value, into)

    # ---- types -------------------------------------------------------------------------------

    def rust_type(self, shape):
        if shape.type_name == "structure":
            return self.rust_names[shape.name]
        if shape.type_name == "list":
            return f"Vec<{self.rust_type(shape.member)}>"
        if shape.type_name == "map":
            return f"BTreeMap<String, {self.rust_type(shape.value)}>"
        return SCALAR_TYPES[shape.type_name]

    # ---- structs -----------------------------------------------------------------------------

    def emit_struct(self, shape_name, shape):
        name = self.rust_names[shape_name]
        lines = []
        doc = first_sentence(shape.documentation)
        if doc:
            lines.append(f"/// {doc}")
        lines.append(f"/// Wire shape `{shape_name}`.")
        lines.append("#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]")
        lines.append(f"pub struct {name} {{")
        taken = set()
        fields = []
        for member_name, member in shape.members.items():
            field = unique(snake_case(member_name), taken, "_")
            fields.append((field, member_name, member))
            doc = first_sentence(member.documentation)
            if doc:
                lines.append(f"    /// {doc}")
            lines.append(
                f"    #[serde(rename = {rust_string(member_name)}, default, "
                f'skip_serializing_if = "Option::is_none"{self.serde_with(member)})]'
            )
            lines.append(f"    pub {field}: Option<{self.rust_type(member)}>,")
        lines.append("}")
        lines.append("")
        if shape_name in self.input_structs:
            lines.extend(self.emit_from_form(name, shape, fields))
            if self.json_timestamps:
                lines.extend(self.emit_validate(name, shape, fields))
        if shape_name in self.output_structs:
            lines.extend(self.emit_to_xml(name, fields))
        return lines

    def serde_with(self, member):
        """With --json-timestamps, timestamps (and lists of them) go through the wire crate's
        `timestamp` module, which writes epoch seconds as the JSON and CBOR protocols do, and
        doubles through its `number` module, which reads a CBOR integer as a double."""
        if not self.json_timestamps:
            return ""
        if member.type_name == "timestamp":
            return ', with = "crate::timestamp::option"'
        if member.type_name == "list" and member.member.type_name == "timestamp":
            return ', with = "crate::timestamp::option_list"'
        # Doubles accept integers too (CBOR keeps them apart; JSON does not).
        if member.type_name in ("double", "float"):
            return ', deserialize_with = "crate::number::option"'
        if member.type_name == "list" and member.member.type_name in ("double", "float"):
            return ', deserialize_with = "crate::number::option_list"'
        return ""

    # ---- decoding ----------------------------------------------------------------------------

    def decode_expr(self, shape, key, path):
        """A Rust expression of type Option<T> decoding `shape` at `key` (a String expression,
        without trailing dot) whose error path is `path` (a &str expression)."""
        kind = shape.type_name
        if kind in DECODERS:
            return f"form.{DECODERS[kind]}(&{key}, {path}, violations)"
        if kind == "structure":
            rust = self.rust_names[shape.name]
            return f"form.decode_struct::<{rust}>(&{key}, {path}, violations)"
        if kind == "list":
            flattened = "true" if shape.serialization.get("flattened") else "false"
            item = self.decode_expr(shape.member, "item_key", "item_path")
            check = self.constraint_checks(shape.member, "item", "item_path")
            body = f"let item = {item};"
            if check:
                body += " if let Some(item) = &item {" + " ".join(check) + "}"
            return (
                f"form.decode_list(&{key}, {path}, {flattened}, violations, "
                f"|form, item_key, item_path, violations| {{ {body} item }})"
            )
        if kind == "map":
            flattened = "true" if shape.serialization.get("flattened") else "false"
            key_name = shape.key.serialization.get("name", "key")
            value_name = shape.value.serialization.get("name", "value")
            value = self.decode_expr(shape.value, "value_key", "value_path")
            return (
                f"form.decode_map(&{key}, {path}, {flattened}, {rust_string(key_name)}, "
                f"{rust_string(value_name)}, violations, "
                f"|form, value_key, value_path, violations| {value})"
            )
        raise SystemExit(f"query_shapes.py: cannot decode {kind} shape {shape.name}")

    def constraint_checks(self, shape, value, path):
        """Rust statements checking `value` (a &T) against the shape's constraints."""
        checks = []
        meta = shape.metadata
        if shape.type_name == "string":
            if shape.enum:
                values = ", ".join(rust_string(v) for v in shape.enum)
                checks.append(f"check_enum({value}, &[{values}], {path}, violations);")
            if "min" in meta or "max" in meta:
                low = meta.get("min")
                high = meta.get("max")
                checks.append(
                    f"check_length({value}, {self.opt(low)}, {self.opt(high)}, {path}, violations);"
                )
        elif shape.type_name in ("integer", "long"):
            if "min" in meta or "max" in meta:
                checks.append(
                    f"check_range(i64::from(*{value}), {self.opt(meta.get('min'))}, "
                    f"{self.opt(meta.get('max'))}, {path}, violations);"
                )
        return checks

    def lazy_checks(self, shape, value, path_fn):
        """Like `constraint_checks`, with the error path built only when a check fails."""
        checks = []
        meta = shape.metadata
        if shape.type_name == "string":
            if shape.enum:
                values = ", ".join(rust_string(v) for v in shape.enum)
                checks.append(f"check_enum_at({value}, &[{values}], {path_fn}, violations);")
            if "min" in meta or "max" in meta:
                checks.append(
                    f"check_length_at({value}, {self.opt(meta.get('min'))}, "
                    f"{self.opt(meta.get('max'))}, {path_fn}, violations);"
                )
        elif shape.type_name in ("integer", "long"):
            if "min" in meta or "max" in meta:
                checks.append(
                    f"check_range_at(i64::from(*{value}), {self.opt(meta.get('min'))}, "
                    f"{self.opt(meta.get('max'))}, {path_fn}, violations);"
                )
        return checks

    def validate_stmts(self, shape, value, path_fn, depth):
        """Statements checking `value` (a &T) and everything in it, as the query decoder
        would have while decoding it (same paths, same wording)."""
        lines = self.lazy_checks(shape, value, path_fn)
        if shape.type_name == "structure":
            lines.append(f"{value}.validate({path_fn}, violations);")
        elif shape.type_name == "list":
            inner = self.validate_stmts(shape.member, f"item_{depth}", f"&path_{depth}", depth + 1)
            if inner:
                lines.append(f"for (index_{depth}, item_{depth}) in {value}.iter().enumerate() {{")
                lines.append(
                    f"let path_{depth} = || format!(\"{{}}.{{}}.member\", ({path_fn})(), "
                    f"index_{depth} + 1);"
                )
                lines.extend(inner)
                lines.append("}")
        return lines

    def emit_validate(self, name, shape, fields):
        required = set(shape.required_members)
        lines = [f"impl Validate for {name} {{"]
        lines.append(
            "    fn validate(&self, path: &dyn Fn() -> String, violations: &mut Violations) {"
        )
        body = []
        for field, member_name, member in fields:
            checks = self.validate_stmts(member, "value", "&here", 0)
            is_required = member_name in required
            if not checks and not is_required:
                continue
            body.append("        {")
            body.append(
                f"            let here = || member_path(&path(), "
                f"{rust_string(lower_camel(member_name))});"
            )
            if is_required:
                body.append(f"            match &self.{field} {{")
                body.append("                None => violations.missing(&here()),")
                body.append("                Some(value) => {")
                body.extend("                    " + c for c in checks)
                if not checks:
                    body.append("                    let _ = value;")
                body.append("                }")
                body.append("            }")
            else:
                body.append(f"            if let Some(value) = &self.{field} {{")
                body.extend("                " + c for c in checks)
                body.append("            }")
            body.append("        }")
        if not body:
            lines.append("        let _ = (path, violations);")
        lines.extend(body)
        lines.append("    }")
        lines.append("}")
        lines.append("")
        return lines

    @staticmethod
    def opt(number):
        return "None" if number is None else f"Some({int(number)})"

    def emit_from_form(self, name, shape, fields):
        required = set(shape.required_members)
        lines = [f"impl FromForm for {name} {{"]
        lines.append(
            "    fn from_form(form: &Form, prefix: &str, path: &str, "
            "violations: &mut Violations) -> Self {"
        )
        if not fields:
            lines.append("        let _ = (form, prefix, path, violations);")
            lines.append("        Self {}")
            lines.append("    }")
            lines.append("}")
            lines.append("")
            return lines
        for field, member_name, member in fields:
            wire = wire_name(member_name, member)
            lines.append(f"        let decoded_{field} = {{")
            lines.append(f"            let key = format!(\"{{prefix}}{wire}\");")
            lines.append(
                f"            let path = member_path(path, {rust_string(lower_camel(member_name))});"
            )
            lines.append(f"            let value = {self.decode_expr(member, 'key', '&path')};")
            if member_name in required:
                lines.append("            if value.is_none() { violations.missing(&path); }")
            checks = self.constraint_checks(member, "value", "&path")
            if checks:
                lines.append("            if let Some(value) = &value { " + " ".join(checks) + " }")
            lines.append("            value")
            lines.append("        };")
        lines.append("        Self { " + ", ".join(f"{f}: decoded_{f}" for f, _, _ in fields) + " }")
        lines.append("    }")
        lines.append("}")
        lines.append("")
        return lines

    # ---- encoding ----------------------------------------------------------------------------

    def write_stmts(self, shape, value, element):
        """Rust statements writing `value` (a &T) as element `element` (a Rust string literal)."""
        kind = shape.type_name
        if kind == "timestamp":
            return [f"out.timestamp({element}, *{value});"]
        if kind in ("string", "blob"):
            return [f"out.text({element}, {value});"]
        if kind in ("integer", "long", "float", "double"):
            return [f"out.text({element}, &{value}.to_string());"]
        if kind == "boolean":
            return [f"out.text({element}, if *{value} {{ \"true\" }} else {{ \"false\" }});"]
        if kind == "structure":
            return [f"out.open({element});", f"{value}.write_xml(out);", f"out.close({element});"]
        if kind == "list":
            item_name = rust_string(shape.member.serialization.get("name", "member"))
            inner = self.write_stmts(shape.member, "item", item_name)
            if shape.serialization.get("flattened"):
                inner = self.write_stmts(shape.member, "item", element)
                return [f"for item in {value} {{"] + inner + ["}"]
            return [f"out.open({element});", f"for item in {value} {{"] + inner + [
                "}",
                f"out.close({element});",
            ]
        if kind == "map":
            key_name = rust_string(shape.key.serialization.get("name", "key"))
            value_name = rust_string(shape.value.serialization.get("name", "value"))
            inner = ["out.open(\"entry\");", f"out.text({key_name}, map_key);"]
            inner += self.write_stmts(shape.value, "map_value", value_name)
            inner += ["out.close(\"entry\");"]
            loop = [f"for (map_key, map_value) in {value} {{"] + inner + ["}"]
            if shape.serialization.get("flattened"):
                return loop
            return [f"out.open({element});"] + loop + [f"out.close({element});"]
        raise SystemExit(f"query_shapes.py: cannot encode {kind} shape {shape.name}")

    def emit_to_xml(self, name, fields):
        lines = [f"impl ToXml for {name} {{"]
        lines.append("    fn write_xml(&self, out: &mut XmlWriter) {")
        if not fields:
            lines.append("        let _ = out;")
        for field, member_name, member in fields:
            element = rust_string(wire_name(member_name, member))
            lines.append(f"        if let Some(value) = &self.{field} {{")
            lines.extend("            " + s for s in self.write_stmts(member, "value", element))
            lines.append("        }")
        lines.append("    }")
        lines.append("}")
        lines.append("")
        return lines

    # ---- operations and errors ---------------------------------------------------------------

    def emit_operations(self):
        lines = []
        output_owner = {}
        for op_name in self.model.operation_names:
            op = self.model.operation_model(op_name)
            if op.input_shape is not None:
                rust = self.rust_names[op.input_shape.name]
                lines.append(f"impl Request for {rust} {{")
                lines.append(f"    const ACTION: &'static str = {rust_string(op_name)};")
                lines.append("}")
                lines.append("")
            if op.output_shape is not None:
                shape_name = op.output_shape.name
                if shape_name in output_owner:
                    raise SystemExit(
                        f"query_shapes.py: output shape {shape_name} is shared by "
                        f"{output_owner[shape_name]} and {op_name}"
                    )
                output_owner[shape_name] = op_name
                rust = self.rust_names[shape_name]
                lines.append(f"impl Response for {rust} {{")
                lines.append(f"    const ACTION: &'static str = {rust_string(op_name)};")
                lines.append("}")
                lines.append("")
        lines.append("/// Every operation of the service, in model order.")
        lines.append("pub const OPERATIONS: &[&str] = &[")
        for op_name in self.model.operation_names:
            lines.append(f"    {rust_string(op_name)},")
        lines.append("];")
        lines.append("")
        errors = {}
        for op_name in self.model.operation_names:
            for error in self.model.operation_model(op_name).error_shapes:
                meta = error.metadata.get("error", {})
                code = meta.get("code", error.name)
                errors[code] = (int(meta.get("httpStatusCode", 400)), bool(meta.get("senderFault")))
        lines.append("/// Every modelled error: (code, HTTP status), sorted by code.")
        lines.append("pub const ERRORS: &[(&str, u16)] = &[")
        for code in sorted(errors):
            lines.append(f"    ({rust_string(code)}, {errors[code][0]}),")
        lines.append("];")
        lines.append("")
        if self.json_timestamps:
            types = {}
            for op_name in self.model.operation_names:
                for error in self.model.operation_model(op_name).error_shapes:
                    meta = error.metadata.get("error", {})
                    types[error.name] = (
                        meta.get("code", error.name),
                        int(meta.get("httpStatusCode", 400)),
                        bool(meta.get("senderFault")),
                    )
            lines.append("/// Every modelled error as the JSON and CBOR protocols name it: (shape name, query")
            lines.append("/// code, HTTP status, sender fault), sorted by shape name.")
            lines.append("pub const ERROR_TYPES: &[(&str, &str, u16, bool)] = &[")
            for name in sorted(types):
                code, status, sender = types[name]
                sender = "true" if sender else "false"
                lines.append(f"    ({rust_string(name)}, {rust_string(code)}, {status}, {sender}),")
            lines.append("];")
            lines.append("")
        return lines

    def generate(self, output_path_for_header):
        meta = self.model.metadata
        lines = [
            f"// @generated by tools/codegen/query_shapes.py from botocore {botocore.__version__}",
            f"// service {self.service_name} (API version {meta['apiVersion']}). Do not edit:",
            f"// python3 tools/codegen/query_shapes.py {self.service_name} "
            f"{output_path_for_header}" + (" --json-timestamps" if self.json_timestamps else ""),
            "",
            "#![allow(clippy::all)]",
            "",
            "use std::collections::BTreeMap;",
            "",
            "use serde::{Deserialize, Serialize};",
            "",
            "use crate::{check_enum, check_length, check_range, member_path, Form, FromForm,",
            "    Request, Response, ToXml, Violations, XmlWriter};",
        ] + ([
            "use crate::{check_enum_at, check_length_at, check_range_at, Validate};",
        ] if self.json_timestamps else []) + [
            "",
            f"/// The API version requests name (`Version=`).",
            f"pub const API_VERSION: &str = {rust_string(meta['apiVersion'])};",
            f"/// The SigV4 signing name and the name requests are routed by.",
            f"pub const SIGNING_NAME: &str = {rust_string(meta.get('signingName', meta['endpointPrefix']))};",
            f"/// The XML namespace of every response document.",
            f"pub const XML_NAMESPACE: &str = {rust_string(meta['xmlNamespace'])};",
            "",
        ]
        for shape_name in sorted(self.all_structs):
            lines.extend(self.emit_struct(shape_name, self.all_structs[shape_name]))
        lines.extend(self.emit_operations())
        return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("service")
    parser.add_argument("output")
    parser.add_argument("--no-rustfmt", action="store_true", help="do not run rustfmt on the output")
    parser.add_argument(
        "--json-timestamps",
        action="store_true",
        help="also serve the JSON and CBOR protocols: timestamps (de)serialize through the wire "
        "crate's `timestamp` module, and ERROR_TYPES lists the error shapes",
    )
    args = parser.parse_args(argv)
    text = Generator(args.service, args.json_timestamps).generate(args.output)
    with open(args.output, "w", encoding="utf-8") as out:
        out.write(text)
    if not args.no_rustfmt:
        rustfmt = shutil.which("rustfmt")
        if rustfmt is None:
            print("warning: rustfmt not found; output is not formatted", file=sys.stderr)
        else:
            subprocess.run([rustfmt, "--edition", "2021", args.output], check=True)


if __name__ == "__main__":
    main()
