//! berth-compose: the Compose Specification's file format, read into a
//! normalised model ([`model::Project`]). No I/O beyond reading the files; the
//! CLI runs the project against berthd.

pub mod model;

pub use model::*;
