//! The sandbox's resource limits.

use std::time::Duration;

/// How often the engine's epoch advances; deadlines are whole ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Resource limits applied to every policy module and every decision.
///
/// ```
/// use k8s_oci_operator::policy::Limits;
/// let limits = Limits { timeout: std::time::Duration::from_millis(50), ..Limits::default() };
/// assert_eq!(limits.memory_bytes, 16 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory one instance may use. A module whose declared minimum
    /// memory is larger is refused at load.
    pub memory_bytes: usize,
    /// Wall-clock deadline of one call into a module.
    pub timeout: Duration,
    /// Largest request document handed to a policy.
    pub max_input_bytes: usize,
    /// Largest output document accepted from a policy.
    pub max_output_bytes: usize,
    /// Largest module as configured (compressed size when gzipped); ConfigMaps
    /// cap out at 1 MiB anyway.
    pub max_module_bytes: usize,
    /// Largest module after decompression (gzip bomb guard).
    pub max_decompressed_bytes: usize,
    /// Evaluations running at the same time (each holds a pooled instance).
    pub max_concurrent_evaluations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 16 << 20,
            timeout: Duration::from_millis(200),
            max_input_bytes: 256 << 10,
            max_output_bytes: 64 << 10,
            max_module_bytes: 1 << 20,
            max_decompressed_bytes: 8 << 20,
            max_concurrent_evaluations: std::thread::available_parallelism()
                .map_or(2, |n| n.get() * 2),
        }
    }
}

impl Limits {
    /// The deadline in epoch ticks. The ticker may advance right after the
    /// deadline is set, so one tick is added to never cut a call short.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let ticks = self.timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
        u64::try_from(ticks).unwrap_or(u64::MAX - 1).max(1) + 1
    }
}
