//! Context variables, asyncio's `contextvars`: the copy at `create_task`,
//! isolation between tasks, `reset` with a token, `to_thread`, callbacks
//! that see the context of their scheduling, gather / TaskGroup / shield
//! children with copies of their own, and asyncio's documented examples.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use aio_core::contextvars::{ResetError, copy_context};
use aio_core::{
    Cancelled, ContextVar, Loop, TaskGroup, create_eager_task, create_task, gather, get_running_loop, run, shield,
    sleep, to_thread, yield_now,
};

static VAR: ContextVar<&'static str> = ContextVar::new("var", "default");

#[test]
fn a_task_starts_with_a_copy_of_its_creators_context() {
    run(async {
        VAR.set("parent");
        let child = create_task(async {
            let seen = VAR.get();
            VAR.set("child");
            sleep(0).await?;
            Ok::<_, Cancelled>((seen, VAR.get()))
        });
        // Copied at create_task, not when the child first runs.
        VAR.set("parent, later");
        assert_eq!(child.await.unwrap().unwrap(), ("parent", "child"));
        assert_eq!(VAR.get(), "parent, later", "the child's set stayed in the child");
    });
}

#[test]
fn sibling_tasks_are_isolated() {
    static N: ContextVar<u32> = ContextVar::new("n", 0);
    let out = run(async {
        let tasks: Vec<_> = (1..=5u32)
            .map(|i| {
                create_task(async move {
                    N.set(i);
                    // Interleave with the others between the set and the get.
                    for _ in 0..3 {
                        yield_now().await?;
                    }
                    Ok::<_, Cancelled>(N.get())
                })
            })
            .collect();
        let mut v = Vec::new();
        for t in tasks {
            v.push(t.await.unwrap().unwrap());
        }
        (v, N.get())
    });
    assert_eq!(out, (vec![1, 2, 3, 4, 5], 0));
}

#[test]
fn a_grandchild_inherits_through_its_parent() {
    run(async {
        VAR.set("root");
        create_task(async {
            VAR.set("middle");
            create_task(async { VAR.get() }).await.unwrap()
        })
        .await
        .map(|v| assert_eq!(v, "middle"))
        .unwrap();
        assert_eq!(VAR.get(), "root");
    });
}

#[test]
fn reset_restores_the_previous_value_or_unsets() {
    run(async {
        assert_eq!(VAR.get(), "default");
        let t1 = VAR.set("one");
        assert_eq!(t1.old_value(), None, "it was not set");
        let t2 = VAR.set("two");
        assert_eq!(t2.old_value(), Some(&"one"));
        VAR.reset(&t2).unwrap();
        assert_eq!(VAR.get(), "one");
        VAR.reset(&t1).unwrap();
        assert_eq!(VAR.get(), "default");
    });
}

#[test]
fn reset_refuses_tokens_of_another_var_or_context() {
    static OTHER: ContextVar<&'static str> = ContextVar::new("other", "");
    run(async {
        let t = OTHER.set("x");
        assert_eq!(VAR.reset(&t), Err(ResetError::OtherVar));
        let token = Rc::new(VAR.set("parent"));
        // Reset in another task: the token belongs to the parent's context.
        let t2 = token.clone();
        let r = create_task(async move { VAR.reset(&t2) }).await.unwrap();
        assert_eq!(r, Err(ResetError::OtherContext));
        assert_eq!(VAR.get(), "parent");
        assert_eq!(
            ResetError::OtherContext.to_string(),
            "the token was created in a different Context"
        );
    });
}

/// asyncio: a reset refused (wrong context) leaves the token usable, so
/// the program retries where it was set; a token serves one reset
/// (`RuntimeError: Token has already been used once` after).
#[test]
fn a_refused_reset_can_be_retried_and_a_token_serves_once() {
    static V: ContextVar<u32> = ContextVar::new("v", 0);
    static W: ContextVar<u32> = ContextVar::new("w", 0);
    run(async {
        let token = V.set(1);
        let ctx = copy_context();
        assert_eq!(ctx.run(|| V.reset(&token)), Err(ResetError::OtherContext));
        assert_eq!(ctx.run(|| V.get()), 1, "a refused reset changes nothing");
        assert_eq!(W.reset(&token), Err(ResetError::OtherVar));
        V.reset(&token).unwrap();
        assert_eq!(V.get(), 0);
        assert_eq!(token.old_value(), None);
        V.set(5);
        assert_eq!(V.reset(&token), Err(ResetError::Used), "a token serves one reset");
        assert_eq!(V.get(), 5);
        assert_eq!(ResetError::Used.to_string(), "the token has already been used once");
    });
}

/// asyncio's `call_soon/call_later/call_at(cb, context=ctx)`: the
/// callbacks run in `ctx` itself, so each sees what the previous one set
/// and `ctx.run` sees the last; the caller's context is untouched. CPython
/// prints `[10, 1, 3] 2 0` for this program.
#[test]
fn callbacks_given_a_context_run_in_that_context() {
    static V: ContextVar<u32> = ContextVar::new("v", 0);
    run(async {
        let lp = get_running_loop();
        let ctx = copy_context();
        ctx.run(|| V.set(10));
        let seen = Rc::new(RefCell::new(Vec::new()));
        let cb = |n: u32| {
            let seen = seen.clone();
            move || {
                seen.borrow_mut().push(V.get());
                V.set(n);
            }
        };
        lp.call_soon_in(&ctx, cb(1));
        lp.call_later_in(0.001, &ctx, cb(2)).unwrap();
        lp.call_at_in(lp.time(), &ctx, cb(3)).unwrap();
        lp.call_soon_in(&ctx, cb(99)).cancel();
        sleep(0.01).await.unwrap();
        assert_eq!(*seen.borrow(), [10, 1, 3]);
        assert_eq!(ctx.run(|| V.get()), 2);
        assert_eq!(V.get(), 0);
        // A copy of the context is another context.
        let copy = ctx.clone();
        lp.call_soon_in(&copy, cb(4));
        sleep(0).await.unwrap();
        assert_eq!((ctx.run(|| V.get()), copy.run(|| V.get())), (2, 4));
    });
}

#[test]
fn to_thread_runs_in_a_copy_of_the_callers_context() {
    static USER: ContextVar<Option<Arc<String>>> = ContextVar::new("user", None);
    run(async {
        USER.set(Some(Arc::new("alice".into())));
        let (seen, after_set) = to_thread(|| {
            let seen = USER.get();
            USER.set(None);
            (seen, USER.get())
        })
        .await
        .unwrap();
        assert_eq!(seen.as_deref().map(String::as_str), Some("alice"));
        assert_eq!(after_set, None);
        assert_eq!(
            USER.get().as_deref().map(String::as_str),
            Some("alice"),
            "the thread's set stayed there"
        );
    });
}

#[test]
fn callbacks_see_the_context_of_their_scheduling() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    run(async move {
        let lp = get_running_loop();
        VAR.set("at call_soon");
        let l1 = l.clone();
        lp.call_soon(move || l1.borrow_mut().push(("soon", VAR.get())));
        VAR.set("at call_later");
        let l2 = l.clone();
        lp.call_later(0.001, move || {
            l2.borrow_mut().push(("later", VAR.get()));
            VAR.set("set inside a callback");
        })
        .unwrap();
        VAR.set("at call_at");
        let l3 = l.clone();
        lp.call_at(lp.time(), move || l3.borrow_mut().push(("at", VAR.get())))
            .unwrap();
        VAR.set("after scheduling");
        sleep(0.01).await?;
        assert_eq!(VAR.get(), "after scheduling", "a callback's set stays in the callback");
        Ok::<_, Cancelled>(())
    })
    .unwrap();
    assert_eq!(
        *log.borrow(),
        [
            ("soon", "at call_soon"),
            ("at", "at call_at"),
            ("later", "at call_later")
        ]
    );
}

#[test]
fn done_callbacks_see_the_context_where_they_were_added() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    run(async move {
        let t = create_task(async {
            VAR.set("inside the task");
            sleep(0.001).await
        });
        VAR.set("when added");
        let l1 = l.clone();
        t.add_done_callback(move |_| l1.borrow_mut().push(("task", VAR.get())));
        let fut = aio_core::Future::<u32>::new();
        VAR.set("when added to the future");
        let l2 = l.clone();
        fut.add_done_callback(move |_| l2.borrow_mut().push(("future", VAR.get())));
        VAR.set("later");
        fut.set_result(1).unwrap();
        t.await.unwrap()?;
        sleep(0.001).await?;
        Ok::<_, Cancelled>(())
    })
    .unwrap();
    let mut got = log.borrow().clone();
    got.sort();
    assert_eq!(got, [("future", "when added to the future"), ("task", "when added")]);
}

#[test]
fn gather_children_each_get_a_copy() {
    static N: ContextVar<u32> = ContextVar::new("n", 0);
    let out = run(async {
        N.set(10);
        let child = |add: u32| async move {
            let seen = N.get();
            N.set(seen + add);
            yield_now().await?;
            Ok::<_, Cancelled>((seen, N.get()))
        };
        let v = gather([child(1), child(2), child(3)]).await?;
        Ok::<_, Cancelled>((v, N.get()))
    })
    .unwrap();
    assert_eq!(
        out.0,
        [(10, 11), (10, 12), (10, 13)],
        "each child saw the parent's value and only its own set"
    );
    assert_eq!(out.1, 10, "the parent never saw a child's set");
}

#[test]
fn the_gather_macro_children_each_get_a_copy() {
    let out = run(async {
        VAR.set("parent");
        let a = async {
            VAR.set("a");
            yield_now().await?;
            Ok::<_, Cancelled>(VAR.get())
        };
        let b = async {
            yield_now().await?;
            Ok::<_, Cancelled>(VAR.get())
        };
        let r = aio_core::gather!(a, b).await?;
        Ok::<_, Cancelled>((r, VAR.get()))
    })
    .unwrap();
    assert_eq!(out, (("a", "parent"), "parent"));
}

#[test]
fn task_group_children_each_get_a_copy() {
    static N: ContextVar<u32> = ContextVar::new("n", 0);
    let out = run(async {
        N.set(1);
        let r = TaskGroup::run(|tg| async move {
            let a = tg.create_task(async {
                N.set(100);
                yield_now().await?;
                Ok::<_, Cancelled>(N.get())
            });
            N.set(2); // the body is the parent's code: children made later see it
            let b = tg.create_task(async {
                yield_now().await?;
                Ok::<_, Cancelled>(N.get())
            });
            let (a, b) = (a.await?, b.await?);
            Ok::<_, Cancelled>((a, b, N.get()))
        })
        .await;
        (r.unwrap(), N.get())
    });
    assert_eq!(out, ((100, 2, 2), 2));
}

#[test]
fn shield_runs_its_future_in_a_copy() {
    run(async {
        VAR.set("caller");
        let inner = shield(async {
            let seen = VAR.get();
            VAR.set("shielded");
            seen
        })
        .await
        .unwrap();
        assert_eq!(inner, "caller");
        assert_eq!(VAR.get(), "caller");
    });
}

#[test]
fn a_timeout_body_runs_in_the_callers_context() {
    run(async {
        aio_core::timeout(10, async { VAR.set("set in the body") })
            .await
            .unwrap();
        assert_eq!(VAR.get(), "set in the body", "asyncio's timeout is no task");
    });
}

#[test]
fn eager_tasks_copy_too() {
    run(async {
        VAR.set("parent");
        let t = create_eager_task(async {
            let seen = VAR.get();
            VAR.set("eager child");
            seen
        });
        assert!(t.done());
        assert_eq!(VAR.get(), "parent");
        assert_eq!(t.await.unwrap(), "parent");
    });
}

#[test]
fn the_main_task_copies_the_threads_context() {
    static T: ContextVar<u32> = ContextVar::new("t", 0);
    let token = T.set(7);
    let lp = Loop::new();
    let seen = lp
        .run_until_complete(async {
            let seen = T.get();
            T.set(8);
            seen
        })
        .unwrap();
    assert_eq!(seen, 7);
    assert_eq!(T.get(), 7, "the task's set stayed in the task");
    T.reset(&token).unwrap();
    assert_eq!(T.get(), 0);
    lp.close();
}

#[test]
fn threadsafe_calls_take_the_calling_threads_context() {
    static T: ContextVar<u32> = ContextVar::new("t", 0);
    let lp = Loop::new();
    let h = lp.handle();
    let got = lp
        .run_until_complete(async move {
            let (tx, rx) = std::sync::mpsc::channel();
            let other = std::thread::spawn(move || {
                T.set(42);
                h.call_soon_threadsafe(move || tx.send(T.get()).unwrap()).unwrap();
                let fut = h.run_coroutine_threadsafe(async { T.get() });
                fut.wait().unwrap()
            });
            let from_task = loop {
                match rx.try_recv() {
                    Ok(v) => break v,
                    Err(_) => sleep(0.001).await.unwrap(),
                }
            };
            let from_coroutine = aio_core::to_thread(move || other.join().unwrap()).await.unwrap();
            (from_task, from_coroutine, T.get())
        })
        .unwrap();
    assert_eq!(got, (42, 42, 0));
    lp.close();
}

#[test]
fn copy_context_run_keeps_its_sets() {
    static N: ContextVar<u32> = ContextVar::new("n", 0);
    N.set(1);
    let ctx = copy_context();
    ctx.run(|| {
        assert_eq!(N.get(), 1);
        N.set(2);
    });
    assert_eq!(N.get(), 1);
    assert_eq!(ctx.run(|| N.get()), 2, "the context kept the set");
    let copy = ctx.clone();
    copy.run(|| N.set(3));
    assert_eq!(ctx.run(|| N.get()), 2);
}

#[test]
fn values_that_are_not_clone_are_borrowed_with_with() {
    struct Conn {
        id: u32,
    }
    static CONN: ContextVar<Option<Conn>> = ContextVar::new("conn", None);
    run(async {
        CONN.set(Some(Conn { id: 3 }));
        let id = create_task(async { CONN.with(|c| c.as_ref().map(|c| c.id)) })
            .await
            .unwrap();
        assert_eq!(id, Some(3));
    });
}

#[test]
fn a_var_in_a_struct_is_distinct_from_one_of_the_same_name() {
    let a = ContextVar::new("same", 0u8);
    let b = ContextVar::new("same", 0u8);
    let _ = a.set(1);
    assert_eq!((a.get(), b.get()), (1, 0));
    assert_eq!(a.name(), "same");
}

/// asyncio's documentation example: a server keeps the client's address in
/// a context variable, and a helper deep in the call stack reads it with
/// no parameter passed down.
#[test]
fn asyncio_docs_client_addr_example() {
    static CLIENT_ADDR: ContextVar<&'static str> = ContextVar::new("client_addr", "?");

    fn render_goodbye() -> String {
        // The address of the client being served, without passing it
        // down explicitly.
        format!("Good bye, client @ {}", CLIENT_ADDR.get())
    }

    async fn handle_request(addr: &'static str, delay: f64) -> aio_core::Result<String> {
        CLIENT_ADDR.set(addr);
        sleep(delay).await?; // other clients are served meanwhile
        Ok(render_goodbye())
    }

    let out = run(async {
        let a = create_task(handle_request("127.0.0.1:5001", 0.02));
        let b = create_task(handle_request("127.0.0.1:5002", 0.01));
        Ok::<_, Cancelled>((a.await.unwrap()?, b.await.unwrap()?))
    })
    .unwrap();
    assert_eq!(
        out,
        (
            "Good bye, client @ 127.0.0.1:5001".to_string(),
            "Good bye, client @ 127.0.0.1:5002".to_string()
        )
    );
}
