//! Vector index requests and responses.
