//! Counts of API calls by operation and outcome, for `GET /_emulator/calls`.

use serde::Serialize;
use std::collections::BTreeMap;

/// Outcome recorded for a call whose connection was dropped on purpose.
pub const DROPPED: &str = "dropped";

/// operation -> outcome (HTTP status or "dropped") -> count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CallLog {
    counts: BTreeMap<String, BTreeMap<String, u64>>,
}

impl CallLog {
    pub fn record(&mut self, operation: &str, outcome: &str) {
        *self
            .counts
            .entry(operation.to_string())
            .or_default()
            .entry(outcome.to_string())
            .or_default() += 1;
    }

    /// Calls of `operation` that ended with `outcome` ("200", "429", "dropped").
    pub fn count(&self, operation: &str, outcome: &str) -> u64 {
        self.counts
            .get(operation)
            .and_then(|o| o.get(outcome))
            .copied()
            .unwrap_or(0)
    }

    /// All calls of `operation`, whatever the outcome.
    pub fn total(&self, operation: &str) -> u64 {
        self.counts
            .get(operation)
            .map(|o| o.values().sum())
            .unwrap_or(0)
    }

    pub fn clear(&mut self) {
        self.counts.clear();
    }
}
