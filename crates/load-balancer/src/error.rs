/// Everything that can be wrong with a load balancer's configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadBalancerError {
    /// The configuration breaks one of ELBv2's rules; the message names the
    /// field and what a valid value looks like.
    #[error("invalid load balancer configuration: {0}")]
    InvalidConfiguration(String),
    /// A health check matcher such as `200`, `200-299` or `200,302` did not
    /// parse.
    #[error("invalid health check matcher {matcher:?}: use HTTP codes from 200 to 499 such as \"200\", \"200-299\" or \"200,302\"")]
    InvalidMatcher { matcher: String },
    /// A source-ip condition value is not a CIDR block.
    #[error(
        "invalid CIDR block {cidr:?}: use an address and prefix length such as \"10.0.0.0/8\""
    )]
    InvalidCidr { cidr: String },
}
