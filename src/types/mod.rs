//! The `Key` and `Value` traits (redb's shape) and their implementations.

mod composite;
mod primitive;
mod registry;
mod traits;

pub use traits::{Key, TypeName, Value};

pub(crate) use registry::{TableMeta, comparator, register, resolve};
