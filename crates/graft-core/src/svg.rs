//! A picture of the vertex graph as SVG, drawn without any system tool.
//!
//! Written by hand: the graph crates that lay out graphs either shell out
//! to Graphviz or pull in a large rendering stack, while a size graph needs
//! only a layered drawing. The layout is the classic one in three steps:
//!
//! 1. layers: each vertex one row below its deepest input (longest path);
//! 2. order within a row: a few downward and upward sweeps that place each
//!    vertex at the mean position of its neighbours in the row above or
//!    below (the barycentre heuristic), which removes most crossings;
//! 3. coordinates: rows are centred; edges are cubic curves from the
//!    bottom of the producer to the top of the consumer, and an edge that
//!    skips rows bends out so it does not run through the boxes between.
//!
//! Vertices a change touched are filled in a highlight colour and show
//! their size before and after.

use std::collections::HashMap;
use std::fmt::Write;

use crate::error::CheckError;
use crate::graph::{Graph, SizeKind, VertexId};

/// What to draw besides the graph itself.
#[derive(Debug, Clone, Default)]
pub struct Drawing {
    /// A title above the graph.
    pub title: Option<String>,
    /// A second label line per vertex (its op, say); the size kind if none.
    pub labels: HashMap<VertexId, String>,
    /// Vertices a change touched: size before and after.
    pub changed: HashMap<VertexId, (usize, usize)>,
}

const MIN_BOX_W: f64 = 150.0;
const BOX_H: f64 = 42.0;
const GAP_X: f64 = 30.0;
const GAP_Y: f64 = 46.0;
const MARGIN: f64 = 24.0;
/// How far beside the boxes an edge that skips rows is pulled, as a share
/// of the box width.
const SKIP_OUT: f64 = 0.35;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn fill(kind: SizeKind) -> &'static str {
    match kind {
        SizeKind::Input => "#e8f1e4",
        SizeKind::Absorb => "#dfe9f7",
        SizeKind::Stack => "#f3e6f5",
        SizeKind::Invariant => "#f2f2f2",
        SizeKind::Select => "#fff5d6",
        SizeKind::Immutable => "#e6e6e6",
    }
}

/// Rows (longest path from the inputs) and the order within each row.
fn layout(g: &Graph) -> Result<Vec<Vec<VertexId>>, CheckError> {
    let order = g.topological_order()?;
    let mut depth: HashMap<VertexId, usize> = HashMap::new();
    for &v in &order {
        let d = g
            .vertex(v)
            .map(|x| {
                x.inputs()
                    .iter()
                    .map(|i| depth.get(i).map_or(0, |d| d + 1))
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        depth.insert(v, d);
    }
    let rows_n = depth.values().max().map_or(0, |d| d + 1);
    let mut rows: Vec<Vec<VertexId>> = vec![Vec::new(); rows_n];
    for &v in &order {
        rows[depth[&v]].push(v);
    }
    // Each vertex's place in its row, updated row by row as rows are
    // reordered (recomputing every place per row was quadratic: a chain of
    // 10,000 vertices took a minute).
    let mut p: HashMap<VertexId, f64> = rows
        .iter()
        .flat_map(|r| r.iter().enumerate().map(|(i, &v)| (v, i as f64)))
        .collect();
    let mean = |xs: Vec<f64>, fallback: f64| {
        if xs.is_empty() {
            fallback
        } else {
            xs.iter().sum::<f64>() / xs.len() as f64
        }
    };
    // Order row `r` by the mean place of each vertex's neighbours.
    let reorder =
        |r: usize, rows: &mut [Vec<VertexId>], p: &mut HashMap<VertexId, f64>, down: bool| {
            let mut keyed: Vec<(f64, VertexId)> = rows[r]
                .iter()
                .map(|&v| {
                    let near = g
                        .vertex(v)
                        .map(|x| {
                            if down {
                                x.inputs().to_vec()
                            } else {
                                x.outputs().to_vec()
                            }
                        })
                        .unwrap_or_default();
                    (mean(near.iter().map(|i| p[i]).collect(), p[&v]), v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            rows[r] = keyed.into_iter().map(|(_, v)| v).collect();
            for (i, &v) in rows[r].iter().enumerate() {
                p.insert(v, i as f64);
            }
        };
    for _ in 0..4 {
        // Down: by the inputs' places; up: by the consumers'.
        for r in 1..rows.len() {
            reorder(r, &mut rows, &mut p, true);
        }
        for r in (0..rows.len().saturating_sub(1)).rev() {
            reorder(r, &mut rows, &mut p, false);
        }
    }
    Ok(rows)
}

/// The graph as an SVG document.
///
/// # Errors
/// A graph with a cycle.
pub fn to_svg(g: &Graph, d: &Drawing) -> Result<String, CheckError> {
    let rows = layout(g)?;
    // Boxes as wide as the longest name or label (about 7 px a character
    // in bold 12 px type).
    let longest = g
        .ids()
        .filter_map(|v| {
            let x = g.vertex(v).ok()?;
            let label = d.labels.get(&v).map_or(0, |l| l.chars().count() + 12);
            Some(x.name().chars().count().max(label))
        })
        .max()
        .unwrap_or(0);
    let bw = MIN_BOX_W.max(longest as f64 * 7.4 + 16.0);
    let widest = rows.iter().map(Vec::len).max().unwrap_or(1).max(1) as f64;
    let title_h = if d.title.is_some() { 30.0 } else { 0.0 };
    let legend_h = if d.changed.is_empty() { 0.0 } else { 24.0 };
    // Room for the widest row, for edges that bend out beside it, and for
    // the title and legend lines (about 8 px a character).
    let text_w = d
        .title
        .as_ref()
        .map_or(0.0, |t| t.chars().count() as f64 * 8.5);
    let legend_w = if d.changed.is_empty() { 0.0 } else { 420.0 };
    // Edges that skip rows bulge out by 3/4 of their control offset.
    let bulge = SKIP_OUT * bw * 0.75 + 12.0;
    let width = (2.0 * MARGIN + widest * bw + (widest - 1.0) * GAP_X + 2.0 * bulge)
        .max(2.0 * MARGIN + text_w)
        .max(2.0 * MARGIN + legend_w);
    let height = 2.0 * MARGIN
        + title_h
        + legend_h
        + rows.len() as f64 * BOX_H
        + rows.len().saturating_sub(1) as f64 * GAP_Y;
    // Top-left corner of every box.
    let mut at: HashMap<VertexId, (f64, f64)> = HashMap::new();
    for (r, row) in rows.iter().enumerate() {
        let row_w = row.len() as f64 * bw + (row.len() as f64 - 1.0) * GAP_X;
        let x0 = (width - row_w) / 2.0;
        let y = MARGIN + title_h + r as f64 * (BOX_H + GAP_Y);
        for (i, &v) in row.iter().enumerate() {
            at.insert(v, (x0 + i as f64 * (bw + GAP_X), y));
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="Helvetica, Arial, DejaVu Sans, sans-serif">"#
    );
    s.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\
         <path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#555\"/></marker></defs>\n",
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    if let Some(t) = &d.title {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="16" font-weight="bold" text-anchor="middle">{}</text>"#,
            width / 2.0,
            MARGIN + 12.0,
            escape(t)
        );
    }
    // Edges first, under the boxes.
    let depth_of: HashMap<VertexId, usize> = rows
        .iter()
        .enumerate()
        .flat_map(|(r, row)| row.iter().map(move |&v| (v, r)))
        .collect();
    for v in g.ids() {
        let Ok(vx) = g.vertex(v) else { continue };
        let k = vx.inputs().len();
        for (slot, &i) in vx.inputs().iter().enumerate() {
            let (sx, sy) = at[&i];
            let (tx, ty) = at[&v];
            let x1 = sx + bw / 2.0;
            let y1 = sy + BOX_H;
            // Inputs arrive side by side along the consumer's top edge.
            let x2 = tx + bw * (slot as f64 + 1.0) / (k as f64 + 1.0);
            let y2 = ty;
            let skip = depth_of[&v].saturating_sub(depth_of[&i]);
            let path = if skip <= 1 {
                let my = (y1 + y2) / 2.0;
                format!("M {x1:.1} {y1:.1} C {x1:.1} {my:.1}, {x2:.1} {my:.1}, {x2:.1} {y2:.1}")
            } else {
                // Bend out beside the rows in between, on the nearer side;
                // a cubic curve reaches about 3/4 of the way to its control
                // points, so they sit far enough out to clear the boxes.
                // It leaves the producer's box and enters the consumer's
                // from the side.
                let out = bw * SKIP_OUT;
                let (x1, x2, bx) = if sx + tx + bw < width {
                    (sx, tx, sx.min(tx) - out)
                } else {
                    (sx + bw, tx + bw, (sx + bw).max(tx + bw) + out)
                };
                let (y1, y2) = (sy + BOX_H / 2.0, ty + BOX_H / 2.0);
                format!("M {x1:.1} {y1:.1} C {bx:.1} {y1:.1}, {bx:.1} {y2:.1}, {x2:.1} {y2:.1}")
            };
            let _ = writeln!(
                s,
                r##"<path d="{path}" fill="none" stroke="#555" stroke-width="1.3" marker-end="url(#arrow)"/>"##
            );
        }
    }
    for v in g.ids() {
        let Ok(vx) = g.vertex(v) else { continue };
        let (x, y) = at[&v];
        let changed = d.changed.get(&v);
        let (fill, stroke, sw) = match changed {
            Some(_) => ("#ffd8a8", "#d9480f", 2.2),
            None => (fill(vx.kind()), "#445", 1.0),
        };
        let label = d
            .labels
            .get(&v)
            .cloned()
            .unwrap_or_else(|| vx.kind().as_str().to_string());
        let size = match changed {
            Some((a, b)) => format!("{a} → {b}"),
            None => vx.nout().to_string(),
        };
        let _ = writeln!(
            s,
            r#"<g><title>{}: {} ({}), nout {}</title><rect x="{x:.1}" y="{y:.1}" width="{bw:.0}" height="{BOX_H}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="{sw}"/>"#,
            escape(vx.name()),
            escape(&label),
            vx.kind().as_str(),
            vx.nout()
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" font-weight="bold" text-anchor="middle">{}</text>"#,
            x + bw / 2.0,
            y + 17.0,
            escape(vx.name())
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#333" text-anchor="middle">{} · {}</text></g>"##,
            x + bw / 2.0,
            y + 33.0,
            escape(&label),
            escape(&size)
        );
    }
    if !d.changed.is_empty() {
        let y = height - MARGIN - 8.0;
        let _ = writeln!(
            s,
            r##"<rect x="{MARGIN}" y="{:.1}" width="14" height="14" rx="3" fill="#ffd8a8" stroke="#d9480f"/><text x="{:.1}" y="{:.1}" font-size="12">changed by the plan ({} vertices): size before → after</text>"##,
            y - 11.0,
            MARGIN + 20.0,
            y,
            d.changed.len()
        );
    }
    s.push_str("</svg>\n");
    Ok(s)
}
