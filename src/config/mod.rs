//! The one TOML file that configures the daemon, parsed once and validated once.
//!
//! Each stage owns the struct of its own section (`[source]`, `[model]`, `[select]`, `[store]`,
//! ...) next to its code, with serde defaults documented on the fields; this module composes them,
//! reads the file, and turns every problem into a [`ConfigError`] that names the key.
//!
//! Architecture invariant: no other module reads the config file or the environment.

mod error;

pub use error::{check_range, ConfigError};
