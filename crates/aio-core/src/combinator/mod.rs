//! Combinators over several futures or tasks, each doing O(1) work per
//! wake-up: `gather`, `gather_settled`, `wait`, `as_completed`, `timeout`,
//! `shield` and `TaskGroup`.

mod as_completed;
mod gather;
mod group;
mod ready;
mod shield;
mod timeout;
mod wait;

pub use as_completed::{AsCompleted, AsCompletedTimeout, Next, as_completed};
pub use gather::{Join, gather, gather_settled};
#[doc(hidden)]
pub use gather::{Kids, MaybeDone, TupleFailFast, TupleSettled, VecFailFast, VecSettled, maybe_done};
pub use group::{Failure, GroupRun, GroupTask, TaskGroup, TaskGroupError};
pub use shield::{Shield, shield};
pub use timeout::{RescheduleError, Timeout, TimeoutError, TimeoutHandle, timeout, timeout_at, timeout_with, wait_for};
pub use wait::{ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, ReturnWhen, TaskOutput, Wait, WaitError, wait};
