//! x
pub use aio_core::*;
