//! Snapshot tests of the text a person reads: the graph summary and a plan.

use graft_core::{plan, Graph, Request, Utility};

/// A residual block around a concatenation, as in the demo.
fn residual_concat() -> Graph {
    let mut g = Graph::new();
    let x = g.add_input("x", 3).unwrap();
    let stem = g.add_absorb("stem", &[x], 8).unwrap();
    let b1 = g.add_absorb("b1", &[stem], 4).unwrap();
    let b2 = g.add_absorb("b2", &[stem], 4).unwrap();
    let cat = g.add_stack("cat", &[b1, b2]).unwrap();
    let add = g.add_invariant("add", &[stem, cat]).unwrap();
    g.add_absorb("head", &[add], 10).unwrap();
    g
}

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
