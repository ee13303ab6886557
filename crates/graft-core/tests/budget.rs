//! Issue 16: a budget that runs out gives the best plan found so far with
//! its proven gap (from `plan`), or a typed error when there is none; the
//! mutating calls never apply an unproven plan.

use std::time::Duration;

use graft_core::{plan, zoo, Budget, PlanError, Request};

/// A concatenation of 100 inputs shrunk by 50, uniform utilities: a search
/// of many nodes (the hard classes of `zoo::hard_cases`).
fn hard() -> (graft_core::Graph, Request) {
    let g = zoo::concat_fan(100, 2);
    let cat = g.id("cat").unwrap();
    let req = Request::new()
        .nout(cat, -50)
        .with_utility(zoo::uniform_utility(&g, 2));
    (g, req)
}

#[test]
fn a_zero_budget_is_a_typed_error() {
    let (g, req) = hard();
    for b in [
        Budget {
            max_nodes: 0,
            time: None,
        },
        Budget::time_limit(Duration::ZERO),
    ] {
        let e = plan(&g, &req.clone().with_budget(b)).unwrap_err();
        assert!(
            matches!(e, PlanError::BudgetExceeded { nodes: 0, ref vertices } if vertices == &["cat"]),
            "{e}"
        );
    }
}

#[test]
fn a_short_budget_returns_the_best_plan_with_its_gap() {
    let (mut g, req) = hard();
    let short = req.clone().with_budget(Budget {
        max_nodes: 3,
        time: None,
    });
    let p = plan(&g, &short).unwrap();
    assert!(!p.optimal);
    assert!(p.gap > 0.0 && p.gap.is_finite(), "gap {}", p.gap);
    assert_eq!(p.deviation_gap, 0.0);
    assert!(p.nodes >= 3);
    // The plan is valid: it meets the exact target and applies.
    let cat = g.id("cat").unwrap();
    assert_eq!(p.nout_after(&g, cat), Some(g.nout(cat).unwrap() - 50));
    let mut applied = g.clone();
    p.apply(&mut applied).unwrap();
    applied.check().unwrap();
    // The mutating call refuses the unproven plan and changes nothing.
    let before = g.clone();
    let e = g.change_sizes(&short).unwrap_err();
    assert!(matches!(e, PlanError::BudgetExceeded { .. }), "{e}");
    assert_eq!(g, before);
    // JSON keeps the new fields.
    let back: graft_core::Plan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert!(!back.optimal);
    assert!((back.gap - p.gap).abs() <= 1e-12 * p.gap.max(1.0));
}

#[test]
fn the_default_budget_has_a_time_limit() {
    assert_eq!(Budget::default().time, Some(Budget::DEFAULT_TIME));
    let r = Request::new().within(Duration::from_millis(250));
    assert_eq!(r.budget.time, Some(Duration::from_millis(250)));
    assert_eq!(r.budget.max_nodes, Budget::default().max_nodes);
}
