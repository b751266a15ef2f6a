//! What a loop reports to its exception handler (asyncio's context dict),
//! the default handler, and debug mode's warnings. Plain data.

use std::fmt;
use std::rc::Rc;

use crate::task::error::Panic;

/// What a loop reports to its exception handler: asyncio's context dict.
#[derive(Debug, Default)]
pub struct ExceptionContext {
    /// What happened.
    pub message: String,
    /// The name of the task concerned, if any.
    pub task: Option<String>,
    /// The panic, when one caused the report.
    pub panic: Option<Panic>,
    /// The error, when a task's output that nobody read was one (its
    /// `Debug`, see [`TaskOutput`](crate::TaskOutput)).
    pub error: Option<String>,
}

impl fmt::Display for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(t) = &self.task {
            write!(f, " (task {t:?})")?;
        }
        if let Some(p) = &self.panic {
            write!(f, ": {p}")?;
        }
        if let Some(e) = &self.error {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

pub(crate) type ExceptionHandler = Rc<dyn Fn(&ExceptionContext)>;

/// A debug-mode warning: a `log` record at `warn` when a logger takes
/// it, else a line on stderr (a program without a logger still sees it).
pub(crate) fn debug_warning(args: fmt::Arguments<'_>) {
    if log::log_enabled!(log::Level::Warn) {
        log::warn!("aio: {args}");
    } else {
        eprintln!("aio: {args}");
    }
}

/// The default exception handler: one line on stderr.
pub fn default_exception_handler(ctx: &ExceptionContext) {
    eprintln!("aio: {ctx}");
}
