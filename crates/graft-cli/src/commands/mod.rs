//! One module per group of subcommands; each returns the text to print.

pub mod edit;
pub mod inspect;
pub mod prune;
pub mod resize;
pub mod structure;
