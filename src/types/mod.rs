//! The `Key` and `Value` traits (redb's shape) and their implementations.

mod composite;
mod meta;
mod primitive;
mod traits;

pub use traits::{Key, MutInPlaceValue, TypeName, Value};

pub use meta::TableMeta;
pub(crate) use meta::{TypedMeta, comparator, resolve};
