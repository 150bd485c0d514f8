//! Berth's domain model: ECS resources, their names and ARNs, validation
//! rules and lifecycle tables. No I/O, no clock, no randomness: time comes in
//! as `now_ms` arguments.
//!
//! Task definitions are the user's document: they are kept in the ECS wire
//! shape (`ecs_wire::TaskDefinition`) so that every member round-trips
//! exactly; this crate validates and normalises them and derives the fields
//! ECS derives.

pub mod account_settings;
pub mod agent;
pub mod agent_logs;
pub mod agent_metrics;
pub mod arn;
pub mod cluster;
pub mod container_instance;
mod error;
pub mod names;
pub mod tags;
pub mod task;
pub mod task_definition;
pub mod task_size;

pub use error::ModelError;
