//! `TaskOutput`: what a task's output says about failure, for
//! [`wait`](crate::wait)`(.., FIRST_EXCEPTION)` and for the report of a
//! detached task that failed ("Task exception was never retrieved").

use std::fmt;

/// What aio needs to know of a task's output: whether it is a failure
/// (asyncio's exception is Rust's `Err`) and how to describe one.
///
/// [`create_task`](crate::create_task) requires it (through
/// [`Reportable`]), so that a task whose handle was dropped (detached) and
/// that returns an `Err` is reported to the loop's exception handler, as
/// asyncio logs "Task exception was never retrieved". It is implemented
/// for `Result<V, E>` with `E: Debug` (an `Err` is a failure, shown with
/// its `Debug`) and for the standard types that cannot fail — `()`,
/// numbers, strings, collections, tuples. For an output type of your own,
/// one line says it never fails:
///
/// ```
/// struct Stats { hits: u64 }
/// impl aio_core::TaskOutput for Stats {}
///
/// aio_core::run(async {
///     let t = aio_core::create_task(async { Stats { hits: 3 } });
///     assert_eq!(t.await.unwrap().hits, 3);
/// });
/// ```
pub trait TaskOutput {
    /// Whether this output is a failure.
    fn is_failure(&self) -> bool {
        false
    }

    /// How the report of a failed output describes it (the error's
    /// `Debug` for a `Result`); `None`: the report says only that it
    /// failed.
    fn describe_failure(&self) -> Option<String> {
        None
    }
}

/// A task output aio can check for failure: every [`TaskOutput`], and `!`
/// (the output of a body that never returns — a `loop` without `break`, a
/// `panic!` — which edition 2024 keeps as `!` instead of `()`). Implemented
/// here only: implement [`TaskOutput`] for a type of your own.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a task output: it does not implement `TaskOutput`",
    label = "the task's output is `{Self}`",
    note = "for a type of your own, `impl aio::TaskOutput for {Self} {{}}` says it never fails",
    note = "a `Result`'s error type must implement `Debug` (the report of a detached task that failed shows it)"
)]
pub trait Reportable: sealed::Sealed {
    /// The description of this output if it is a failure.
    #[doc(hidden)]
    fn failure(&self) -> Option<String>;
}

mod sealed {
    pub trait Sealed {}
}

impl<T: TaskOutput> sealed::Sealed for T {}

impl<T: TaskOutput> Reportable for T {
    fn failure(&self) -> Option<String> {
        self.is_failure().then(|| {
            self.describe_failure()
                .unwrap_or_else(|| "(an output that is a failure)".into())
        })
    }
}

/// Names `!` on stable Rust (the return type of `fn() -> !`).
pub trait NeverOutput {
    /// The return type of `fn() -> T`.
    type Output;
}

impl<T> NeverOutput for fn() -> T {
    type Output = T;
}

/// `!`, which no value has.
type Never = <fn() -> ! as NeverOutput>::Output;

// On `Reportable`, which only this crate implements: on `TaskOutput`, the
// projection would make every downstream `impl TaskOutput for X` conflict
// with it (coherence there cannot see that it is `!`).
impl sealed::Sealed for Never {}

impl Reportable for Never {
    fn failure(&self) -> Option<String> {
        match *self {}
    }
}

impl<V, E: fmt::Debug> TaskOutput for Result<V, E> {
    fn is_failure(&self) -> bool {
        self.is_err()
    }

    fn describe_failure(&self) -> Option<String> {
        self.as_ref().err().map(|e| format!("{e:?}"))
    }
}

macro_rules! never_fails {
    ($($t:ty),* $(,)?) => {$( impl TaskOutput for $t {} )*};
}
never_fails!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    &'static str,
    std::borrow::Cow<'static, str>,
    std::path::PathBuf,
    std::ffi::OsString,
    std::time::Duration,
    std::time::Instant,
    std::time::SystemTime,
    std::convert::Infallible,
    std::cmp::Ordering,
    std::process::ExitStatus,
    std::process::Output,
    std::net::SocketAddr,
    std::net::IpAddr,
);

macro_rules! never_fails_generic {
    ($($t:ty => [$($p:tt)*]),* $(,)?) => {$( impl<$($p)*> TaskOutput for $t {} )*};
}
never_fails_generic!(
    Option<T> => [T],
    Vec<T> => [T],
    std::collections::VecDeque<T> => [T],
    std::collections::HashMap<K, V, S> => [K, V, S],
    std::collections::HashSet<T, S> => [T, S],
    std::collections::BTreeMap<K, V> => [K, V],
    std::collections::BTreeSet<T> => [T],
    Box<T> => [T: ?Sized],
    std::rc::Rc<T> => [T: ?Sized],
    std::sync::Arc<T> => [T: ?Sized],
    std::marker::PhantomData<T> => [T: ?Sized],
    [T; N] => [T, const N: usize],
    crate::Task<T> => [T],
    crate::Future<T> => [T],
);

macro_rules! never_fails_tuples {
    ($(($($n:ident),+)),* $(,)?) => {$( impl<$($n),+> TaskOutput for ($($n,)+) {} )*};
}
never_fails_tuples!(
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F),
    (A, B, C, D, E, F, G),
    (A, B, C, D, E, F, G, H),
);
