//! How a task can end without a value ([`TaskError`]) and a caught panic
//! ([`Panic`]). Plain data.

use std::any::Any;
use std::fmt;

use crate::cancel::scope::Cancelled;

/// A panic payload, as `std::panic::catch_unwind` returns it.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// Why a task has no value: it was cancelled, or it panicked — or its
/// result was already taken.
pub enum TaskError {
    /// The task was cancelled (asyncio's `CancelledError`).
    Cancelled(Cancelled),
    /// The task's future panicked; the loop caught it and kept running.
    Panicked(Panic),
    /// The result was already taken, by an earlier await of the `Task` or
    /// [`Task::result`](crate::Task::result). (asyncio returns the same result again: await
    /// `&task`, or call [`Task::cloned_result`](crate::Task::cloned_result), to read it any number of
    /// times when it is `Clone`.)
    Retrieved,
}

impl Clone for TaskError {
    /// A panic's payload cannot be cloned: the copy carries its message.
    fn clone(&self) -> TaskError {
        match self {
            TaskError::Cancelled(c) => TaskError::Cancelled(c.clone()),
            TaskError::Panicked(p) => TaskError::Panicked(Panic {
                payload: Box::new(p.message().unwrap_or("(a panic with a non-string payload)").to_owned()),
            }),
            TaskError::Retrieved => TaskError::Retrieved,
        }
    }
}

impl TaskError {
    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled(_))
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskError::Panicked(_))
    }

    /// The panic, if the task panicked.
    pub fn into_panic(self) -> Option<Panic> {
        match self {
            TaskError::Panicked(p) => Some(p),
            TaskError::Cancelled(_) | TaskError::Retrieved => None,
        }
    }
}

impl From<Cancelled> for TaskError {
    fn from(c: Cancelled) -> TaskError {
        TaskError::Cancelled(c)
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled(c) => fmt::Debug::fmt(c, f),
            TaskError::Panicked(p) => f.debug_tuple("Panicked").field(&p.message().unwrap_or("..")).finish(),
            TaskError::Retrieved => f.write_str("Retrieved"),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled(c) => fmt::Display::fmt(c, f),
            TaskError::Panicked(p) => write!(f, "task panicked: {p}"),
            TaskError::Retrieved => f.write_str("the task's result was already taken"),
        }
    }
}

impl std::error::Error for TaskError {}

/// The payload of a caught panic.
pub struct Panic {
    payload: Payload,
}

impl From<Payload> for Panic {
    fn from(payload: Payload) -> Panic {
        Panic { payload }
    }
}

impl Panic {
    /// The panic message, when the payload is a string (as `panic!` makes it).
    pub fn message(&self) -> Option<&str> {
        if let Some(s) = self.payload.downcast_ref::<&'static str>() {
            Some(s)
        } else {
            self.payload.downcast_ref::<String>().map(String::as_str)
        }
    }

    /// The raw payload.
    pub fn into_payload(self) -> Box<dyn Any + Send + 'static> {
        self.payload
    }

    /// Continues unwinding with this panic on the current thread.
    pub fn resume(self) -> ! {
        std::panic::resume_unwind(self.payload)
    }
}

impl fmt::Debug for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Panic").field(&self.message().unwrap_or("..")).finish()
    }
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message().unwrap_or("(a panic with a non-string payload)"))
    }
}
