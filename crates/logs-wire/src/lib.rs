//! The Amazon CloudWatch Logs JSON 1.1 wire shapes, generated from botocore's service model.
//!
//! Everything here is generated into `generated.rs` by `tools/codegen/json_shapes.py`; regenerate
//! with `python3 tools/codegen/json_shapes.py logs crates/logs-wire/src/generated.rs` rather than
//! editing it. These are wire types, not domain types: the `logs` crate converts them at the edge.
//!
//! The mapping, which callers may rely on:
//! - Every botocore structure is a `pub struct` of the same name whose members are all `Option`,
//!   serde-renamed to the exact wire name and omitted when `None` (never sent as `null`). Unknown
//!   members are ignored when parsing. Which members the model requires is not checked here (the
//!   `logs` crate reports that as an AWS error): each struct's `REQUIRED` lists their wire names.
//!   Field names are snake_case; Rust keywords get a `_` suffix (`type` → `type_`).
//! - Every string enum is a `Copy` enum with `as_str`, `ALL`, `Display` and `FromStr` (error:
//!   [`UnknownEnumValue`]); serde uses the exact wire value and rejects any other value with
//!   serde's "unknown variant `x`, expected one of …" message.
//! - Scalars are inlined: integer → `i32`, long → `i64`, double → `f64`, boolean → `bool`,
//!   timestamp → `f64` epoch seconds, list → `Vec`, map → `BTreeMap<String, _>`. CloudWatch
//!   Logs' own times (event timestamps, creation times) are `long` milliseconds in the model,
//!   so they are `i64` here.
//! - [`OPERATIONS`] (sorted by name; see [`find_operation`]) lists each operation's input and output
//!   shape names and error codes; [`TARGET_PREFIX`], [`SIGNING_NAME`], [`API_VERSION`] and
//!   [`JSON_VERSION`] come from the model's metadata.

mod generated;

pub use generated::*;
