//! The SVG drawing of a size graph: every vertex a box with its name, every
//! edge an arrow, changed vertices highlighted with their sizes.

use std::collections::HashMap;

use graft_core::svg::{to_svg, Drawing};
mod common;

use common::residual_concat;
use graft_core::{Graph, Request};

/// The shared residual block, with a vertex whose name needs escaping.
fn graph() -> Graph {
    let mut g = residual_concat();
    let head = g.id("head").unwrap();
    g.add_absorb("tail<&>", &[head], 2).unwrap();
    g
}

#[test]
fn every_vertex_and_edge_is_drawn() {
    let g = graph();
    let svg = to_svg(&g, &Drawing::default()).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for name in ["x", "stem", "b1", "b2", "cat", "add", "head"] {
        assert_eq!(svg.matches(&format!(">{name}</text>")).count(), 1, "{name}");
    }
    // Names are escaped.
    assert!(svg.contains(">tail&lt;&amp;&gt;</text>"));
    // 9 edges: stem, b1, b2, cat (2), add (2), head, tail.
    assert_eq!(svg.matches("marker-end").count(), 9);
    assert!(!svg.contains("changed by the plan"));
}

#[test]
fn a_plan_is_highlighted_with_sizes() {
    let g = graph();
    let b2 = g.id("b2").unwrap();
    let p = graft_core::plan(&g, &Request::new().nout(b2, -2)).unwrap();
    let changed: HashMap<_, _> = p
        .changes
        .iter()
        .filter(|c| c.nout_before != c.nout_after)
        .map(|c| (c.vertex, (c.nout_before, c.nout_after)))
        .collect();
    let n = changed.len();
    assert!(n >= 2);
    let d = Drawing {
        title: Some("plan: b2 -2".into()),
        labels: HashMap::new(),
        changed,
    };
    let svg = to_svg(&g, &d).unwrap();
    assert!(svg.contains(&format!("changed by the plan ({n} vertices)")));
    assert!(svg.contains("4 → 2"));
    assert_eq!(svg.matches("#ffd8a8").count(), n + 1, "boxes and legend");
    assert!(svg.contains(">plan: b2 -2</text>"));
}
