//! Berth's scheduler: where ECS tasks go.
//!
//! Pure: no I/O, no clock, and no randomness but the seeded source the
//! caller passes in. The control plane reads the container instances of a
//! cluster from the store, builds a [`ClusterState`], asks [`place`] (or
//! [`place_one`]) where a batch of tasks goes, and writes the answer back
//! with compare-and-swap.
//!
//! Placement follows ECS: an instance must be ACTIVE with its agent
//! connected, have the attributes the task definition requires, have the
//! CPU, memory, GPUs and static host ports free, and satisfy every
//! constraint (`distinctInstance`, `memberOf` with the [cluster query
//! language](query)); among those, the strategy chain (binpack, spread,
//! random; up to five rules, each breaking the ties of the one before)
//! picks the instance. Ties the chain leaves are broken by position in the
//! snapshot, so a placement is a function of the snapshot, the requests and
//! the seed. Each decision is applied to the state before the next, so a
//! batch never over-commits an instance.
//!
//! Architecture invariant: this crate knows nothing about the store, the
//! wire shapes or tokio.

mod error;
mod place;
#[cfg(test)]
mod properties;
pub mod query;
mod snapshot;
mod state;
pub mod synthetic;

pub use error::SchedulerError;
pub use place::{place, place_one};
pub use query::{Expr, QueryTarget};
pub use snapshot::{
    validate_constraints, validate_strategy_chain, BinpackField, FailureReason, InstanceIndex,
    InstanceRejection, InstanceSnapshot, InstanceStatus, Placement, PlacementConstraint,
    PlacementFailure, PlacementStrategy, RequiredAttribute, Resources, SpreadField, TaskRequest,
    MAX_PLACEMENT_CONSTRAINTS, MAX_STRATEGY_RULES, NO_CONTAINER_INSTANCES_MESSAGE,
};
pub use state::{ClusterState, InstanceView};
