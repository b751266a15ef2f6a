//! The errors of queue operations. Each gives back the item it could not
//! put.

use std::fmt;

use aio_core::Cancelled;

/// Why [`put_nowait`](crate::Queue::put_nowait) failed; the item comes
/// back.
#[derive(Clone, PartialEq, Eq)]
pub enum TryPutError<T> {
    /// The queue is at `maxsize` (asyncio's `QueueFull`).
    Full(T),
    /// The queue was shut down (asyncio's `QueueShutDown`).
    ShutDown(T),
}

impl<T> TryPutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(t) | TryPutError::ShutDown(t) => t,
        }
    }

    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TryPutError::Full(_))
    }

    /// Whether the queue was shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, TryPutError::ShutDown(_))
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("Full(..)"),
            TryPutError::ShutDown(_) => f.write_str("ShutDown(..)"),
        }
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("the queue is full"),
            TryPutError::ShutDown(_) => f.write_str("the queue is shut down"),
        }
    }
}

impl<T> std::error::Error for TryPutError<T> {}

/// Why [`get_nowait`](crate::Queue::get_nowait) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryGetError {
    /// Nothing to take (asyncio's `QueueEmpty`). Items promised to tasks
    /// already waiting in `get` do not count.
    Empty,
    /// The queue was shut down and holds nothing more (asyncio's
    /// `QueueShutDown`).
    ShutDown,
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Empty => f.write_str("the queue is empty"),
            TryGetError::ShutDown => f.write_str("the queue is shut down"),
        }
    }
}

impl std::error::Error for TryGetError {}

/// Why [`put`](crate::Queue::put) failed.
#[derive(Clone, PartialEq, Eq)]
pub enum PutError<T> {
    /// The queue was shut down before the item could be put (asyncio's
    /// `QueueShutDown`); the item comes back.
    ShutDown(T),
    /// The task was cancelled while it waited for room; the item comes
    /// back, not put (asyncio's caller still holds what it tried to put;
    /// here the future owned it). Only a future that is dropped drops its
    /// item.
    Cancelled(Cancelled, T),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::ShutDown(t) | PutError::Cancelled(_, t) => t,
        }
    }

    /// Whether the queue was shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, PutError::ShutDown(_))
    }

    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, PutError::Cancelled(..))
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::ShutDown(_) => f.write_str("ShutDown(..)"),
            PutError::Cancelled(c, _) => f.debug_tuple("Cancelled").field(c).finish_non_exhaustive(),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::ShutDown(_) => f.write_str("the queue is shut down"),
            PutError::Cancelled(c, _) => fmt::Display::fmt(c, f),
        }
    }
}

impl<T> std::error::Error for PutError<T> {}

/// Why [`get`](crate::Queue::get) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetError {
    /// The queue was shut down and holds nothing more (asyncio's
    /// `QueueShutDown`).
    ShutDown,
    /// The task was cancelled while it waited for an item.
    Cancelled(Cancelled),
}

impl GetError {
    /// Whether the queue was shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, GetError::ShutDown)
    }

    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, GetError::Cancelled(_))
    }
}

impl From<Cancelled> for GetError {
    fn from(c: Cancelled) -> GetError {
        GetError::Cancelled(c)
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::ShutDown => f.write_str("the queue is shut down"),
            GetError::Cancelled(c) => fmt::Display::fmt(c, f),
        }
    }
}

impl std::error::Error for GetError {}

/// [`task_done`](crate::Queue::task_done) was called more times than
/// items were put: asyncio's `ValueError('task_done() called too many
/// times')`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

impl std::error::Error for TaskDoneError {}
