//! Placeholder: filled in by the aio-sync work.
#![forbid(unsafe_code)]
