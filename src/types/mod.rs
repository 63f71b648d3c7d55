//! The `Key` and `Value` traits (redb's shape) and their implementations.

mod composite;
mod meta;
mod primitive;
mod traits;

pub use traits::{Key, TypeName, Value};

pub(crate) use meta::{TableMeta, comparator, resolve};
