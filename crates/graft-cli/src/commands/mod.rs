//! One module per group of subcommands; each returns the text to print.

pub mod demo;
pub mod draw;
pub mod edit;
pub mod inspect;
pub mod prune;
pub mod resize;
pub mod run;
pub mod sparsify;
pub mod structure;
pub mod train;
