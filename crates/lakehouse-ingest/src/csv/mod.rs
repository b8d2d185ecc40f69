//! The CSV pipeline, the format most bodies come in and the one read by hand for speed:
//! - [`infer`]: the first pass, on several threads while the body arrives: where records end, their
//!   structure, and the kinds of their values (the rules in [`crate::infer`]);
//! - `decode`: the second pass, records into Arrow columns of the reconciled types;
//! - `records`: plain records split into their fields without csv_core, for both passes.

pub(crate) mod decode;
pub mod infer;
pub(crate) mod records;
