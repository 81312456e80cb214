//! OCI call counts as the emulator's `/_emulator/calls` reports them:
//! operation -> outcome (HTTP status or `dropped`) -> count.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::topology::WRITE_OPS;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Calls(pub BTreeMap<String, BTreeMap<String, u64>>);

impl Calls {
    /// What happened between `before` and `self` (counts only grow).
    pub fn since(&self, before: &Calls) -> Calls {
        let mut out = BTreeMap::new();
        for (op, outcomes) in &self.0 {
            let mut d = BTreeMap::new();
            for (outcome, n) in outcomes {
                let was = before
                    .0
                    .get(op)
                    .and_then(|o| o.get(outcome))
                    .copied()
                    .unwrap_or(0);
                if *n > was {
                    d.insert(outcome.clone(), n - was);
                }
            }
            if !d.is_empty() {
                out.insert(op.clone(), d);
            }
        }
        Calls(out)
    }

    /// Calls of one operation, whatever their answer.
    pub fn count(&self, op: &str) -> u64 {
        self.0.get(op).map_or(0, |o| o.values().sum())
    }

    pub fn total(&self) -> u64 {
        self.0.values().flat_map(|o| o.values()).sum()
    }

    /// Calls answered 429 TooManyRequests.
    pub fn throttled(&self) -> u64 {
        self.0.values().filter_map(|o| o.get("429")).sum()
    }

    /// Calls of the operations that change something, whatever their answer.
    pub fn mutating(&self) -> u64 {
        WRITE_OPS
            .iter()
            .filter_map(|op| self.0.get(*op))
            .flat_map(|o| o.values())
            .sum()
    }

    /// `GetPublicIp 1, ListPrivateIps 1` style summary.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(op, o)| {
                let n: u64 = o.values().sum();
                let throttled = o.get("429").copied().unwrap_or(0);
                if throttled > 0 {
                    format!("{op} {n} ({throttled}x429)")
                } else {
                    format!("{op} {n}")
                }
            })
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(v: &[(&str, &str, u64)]) -> Calls {
        let mut m: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (op, o, n) in v {
            m.entry(op.to_string())
                .or_default()
                .insert(o.to_string(), *n);
        }
        Calls(m)
    }

    #[test]
    fn delta_totals_and_classes() {
        let before = calls(&[("GetPublicIp", "200", 3)]);
        let after = calls(&[
            ("GetPublicIp", "200", 5),
            ("CreatePublicIp", "200", 2),
            ("CreatePublicIp", "429", 1),
        ]);
        let d = after.since(&before);
        assert_eq!(d.total(), 5);
        assert_eq!(d.throttled(), 1);
        assert_eq!(d.mutating(), 3);
        assert_eq!(d.summary(), "CreatePublicIp 3 (1x429), GetPublicIp 2");
    }
}
