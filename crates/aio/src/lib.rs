//! aio: asyncio's programming model in Rust (facade; filled in below).
#![forbid(unsafe_code)]

pub use aio_core::*;
pub use aio_macros::{main, test};

#[cfg(feature = "sync")]
pub use aio_sync::*;

#[cfg(feature = "queue")]
pub use aio_queue::*;
