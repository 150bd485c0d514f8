//! The Application Auto Scaling JSON 1.1 wire shapes (`AnyScaleFrontendService`), generated
//! from botocore's service model.
//!
//! Everything here is generated into `generated.rs` by `tools/codegen/json_shapes.py`; regenerate
//! with `python3 tools/codegen/json_shapes.py application-autoscaling
//! crates/application-autoscaling-wire/src/generated.rs` rather than editing it. These are wire
//! types, not domain types: the `application-autoscaling` crate converts them at the edge.
//!
//! The mapping is `ecs-wire`'s: every structure's members are `Option`, serde-renamed to the exact
//! wire name and omitted when `None`; each struct's `REQUIRED` lists the wire names the model
//! requires; string enums are `Copy` enums with `as_str`, `ALL`, `Display` and `FromStr`;
//! timestamps are `f64` epoch seconds; [`OPERATIONS`] lists each operation's shapes and errors;
//! [`TARGET_PREFIX`], [`SIGNING_NAME`], [`API_VERSION`] and [`JSON_VERSION`] come from the
//! model's metadata.

mod generated;

pub use generated::*;
