//! Placeholder module: filled by the datasets work.
