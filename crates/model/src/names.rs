//! Name rules shared by ECS resources.

/// Up to 255 letters (either case), digits, underscores and hyphens: the
/// rule ECS applies to cluster names, task definition families, container
/// names and service names.
pub fn is_valid_resource_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names() {
        for ok in ["a", "web-1", "My_Cluster", &"x".repeat(255)] {
            assert!(is_valid_resource_name(ok), "{ok}");
        }
        for bad in ["", "a b", "a/b", "a:b", "ü", &"x".repeat(256)] {
            assert!(!is_valid_resource_name(bad), "{bad}");
        }
    }
}
