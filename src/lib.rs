//! binclass: the Keras "first machine-learning experiment" on libtorch.
//!
//! Pipeline, one module a stage: [`config`] → [`data`] → [`model`] (and
//! [`batched`]) → [`fit`], observed by [`callbacks`]; the commands in
//! [`cli`] sit on top. ARCHITECTURE.md has the map.

pub mod batched;
pub mod callbacks;
pub mod checkpoint;
pub mod cli;
pub mod compare;
pub mod config;
pub mod data;
pub mod device;
pub mod embedded;
pub mod failure;
pub mod fit;
pub mod grid;
pub mod inference;
pub mod interrupt;
pub mod keras_csv;
pub mod layout;
pub mod manifest;
pub mod memory;
pub mod merge;
pub mod model;
pub mod model_file;
pub mod optim;
pub mod outputs;
pub mod parity;
pub mod points;
pub mod predict;
pub mod reproduce;
pub mod rng;
pub mod shard;
pub mod stats;
pub mod sweep;
pub mod tfevents;
pub mod training;
