//! The Amazon Elastic Container Registry JSON 1.1 wire shapes, generated from botocore's service
//! model.
//!
//! Everything here is generated into `generated.rs` by `tools/codegen/json_shapes.py`; regenerate
//! with `python3 tools/codegen/json_shapes.py ecr crates/ecr-wire/src/generated.rs` rather than
//! editing it. These are wire types, not domain types: the `ecr` crate converts them at the edge.
//!
//! The mapping is `ecs-wire`'s: every structure's members are `Option`, serde-renamed to the exact
//! wire name and omitted when `None`; each struct's `REQUIRED` lists the wire names the model
//! requires (checked by the `ecr` crate, not here); string enums are `Copy` enums with `as_str`,
//! `ALL`, `Display` and `FromStr`; timestamps are `f64` epoch seconds; [`OPERATIONS`] (sorted;
//! see [`find_operation`]) lists each operation's shapes and errors; [`TARGET_PREFIX`],
//! [`SIGNING_NAME`], [`API_VERSION`] and [`JSON_VERSION`] come from the model's metadata.

mod generated;

pub use generated::*;
