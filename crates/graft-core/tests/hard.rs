//! Issue 16: the planner's hard classes (`zoo::hard_cases`) that the exact
//! relaxation settles in few nodes. Node counts are deterministic, so these
//! are bounds on the search, not timings (those are in BENCHMARKS.md).

use graft_core::{plan, zoo, Budget, Request};

/// DenseNet-121, utilities uniform in (0, 1), exact −512 on the
/// concatenation ending block 3: more than 900 s of search with subsampled
/// tangents, 36 to 63 nodes with the tangent cuts (`IntProblem::tighten`).
#[test]
fn densenet_block3_shrink_is_proven_in_few_nodes() {
    let g = zoo::densenet121();
    let out3 = g.id("block3_out").unwrap();
    for seed in [1, 2] {
        let req = Request::new()
            .nout(out3, -512)
            .with_utility(zoo::uniform_utility(&g, seed))
            .with_budget(Budget {
                max_nodes: 400,
                time: None,
            });
        let p = plan(&g, &req).unwrap();
        assert!(
            p.optimal,
            "seed {seed}: not proven in 400 nodes (gap {})",
            p.gap
        );
        assert!(p.nodes <= 100, "seed {seed}: {} nodes", p.nodes);
        assert_eq!(p.nout_after(&g, out3), Some(512));
    }
}
