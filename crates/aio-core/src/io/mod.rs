//! I/O operations, defined once and executed by every driver.
//!
//! An [`Operation`] owns the memory a system call uses (buffers, address
//! storage) and describes the call as a [`RawOp`]; [`submit`] runs it on
//! the loop's I/O driver: aio-poll tries the call at once and waits for
//! readiness when it would block, aio-uring submits it to the kernel. A
//! network or pipe type built on these (aio-net) never names epoll or
//! io_uring.

pub(crate) mod buf;
mod calls;
pub(crate) mod file;
pub(crate) mod future;
pub(crate) mod multi;
pub(crate) mod ops;
pub(crate) mod raw;
pub(crate) mod registered;

pub use buf::{BufResult, IoBuf, IoBufMut};
pub use calls::{deregister, is_completion_based, register, try_op};
pub use file::{
    Fsync, Ftruncate, Getdents, MkdirAt, OpenAt, RenameAt, SendFile, Splice, Statx, UnlinkAt, c_path, set_nonblocking,
};
pub use future::{OpFuture, submit, submit_shielded};
pub use multi::{AcceptStream, RecvStream};
pub use ops::{
    Accept, Close, Connect, Operation, PeerAddr, PollReady, Read, Recv, RecvFrom, Send, SendTo, Shutdown, Write,
};
pub use raw::{Interest, RawOp};
pub use registered::{Borrowed, Registered};
