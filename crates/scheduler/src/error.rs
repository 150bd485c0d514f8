/// A request the scheduler cannot take: all are answered as ECS
/// `InvalidParameterException` with this message. (A task that fits nowhere
/// is not an error but a [`PlacementFailure`](crate::PlacementFailure).)
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchedulerError {
    /// A cluster query expression that does not parse; `position` is the
    /// 0-based character offset where it goes wrong.
    #[error("Invalid expression '{expression}': {detail} at position {position}.")]
    InvalidExpression {
        expression: String,
        position: usize,
        detail: String,
    },
    #[error("{0}")]
    InvalidStrategy(String),
    #[error("{0}")]
    InvalidConstraint(String),
}
