//! Instances on this node: specs from the panel, their containers, install, power,
//! console and crash detection.

pub mod config_files;
