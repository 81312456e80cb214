//! How several policies' answers combine (`policy::compose`).
use super::*;

fn policy(name: &str, failure_mode: FailureMode) -> PolicyRef<'_> {
    PolicyRef {
        name,
        version: "v",
        failure_mode,
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn tags_layer_defaults_user_then_enforced() {
    let mut c = TagComposer::new(map(&[("owner", "user"), ("managed-by", "user")]));
    let first = TagDefaultsResponse::default()
        .default_tag("owner", "p1")
        .default_tag("cost-center", "p1");
    let second = TagDefaultsResponse::default()
        .default_tag("cost-center", "p2")
        .enforce_tag("managed-by", "platform");
    let _ = c.push(&policy("a", FailureMode::Deny), Ok(first));
    let _ = c.push(&policy("b", FailureMode::Deny), Ok(second));
    let decision = c.finish();
    assert_eq!(
        decision.outcome,
        TagOutcome::Tags(map(&[
            ("cost-center", "p2"),
            ("managed-by", "platform"),
            ("owner", "user")
        ]))
    );
    assert_eq!(decision.verdicts.len(), 2);
}

#[test]
fn failure_modes() {
    let mut c = TagComposer::new(BTreeMap::new());
    let err = || Err(EvalError::Trap("boom".into()));
    assert!(
        c.push(&policy("open", FailureMode::Allow), err())
            .is_continue()
    );
    assert!(
        c.push(&policy("closed", FailureMode::Deny), err())
            .is_break()
    );
    let decision = c.finish();
    assert!(matches!(decision.outcome, TagOutcome::Deny(ref d) if d.policy == "closed"));
    assert_eq!(decision.verdicts[0].outcome, VerdictOutcome::FailedOpen);
    assert_eq!(decision.verdicts[1].outcome, VerdictOutcome::FailedClosed);
}

#[test]
fn tag_budget_counts_every_source() {
    let user: BTreeMap<_, _> = (0..39)
        .map(|i| (format!("u{i}"), "v".to_string()))
        .collect();
    let c = TagComposer::new(user);
    let two = TagDefaultsResponse::default()
        .default_tag("a", "1")
        .default_tag("b", "2");
    assert!(c.validate(&two).is_err());
    let one = TagDefaultsResponse::default()
        .default_tag("u0", "1")
        .default_tag("b", "2");
    assert!(c.validate(&one).is_ok());
}

#[test]
fn first_pool_choice_wins_and_any_deny_denies() {
    let mut c = PoolComposer::new(None, super::super::validate::AllowedPools::Any);
    let choose = |p: &str| Ok(PoolResponse::Choose { pool: p.into() });
    let _ = c.push(&policy("a", FailureMode::Deny), Ok(PoolResponse::Keep));
    let _ = c.push(&policy("b", FailureMode::Deny), choose("p1"));
    let _ = c.push(&policy("c", FailureMode::Deny), choose("p2"));
    let decision = c.finish();
    assert_eq!(decision.outcome, PoolOutcome::Use("p1".into()));
    let outcomes: Vec<_> = decision.verdicts.iter().map(|v| v.outcome).collect();
    assert_eq!(
        outcomes,
        [
            VerdictOutcome::Keep,
            VerdictOutcome::Choose,
            VerdictOutcome::Ignored
        ]
    );

    let mut c = PoolComposer::new(None, super::super::validate::AllowedPools::Any);
    let _ = c.push(&policy("a", FailureMode::Deny), choose("p1"));
    let deny = Ok(PoolResponse::Deny {
        reason: "no".into(),
    });
    assert!(c.push(&policy("b", FailureMode::Deny), deny).is_break());
    assert!(matches!(c.finish().outcome, PoolOutcome::Deny(ref d) if d.policy == "b"));
}

#[test]
fn eligibility_deny_wins() {
    let mut c = EligibilityComposer::default();
    let _ = c.push(
        &policy("a", FailureMode::Deny),
        Ok(EligibilityResponse::Allow),
    );
    let deny = Ok(EligibilityResponse::Deny {
        reason: "unlabelled".into(),
    });
    assert!(c.push(&policy("b", FailureMode::Deny), deny).is_break());
    let decision = c.finish();
    assert_eq!(
        decision.outcome,
        EligibilityOutcome::Deny(Denial {
            policy: "b".into(),
            reason: "unlabelled".into()
        })
    );
}
