//! Scenarios A1, A3, A5-A13 and A25 of shared/acceptance/mutation.md (sizes
//! and index lists; indices there are 1-based, here 0-based). The weight
//! checks of A2 and A4 belong to the layers crate.

use graft_core::{
    plan, plan_or_relax, Budget, Constraint, Graph, Neuron, PlanError, Request, Step, Utility,
    VertexId,
};

fn old(range: impl IntoIterator<Item = usize>) -> Vec<Neuron> {
    range.into_iter().map(Neuron::Old).collect()
}

fn outs(p: &graft_core::Plan, v: VertexId) -> Vec<Neuron> {
    p.change(v)
        .and_then(|c| c.outs.clone())
        .expect("vertex outputs changed")
}

fn sizes(g: &Graph, vs: &[VertexId]) -> Vec<usize> {
    vs.iter().map(|&v| g.nout(v).unwrap()).collect()
}

/// Apply with the default chain, check the graph, return the step.
fn run(g: &mut Graph, req: &Request) -> (Step, graft_core::Plan) {
    let done = g.change_sizes(req).expect("request succeeds");
    g.check().expect("graph valid after change");
    (done.step, done.plan)
}

#[test]
fn a01_chain_prune() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let a = g.add_absorb("A", &[x], 5).unwrap();
    let b = g.add_absorb("B", &[a], 4).unwrap();

    let req = Request::new()
        .nout(a, -2)
        .with_utility(Utility::ascending(&g));
    let (step, p) = run(&mut g, &req);
    assert_eq!(step, Step::Exact);
    assert_eq!(outs(&p, a), old([2, 3, 4]));
    assert_eq!(p.change(b).unwrap().ins, vec![Some(old([2, 3, 4]))]);
    assert_eq!(g.nin(b).unwrap(), &[3]);

    let (_, p) = run(&mut g, &Request::new().nout(a, 3));
    let grown = [old(0..3), vec![Neuron::New; 3]].concat();
    assert_eq!(outs(&p, a), grown);
    assert_eq!(p.change(b).unwrap().ins, vec![Some(grown)]);

    let req = Request::new()
        .nin(b, 0, -2)
        .with_utility(Utility::ascending(&g));
    let (_, p) = run(&mut g, &req);
    assert_eq!(outs(&p, a), old(2..6));
    assert_eq!(g.nin(b).unwrap(), &[4]);
    assert_eq!(g.nout(b).unwrap(), 4);
}

/// A3's graph: start feeds split and the residual add; joined = three scaled
/// copies of split.
fn a03_graph() -> (Graph, [VertexId; 4]) {
    let mut g = Graph::new();
    let x = g.add_input("in", 6).unwrap();
    let start = g.add_absorb("start", &[x], 6).unwrap();
    let split = g.add_absorb("split", &[start], 2).unwrap();
    let s2 = g.add_invariant("x2", &[split]).unwrap();
    let s3 = g.add_invariant("x3", &[split]).unwrap();
    let s5 = g.add_invariant("x5", &[split]).unwrap();
    let joined = g.add_stack("joined", &[s2, s3, s5]).unwrap();
    let out = g.add_invariant("out", &[start, joined]).unwrap();
    (g, [start, split, joined, out])
}

#[test]
fn a03_relaxed_concat() {
    let (mut g, [start, split, joined, out]) = a03_graph();
    let before = g.clone();
    assert!(matches!(
        plan(&g, &Request::new().nout(out, 2)),
        Err(PlanError::Infeasible { .. })
    ));
    assert_eq!(g, before);

    // The default chain relaxes the infeasible exact request.
    let (step, p) = run(&mut g.clone(), &Request::new().nout(out, 2));
    assert_eq!(step, Step::Relaxed);
    let (step2, p2) = run(&mut g, &Request::new().nout_relaxed(out, 2));
    assert_eq!(step2, Step::Relaxed);
    assert_eq!(p, p2);
    assert_eq!(sizes(&g, &[start, joined, out, split]), [9, 9, 9, 3]);
    // One new neuron after each of the three two-neuron segments: the graph's
    // output on ones(6) becomes [78,78,0,114,114,0,186,186,0].
    let seg = |a, b| vec![Neuron::Old(a), Neuron::Old(b), Neuron::New];
    let expect = [seg(0, 1), seg(2, 3), seg(4, 5)].concat();
    assert_eq!(outs(&p, out), expect);
    assert_eq!(outs(&p, start), expect);
}

#[test]
fn a05_pruning_without_targets() {
    let build = || {
        let mut g = Graph::new();
        let x = g.add_input("in", 4).unwrap();
        let v1 = g.add_absorb("v1", &[x], 6).unwrap();
        let v2 = g.add_absorb("v2", &[v1], 8).unwrap();
        (g, v1, v2)
    };
    let util = |g: &Graph, f: &dyn Fn(usize) -> f64| {
        let mut u = Utility::new();
        for id in g.ids() {
            let n = g.nout(id).unwrap();
            u.set(id, (0..n).map(f).collect());
        }
        u
    };
    let (mut g, v1, v2) = build();
    let req = Request::new().with_utility(util(&g, &|i| if i % 2 == 0 { 1.0 } else { -1.0 }));
    let (_, p) = run(&mut g, &req);
    assert_eq!(sizes(&g, &[v1, v2]), [3, 4]);
    assert_eq!(outs(&p, v1), old([0, 2, 4]));

    let (mut g, v1, v2) = build();
    let req = Request::new().with_utility(util(&g, &|_| -1.0));
    let (_, p) = run(&mut g, &req);
    assert_eq!(sizes(&g, &[v1, v2]), [1, 1]);
    assert_eq!(outs(&p, v1), old([0]));

    let (mut g, v1, v2) = build();
    let req = Request::new().with_utility(util(&g, &|_| 1.0));
    let (_, p) = run(&mut g, &req);
    assert!(p.is_empty());
    assert_eq!(sizes(&g, &[v1, v2]), [6, 8]);
}

#[test]
fn a06_residual_fork_size_mode() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let start = g.add_absorb("start", &[x], 9).unwrap();
    let p1a = g.add_absorb("p1a", &[start], 3).unwrap();
    let p1 = g.add_absorb("p1", &[p1a], 4).unwrap();
    let p2a = g.add_absorb("p2a", &[start], 4).unwrap();
    let p2 = g.add_absorb("p2", &[p2a], 5).unwrap();
    let c = g.add_stack("conc", &[p1, p2]).unwrap();
    let res = g.add_invariant("res", &[start, c]).unwrap();
    let out = g.add_absorb("out", &[res], 9).unwrap();

    let size_mode = Request::new().with_utility(Utility::size_only());
    let (_, _) = run(&mut g, &size_mode.clone().nout(p2, -2));
    assert_eq!(sizes(&g, &[p2, start, p1]), [3, 8, 5]);
    assert_eq!(g.nin(out).unwrap(), &[8]);
    assert_eq!(g.nin(p1a).unwrap(), &[8]);
    assert_eq!(g.nin(p2a).unwrap(), &[8]);
    assert_eq!(g.nin(res).unwrap(), &[8, 8]);

    run(&mut g, &size_mode.nin(out, 0, 2));
    assert_eq!(g.nout(start).unwrap(), 10);
}

#[test]
fn a07_transparent_fork() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let start = g.add_absorb("start", &[x], 4).unwrap();
    let i1 = g.add_invariant("id1", &[start]).unwrap();
    let i2 = g.add_invariant("id2", &[start]).unwrap();
    let j = g.add_stack("j", &[i1, i2]).unwrap();
    let out = g.add_absorb("out", &[j], 3).unwrap();
    let size_mode = Request::new().with_utility(Utility::size_only());

    run(&mut g, &size_mode.clone().nout(start, -1));
    assert_eq!(g.nin(out).unwrap(), &[6]);
    run(&mut g, &size_mode.clone().nin(out, 0, 2));
    assert_eq!(g.nin(out).unwrap(), &[8]);

    let odd = size_mode.nin(out, 0, 1);
    assert!(matches!(plan(&g, &odd), Err(PlanError::Infeasible { .. })));
    let (step, _) = run(&mut g, &odd);
    assert_eq!(step, Step::Relaxed);
    assert_eq!(g.nin(out).unwrap(), &[10]);
}

#[test]
fn a08_nested_concat_duplicate() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 7).unwrap();
    let v2 = g.add_absorb("v2", &[x], 4).unwrap();
    let v3 = g.add_stack("v3", &[v2, v1]).unwrap();
    let v4 = g.add_stack("v4", &[v3, v2]).unwrap();
    assert_eq!(g.nout(v4).unwrap(), 15);

    run(&mut g, &Request::new().nout(v4, -4));
    assert_eq!(sizes(&g, &[v1, v2]), [7, 2]);
    run(&mut g, &Request::new().nout(v4, 6));
    assert_eq!(sizes(&g, &[v1, v2]), [11, 3]);
    // Mixed relaxed and exact targets: feasible as given.
    let (step, _) = run(&mut g, &Request::new().nin_relaxed(v4, 0, -2).nin(v4, 1, 3));
    assert_eq!(step, Step::Exact);
    assert_eq!(sizes(&g, &[v1, v2]), [6, 6]);
    run(&mut g, &Request::new().nin(v4, 0, -2));
    assert_eq!(sizes(&g, &[v1, v2]), [5, 5]);
}

#[test]
fn a09_add_across_concats() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 7).unwrap();
    let v2 = g.add_absorb("v2", &[x], 4).unwrap();
    let v3 = g.add_absorb("v3", &[x], 3).unwrap();
    let v4 = g.add_stack("v4", &[v1, v2]).unwrap();
    let v5 = g.add_stack("v5", &[v2, v3, v2]).unwrap();
    let v6 = g.add_invariant("v6", &[v4, v5]).unwrap();

    let req = Request::new()
        .nout(v6, -4)
        .with_utility(Utility::ascending(&g));
    let (_, p) = run(&mut g, &req);
    assert_eq!(sizes(&g, &[v1, v2, v3]), [5, 2, 3]);
    // v1 ≡ v2 ⊕ v3 position-wise: v1's first neurons follow v2's choice.
    assert_eq!(outs(&p, v2), old([2, 3]));
    assert_eq!(outs(&p, v1), old([2, 3, 4, 5, 6]));
    run(&mut g, &Request::new().nout(v6, 6));
    assert_eq!(sizes(&g, &[v1, v2, v3]), [9, 4, 5]);
}

#[test]
fn a10_neuron_level_coupling() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 10).unwrap();
    let v2 = g.add_absorb("v2", &[x], 5).unwrap();
    let v3 = g.add_absorb("v3", &[x], 10).unwrap();
    let v4 = g.add_absorb("v4", &[x], 5).unwrap();
    let v5 = g.add_stack("v5", &[v1, v2, v3]).unwrap();
    let v6 = g.add_stack("v6", &[v2, v1, v2, v4]).unwrap();
    let v7 = g.add_invariant("v7", &[v5, v6]).unwrap();
    run(&mut g, &Request::new().nout(v7, -7));
    // A size-only solver would say (7, 3, 8, 5).
    assert_eq!(sizes(&g, &[v1, v2, v3, v4]), [6, 3, 9, 6]);

    // Growth version.
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 3).unwrap();
    let v2 = g.add_absorb("v2", &[x], 4).unwrap();
    let v3 = g.add_absorb("v3", &[x], 4).unwrap();
    let v4 = g.add_absorb("v4", &[x], 5).unwrap();
    let v5 = g.add_stack("v5", &[v1, v2, v4]).unwrap();
    let v6 = g.add_stack("v6", &[v3, v4, v1]).unwrap();
    let v7 = g.add_invariant("v7", &[v5, v6]).unwrap();
    let (_, p) = run(&mut g, &Request::new().nout(v7, 6));
    assert_eq!(sizes(&g, &[v1, v2, v3, v4]), [5, 6, 6, 7]);
    // Growth keeps every old neuron, in order, everywhere: function preserved.
    for c in &p.changes {
        if let Some(o) = &c.outs {
            let kept: Vec<Neuron> = o.iter().copied().filter(|n| *n != Neuron::New).collect();
            assert_eq!(kept, old(0..c.nout_before), "{}", c.name);
        }
    }
}

#[test]
fn a11_stacked_multiples() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let mut v = Vec::new();
    for (i, step) in [1, 2, 3, 5].into_iter().enumerate() {
        let id = g.add_absorb(&format!("v{}", i + 1), &[x], 100).unwrap();
        g.add_constraint(id, Constraint::NoutStep { step }).unwrap();
        v.push(id);
    }
    let cc1 = g.add_stack("cc1", &[v[1], v[2]]).unwrap();
    let cc2 = g.add_stack("cc2", &[cc1, v[0]]).unwrap();
    let cc3 = g.add_stack("cc3", &[cc2, v[3], v[1]]).unwrap();
    let req = Request::new()
        .nout(cc3, -60)
        .with_utility(Utility::size_only());
    run(&mut g, &req);
    assert_eq!(sizes(&g, &v), [87, 86, 91, 90]);
    assert_eq!(g.nout(cc3).unwrap(), 440);
}

#[test]
fn a12_relax_to_nearest() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 4).unwrap();
    let ids: Vec<VertexId> = (0..3)
        .map(|i| g.add_invariant(&format!("id{i}"), &[v1]).unwrap())
        .collect();
    let v3 = g.add_stack("v3", &ids).unwrap();
    let (step, _) = run(&mut g, &Request::new().nout(v3, 2));
    assert_eq!(step, Step::Relaxed);
    assert_eq!(g.nout(v3).unwrap(), 15);

    // Multiples: v1 in steps of 3, v2's input in steps of 2 => +6.
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 6).unwrap();
    g.add_constraint(v1, Constraint::NoutStep { step: 3 })
        .unwrap();
    let v2 = g.add_absorb("v2", &[v1], 4).unwrap();
    g.add_constraint(v2, Constraint::NinStep { input: 0, step: 2 })
        .unwrap();
    let (step, _) = run(
        &mut g,
        &Request::new()
            .nout(v1, 2)
            .with_utility(Utility::size_only()),
    );
    assert_eq!(step, Step::Relaxed);
    assert_eq!(g.nout(v1).unwrap(), 12);
    assert_eq!(g.nin(v2).unwrap(), &[12]);
}

#[test]
fn a13_impossible_change() {
    let mut g = Graph::new();
    let v0 = g.add_input("v0", 3).unwrap();
    let l = g.add_absorb("l", &[v0], 3).unwrap();
    let i = g.add_invariant("id", &[v0]).unwrap();
    let v3 = g.add_invariant("v3", &[l, i]).unwrap();
    let before = g.clone();

    let e = g.change_sizes(&Request::new().nout(v0, 1)).unwrap_err();
    assert!(matches!(e, PlanError::NotMutable { ref vertex, .. } if vertex == "v0"));
    let e = g.change_sizes(&Request::new().nout(v3, 1)).unwrap_err();
    assert!(matches!(e, PlanError::Infeasible { ref vertices } if vertices == &["v3"]));
    let e = g
        .change_sizes(&Request::new().nin(v3, 0, 1).nin(v3, 1, 1))
        .unwrap_err();
    assert!(matches!(e, PlanError::Infeasible { .. }));
    assert_eq!(g, before);
    assert!(plan_or_relax(&g, &Request::new().nout(v3, 1)).is_err());
}

fn a25_graph() -> (Graph, VertexId, VertexId) {
    let mut g = Graph::new();
    let x = g.add_input("in", 1).unwrap();
    let v0 = g.add_absorb("v0", &[x], 1000).unwrap();
    let v1 = g.add_stack("v1", &[v0, v0, v0]).unwrap();
    let v2 = g.add_stack("v2", &[v1, v0, v1]).unwrap();
    g.add_invariant("v3", &[v2, v2]).unwrap();
    (g, v0, v1)
}

#[test]
fn a25_time_budget() {
    let (mut g, v0, v1) = a25_graph();
    // A tiny budget is a typed error and leaves the graph as it was.
    let before = g.clone();
    let tiny = Budget {
        max_nodes: 10,
        time: None,
    };
    let e = g
        .change_sizes(&Request::new().nout_relaxed(v1, -30).with_budget(tiny))
        .unwrap_err();
    assert!(matches!(e, PlanError::BudgetExceeded { .. }));
    assert_eq!(g, before);

    // The default budget solves it, visiting about one node per feasible size.
    let (step, p) = run(&mut g, &Request::new().nout_relaxed(v1, -30));
    assert_eq!(step, Step::Relaxed);
    assert!(p.nodes <= 1100, "{} nodes", p.nodes);
    assert_eq!(g.nout(v1).unwrap(), 2970);
    assert_eq!(g.nout(v0).unwrap(), 990);
    run(&mut g, &Request::new().nout(v0, -100));
    assert_eq!(g.nout(v0).unwrap(), 890);
}
