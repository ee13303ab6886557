//! The op registry: each family registers the ONNX op types it imports.

use std::collections::HashMap;

use crate::error::OnnxError;
use crate::import::{Ctx, Node};

pub(crate) mod activation;
pub(crate) mod attention;
pub(crate) mod axes;
mod control;
pub(crate) mod conv;
pub(crate) mod linear;
pub(crate) mod norm;
pub(crate) mod parts;
pub(crate) mod pointwise;
pub(crate) mod pool;
pub(crate) mod recurrent;
pub(crate) mod resize;
pub(crate) mod routing;
pub(crate) mod shape;
pub(crate) mod view;

/// Imports one node into the context.
pub(crate) type Importer = fn(&mut Ctx, &Node) -> Result<(), OnnxError>;

/// Every supported ONNX op type.
pub(crate) fn registry() -> HashMap<&'static str, Importer> {
    let mut r: HashMap<&'static str, Importer> = HashMap::new();
    linear::register(&mut r);
    attention::register(&mut r);
    conv::register(&mut r);
    norm::register(&mut r);
    activation::register(&mut r);
    pointwise::register(&mut r);
    axes::register(&mut r);
    parts::register(&mut r);
    pool::register(&mut r);
    shape::register(&mut r);
    view::register(&mut r);
    recurrent::register(&mut r);
    routing::register(&mut r);
    resize::register(&mut r);
    control::register(&mut r);
    r
}
