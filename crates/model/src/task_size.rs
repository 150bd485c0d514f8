//! Task-level `cpu` and `memory`: the formats ECS accepts ("1024",
//! "1 vCPU", "0.25 vCPU"; "2048", "2 GB", "2GB") and the Fargate sizes.

use crate::ModelError;

/// Lowest and highest task-level CPU units for the EC2 launch type.
pub const EC2_TASK_CPU_UNITS_MIN: u32 = 128;
pub const EC2_TASK_CPU_UNITS_MAX: u32 = 196_608;

/// Parses a task-level `cpu` value to CPU units (1024 units = 1 vCPU).
pub fn parse_task_cpu_units(value: &str) -> Result<u32, ModelError> {
    let invalid = || {
        ModelError::client(format!(
            "Invalid 'cpu' setting for task. '{value}' is not a CPU size: specify CPU units as an integer (e.g. '1024') or vCPUs (e.g. '1 vCPU', '0.25 vCPU')."
        ))
    };
    let trimmed = value.trim();
    let lower = trimmed.to_ascii_lowercase();
    if let Some(number) = lower.strip_suffix("vcpu") {
        let vcpus = parse_decimal(number.trim()).ok_or_else(invalid)?;
        let units = vcpus * 1024.0;
        if units.fract() != 0.0 || units <= 0.0 || units > u32::MAX as f64 {
            return Err(invalid());
        }
        return Ok(units as u32);
    }
    let units: u32 = trimmed.parse().map_err(|_| invalid())?;
    if units == 0 {
        return Err(invalid());
    }
    Ok(units)
}

/// Parses a task-level `memory` value to MiB.
pub fn parse_task_memory_mib(value: &str) -> Result<u32, ModelError> {
    let invalid = || {
        ModelError::client(format!(
            "Invalid 'memory' setting for task. '{value}' is not a memory size: specify MiB as an integer (e.g. '2048') or GB (e.g. '2 GB', '0.5GB')."
        ))
    };
    let trimmed = value.trim();
    let lower = trimmed.to_ascii_lowercase();
    if let Some(number) = lower.strip_suffix("gb") {
        let gb = parse_decimal(number.trim()).ok_or_else(invalid)?;
        let mib = gb * 1024.0;
        if mib.fract() != 0.0 || mib <= 0.0 || mib > u32::MAX as f64 {
            return Err(invalid());
        }
        return Ok(mib as u32);
    }
    let mib: u32 = trimmed.parse().map_err(|_| invalid())?;
    if mib == 0 {
        return Err(invalid());
    }
    Ok(mib)
}

/// A plain decimal such as `1`, `0.25`, `.5` (no sign, no exponent).
fn parse_decimal(text: &str) -> Option<f64> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        || text.bytes().filter(|&b| b == b'.').count() > 1
        || text == "."
    {
        return None;
    }
    text.parse().ok()
}

/// The memory sizes (MiB) Fargate offers for a given CPU size, for Linux.
/// `None` when the CPU size is not a Fargate size.
pub fn fargate_memory_options_mib(cpu_units: u32) -> Option<Vec<u32>> {
    let gib = |n: u32| n * 1024;
    let range = |from_gib: u32, to_gib: u32, step_gib: u32| {
        (from_gib..=to_gib)
            .step_by(step_gib as usize)
            .map(gib)
            .collect::<Vec<_>>()
    };
    Some(match cpu_units {
        256 => vec![512, 1024, 2048],
        512 => range(1, 4, 1),
        1024 => range(2, 8, 1),
        2048 => range(4, 16, 1),
        4096 => range(8, 30, 1),
        8192 => range(16, 60, 4),
        16384 => range(32, 120, 8),
        _ => return None,
    })
}

/// Checks a task size against the Fargate table.
pub fn validate_fargate_size(cpu_units: u32, memory_mib: u32) -> Result<(), ModelError> {
    match fargate_memory_options_mib(cpu_units) {
        Some(options) if options.contains(&memory_mib) => Ok(()),
        _ => Err(ModelError::client(format!(
            "No Fargate configuration exists for given values: {cpu_units} CPU, {memory_mib} memory. See the Amazon ECS documentation for the valid values."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_cpu(input: &str, expected: Option<u32>) {
        assert_eq!(parse_task_cpu_units(input).ok(), expected, "cpu {input:?}");
    }
    fn check_memory(input: &str, expected: Option<u32>) {
        assert_eq!(
            parse_task_memory_mib(input).ok(),
            expected,
            "memory {input:?}"
        );
    }

    #[test]
    fn cpu_formats() {
        check_cpu("1024", Some(1024));
        check_cpu("256", Some(256));
        check_cpu("1 vCPU", Some(1024));
        check_cpu("1vcpu", Some(1024));
        check_cpu("0.25 vCPU", Some(256));
        check_cpu(".5 vCPU", Some(512));
        check_cpu("2 VCPU", Some(2048));
        check_cpu("0.0001 vCPU", None);
        check_cpu("", None);
        check_cpu("0", None);
        check_cpu("-1", None);
        check_cpu("one", None);
        check_cpu("1e3", None);
        check_cpu("1 GB", None);
    }

    #[test]
    fn memory_formats() {
        check_memory("2048", Some(2048));
        check_memory("2 GB", Some(2048));
        check_memory("2GB", Some(2048));
        check_memory("0.5GB", Some(512));
        check_memory("2 gb", Some(2048));
        check_memory("2 MiB", None);
        check_memory("0", None);
        check_memory("", None);
    }

    #[test]
    fn fargate_sizes() {
        assert!(validate_fargate_size(256, 512).is_ok());
        assert!(validate_fargate_size(256, 4096).is_err());
        assert!(validate_fargate_size(1024, 8192).is_ok());
        assert!(validate_fargate_size(4096, 30720).is_ok());
        assert!(validate_fargate_size(8192, 20480).is_ok());
        assert!(validate_fargate_size(8192, 18432).is_err());
        assert!(validate_fargate_size(16384, 122880).is_ok());
        assert!(validate_fargate_size(300, 1024).is_err());
        let err = validate_fargate_size(512, 8192).unwrap_err();
        assert_eq!(err.message(), "No Fargate configuration exists for given values: 512 CPU, 8192 memory. See the Amazon ECS documentation for the valid values.");
    }
}
