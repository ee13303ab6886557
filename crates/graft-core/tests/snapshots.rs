//! Snapshot tests of the text a person reads: the graph summary and a plan.

mod common;

use common::residual_concat;
use graft_core::{plan, Request, Utility};

#[test]
fn summary_table() {
    insta::assert_snapshot!(residual_concat().summary());
}

#[test]
fn plan_rendering() {
    let g = residual_concat();
    let b2 = g.id("b2").unwrap();
    // b2's first two neurons are worth least; transparent vertices carry no
    // utility of their own (the default).
    let req = Request::new()
        .nout(b2, -2)
        .with_utility(Utility::new().with(b2, vec![0.1, 0.2, 1.0, 1.0]));
    insta::assert_snapshot!(plan(&g, &req).unwrap().render());
}

#[test]
fn patch_rendering() {
    use graft_core::{NewVertex, Patch};
    let mut g = residual_concat();
    let b2 = g.id("b2").unwrap();
    // An activation after the stem; a second copy of b1 into the concat, so
    // the residual add grows and the stem with it (new neurons where b1's
    // copy lands); then b2 pruned by one.
    let patch = Patch::new()
        .insert("stem", NewVertex::invariant("relu"))
        .add_edge("b1", "cat")
        .resize(
            Request::new()
                .nout(b2, -1)
                .with_utility(Utility::new().with(b2, vec![0.1, 0.2, 1.0, 1.0])),
        );
    let done = g.commit(&patch).unwrap();
    insta::assert_snapshot!(done.render(&g));
}
