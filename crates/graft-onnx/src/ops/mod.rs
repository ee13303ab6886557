//! The op registry: each family registers the ONNX op types it imports.

use std::collections::HashMap;

use crate::error::OnnxError;
use crate::import::{Ctx, Node};

mod activation;
mod control;
mod conv;
mod elementwise;
mod linear;
mod norm;
mod pool;
mod recurrent;
mod shape;
pub(crate) mod view;

/// Imports one node into the context.
pub(crate) type Importer = fn(&mut Ctx, &Node) -> Result<(), OnnxError>;

/// Every supported ONNX op type.
pub(crate) fn registry() -> HashMap<&'static str, Importer> {
    let mut r: HashMap<&'static str, Importer> = HashMap::new();
    linear::register(&mut r);
    conv::register(&mut r);
    norm::register(&mut r);
    activation::register(&mut r);
    elementwise::register(&mut r);
    pool::register(&mut r);
    shape::register(&mut r);
    view::register(&mut r);
    recurrent::register(&mut r);
    control::register(&mut r);
    r
}
