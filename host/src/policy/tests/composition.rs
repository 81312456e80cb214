//! Several policies at once: order, namespace selectors, failure modes,
//! invalid answers, last good versions.

use super::*;

#[tokio::test]
async fn composition_follows_order_then_name() {
    let engine = engine();
    let tags =
        |defaults: &str| wat::answer_module(&format!(r#"{{"ok":{{"defaults":{defaults}}}}}"#));
    let reports = load(
        &engine,
        vec![
            source(
                "b-second",
                tags(r#"{"k":"b","only-b":"1"}"#),
                &[("order", "5")],
            ),
            source("a-third", tags(r#"{"k":"a"}"#), &[("order", "5")]),
            source(
                "z-first",
                tags(r#"{"k":"z","only-z":"1"}"#),
                &[("order", "-1")],
            ),
        ],
    )
    .await;
    assert!(loaded(&reports), "{reports:?}");
    let decision = engine
        .tag_defaults(&input("shop", &[]))
        .await
        .expect("decision");
    let order: Vec<&str> = decision
        .verdicts
        .iter()
        .map(|v| v.policy.as_str())
        .collect();
    assert_eq!(order, ["z-first", "a-third", "b-second"]);
    let TagOutcome::Tags(tags) = decision.outcome else {
        panic!("expected tags")
    };
    // Later policies override earlier ones for the same key.
    assert_eq!(tags["k"], "b");
    assert_eq!(
        (tags["only-b"].as_str(), tags["only-z"].as_str()),
        ("1", "1")
    );
}

#[tokio::test]
async fn namespace_selector_limits_where_a_policy_applies() {
    let engine = engine();
    let deny = wat::answer_module(r#"{"ok":{"decision":"deny","reason":"prod only"}}"#);
    let reports = load(
        &engine,
        vec![source(
            "prod-only",
            deny,
            &[("namespaceSelector", "matchLabels: {tier: prod}")],
        )],
    )
    .await;
    assert!(loaded(&reports), "{reports:?}");
    let target = Target::pod("p");
    let prod = engine
        .eligibility(&input("a", &[("tier", "prod")]), &target)
        .await
        .expect("decision");
    assert!(matches!(prod.outcome, EligibilityOutcome::Deny(ref d) if d.reason == "prod only"));
    let dev = engine
        .eligibility(&input("b", &[("tier", "dev")]), &target)
        .await
        .expect("decision");
    assert_eq!(dev.outcome, EligibilityOutcome::Allow);
    assert!(dev.verdicts.is_empty());
}

#[tokio::test]
async fn failure_modes_deny_or_skip() {
    let engine = engine();
    let reports = load(
        &engine,
        vec![
            source(
                "open",
                wat::hostile_module("unreachable"),
                &[
                    ("failureMode", "allow"),
                    ("namespaceSelector", "matchLabels: {mode: open}"),
                ],
            ),
            source(
                "closed",
                wat::hostile_module("unreachable"),
                &[("namespaceSelector", "matchLabels: {mode: closed}")],
            ),
        ],
    )
    .await;
    assert!(loaded(&reports), "{reports:?}");
    let target = Target::pod("p");
    let open = engine
        .eligibility(&input("a", &[("mode", "open")]), &target)
        .await
        .expect("decision");
    assert_eq!(open.outcome, EligibilityOutcome::Allow);
    assert_eq!(open.verdicts[0].outcome, VerdictOutcome::FailedOpen);
    let closed = engine
        .eligibility(&input("b", &[("mode", "closed")]), &target)
        .await
        .expect("decision");
    assert!(
        matches!(closed.outcome, EligibilityOutcome::Deny(ref d) if d.policy == "closed" && d.reason.contains("trapped"))
    );
    assert_eq!(closed.verdicts[0].outcome, VerdictOutcome::FailedClosed);
}

#[tokio::test]
async fn invalid_answers_fail_the_policy() {
    let engine = engine();
    let reports = load(
        &engine,
        vec![
            source(
                "reserved-tag",
                wat::answer_module(r#"{"ok":{"enforced":{"k8s-oci-operator-x":"1"}}}"#),
                &[("namespaceSelector", "matchLabels: {case: tag}")],
            ),
            source(
                "foreign-pool",
                wat::answer_module(
                    r#"{"ok":{"decision":"choose","pool":"ocid1.publicippool.oc1..elsewhere"}}"#,
                ),
                &[("namespaceSelector", "matchLabels: {case: pool}")],
            ),
        ],
    )
    .await;
    assert!(loaded(&reports), "{reports:?}");
    let tags = engine
        .tag_defaults(&input("a", &[("case", "tag")]))
        .await
        .expect("decision");
    assert!(
        matches!(tags.outcome, TagOutcome::Deny(ref d) if d.reason.contains("reserved for the operator"))
    );
    let pool = engine
        .select_pool(
            &input("b", &[("case", "pool")]),
            &AllowedPools::Only(vec![POOL_A.into()]),
        )
        .await
        .expect("decision");
    assert!(matches!(pool.outcome, PoolOutcome::Deny(ref d) if d.reason.contains("allowed pools")));
}

#[tokio::test]
async fn last_good_version_is_kept_when_an_update_fails() {
    let engine = engine();
    let good = wat::answer_module(r#"{"ok":{"decision":"deny","reason":"v1"}}"#);
    assert!(loaded(
        &load(&engine, vec![source("p", good.clone(), &[])]).await
    ));
    let version = engine.status()[0].version.clone();

    let reports = load(&engine, vec![source("p", wat::abi_version_module(2), &[])]).await;
    assert!(
        matches!(&reports[0].result, LoadResult::Failed { kept_version: Some(v), .. } if Some(v) == version.as_ref()),
        "{reports:?}"
    );
    let status = &engine.status()[0];
    assert_eq!(status.version, version);
    assert_eq!(status.load_failures, 1);
    assert!(
        status
            .error
            .as_deref()
            .is_some_and(|e| e.contains("ABI version 2"))
    );
    let decision = engine
        .eligibility(&input("a", &[]), &Target::pod("p"))
        .await
        .expect("decision");
    assert!(matches!(decision.outcome, EligibilityOutcome::Deny(ref d) if d.reason == "v1"));

    // The same broken configuration again is not re-reported.
    assert!(
        load(&engine, vec![source("p", wat::abi_version_module(2), &[])])
            .await
            .is_empty()
    );
    // Fixing it clears the error; removing it unloads the policy.
    let reports = load(&engine, vec![source("p", good, &[("order", "1")])]).await;
    assert!(loaded(&reports), "{reports:?}");
    assert_eq!(engine.status()[0].error, None);
    let reports = load(&engine, vec![]).await;
    assert_eq!(reports[0].result, LoadResult::Removed);
    assert!(engine.status().is_empty());
}
