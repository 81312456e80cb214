//! Namespace label selectors (Kubernetes `LabelSelector` semantics), checked
//! when a policy is loaded so evaluation never meets a malformed one.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// A validated selector; the default matches every namespace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NamespaceSelector {
    match_labels: BTreeMap<String, String>,
    expressions: Vec<Expression>,
}

#[derive(Clone, Debug, PartialEq)]
enum Expression {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl NamespaceSelector {
    /// Validates a `LabelSelector`.
    pub fn new(selector: LabelSelector) -> Result<Self, String> {
        let expressions = selector
            .match_expressions
            .unwrap_or_default()
            .into_iter()
            .map(Expression::new)
            .collect::<Result<_, _>>()?;
        Ok(NamespaceSelector {
            match_labels: selector.match_labels.unwrap_or_default(),
            expressions,
        })
    }

    /// Whether a namespace with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|e| e.matches(labels))
    }
}

impl Expression {
    fn new(req: LabelSelectorRequirement) -> Result<Self, String> {
        let values = req.values.unwrap_or_default();
        let key = req.key;
        let need_values = |values: Vec<String>| {
            if values.is_empty() {
                Err(format!("operator {} on {key} needs values", req.operator))
            } else {
                Ok(values)
            }
        };
        match req.operator.as_str() {
            "In" => Ok(Expression::In(key.clone(), need_values(values)?)),
            "NotIn" => Ok(Expression::NotIn(key.clone(), need_values(values)?)),
            "Exists" | "DoesNotExist" if !values.is_empty() => Err(format!(
                "operator {} on {key} takes no values",
                req.operator
            )),
            "Exists" => Ok(Expression::Exists(key)),
            "DoesNotExist" => Ok(Expression::DoesNotExist(key)),
            other => Err(format!(
                "unknown selector operator {other} (In, NotIn, Exists, DoesNotExist)"
            )),
        }
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Expression::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Expression::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Expression::Exists(k) => labels.contains_key(k),
            Expression::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn selector(yaml: &str) -> Result<NamespaceSelector, String> {
        NamespaceSelector::new(serde_yaml::from_str(yaml).map_err(|e| e.to_string())?)
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(NamespaceSelector::default().matches(&labels(&[])));
    }

    #[test]
    fn match_labels_and_expressions() {
        let s = selector(
            "matchLabels: {tier: prod}\nmatchExpressions:\n- {key: team, operator: In, values: [a, b]}\n- {key: legacy, operator: DoesNotExist}\n",
        )
        .expect("valid");
        assert!(s.matches(&labels(&[("tier", "prod"), ("team", "a")])));
        assert!(!s.matches(&labels(&[("tier", "prod"), ("team", "c")])));
        assert!(!s.matches(&labels(&[("tier", "dev"), ("team", "a")])));
        assert!(!s.matches(&labels(&[("tier", "prod"), ("team", "a"), ("legacy", "")])));
        let s = selector("matchExpressions: [{key: team, operator: NotIn, values: [x]}, {key: tier, operator: Exists}]")
            .expect("valid");
        assert!(s.matches(&labels(&[("tier", "prod")])));
        assert!(!s.matches(&labels(&[("tier", "prod"), ("team", "x")])));
    }

    #[test]
    fn malformed_selectors_are_refused() {
        assert!(selector("matchExpressions: [{key: a, operator: Like, values: [x]}]").is_err());
        assert!(selector("matchExpressions: [{key: a, operator: In}]").is_err());
        assert!(selector("matchExpressions: [{key: a, operator: Exists, values: [x]}]").is_err());
    }
}
