//! Placeholder: filled in by the aio-queue work.
#![forbid(unsafe_code)]
