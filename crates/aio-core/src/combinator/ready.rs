//! Per-child wakers that record which children were woken, so a combinator
//! polls only those: O(1) work per wake-up, however many children there are.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Wake, Waker};

use parking_lot::Mutex;

struct Shared {
    inner: Mutex<Inner>,
}

struct Inner {
    woken: Vec<usize>,
    parent: Option<Waker>,
}

struct ChildWaker {
    index: usize,
    queued: AtomicBool,
    shared: Arc<Shared>,
}

impl ChildWaker {
    fn enqueue(&self) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            let mut g = self.shared.inner.lock();
            g.woken.push(self.index);
            if let Some(p) = &g.parent {
                p.wake_by_ref();
            }
        }
    }
}

impl Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.enqueue();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.enqueue();
    }
}

/// The woken-children list of one combinator.
pub(crate) struct ReadySet {
    shared: Arc<Shared>,
    children: Vec<(Arc<ChildWaker>, Waker)>,
    batch: Vec<usize>,
}

impl ReadySet {
    pub(crate) fn new() -> ReadySet {
        ReadySet {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    woken: Vec::new(),
                    parent: None,
                }),
            }),
            children: Vec::new(),
            batch: Vec::new(),
        }
    }

    pub(crate) fn with_capacity(n: usize) -> ReadySet {
        let mut r = ReadySet::new();
        r.children.reserve(n);
        r.shared.inner.lock().woken.reserve(n);
        r
    }

    /// Adds a child, initially woken (so it gets its first poll). Returns its index.
    pub(crate) fn add(&mut self) -> usize {
        let index = self.children.len();
        let cw = Arc::new(ChildWaker {
            index,
            queued: AtomicBool::new(false),
            shared: self.shared.clone(),
        });
        let w = Waker::from(cw.clone());
        self.children.push((cw, w));
        self.wake(index);
        index
    }

    /// Marks child `i` woken (the combinator wants to poll it).
    pub(crate) fn wake(&self, i: usize) {
        self.children[i].0.enqueue();
    }

    /// Records the waker of the task polling the combinator.
    pub(crate) fn set_parent(&self, w: &Waker) {
        let mut g = self.shared.inner.lock();
        match &g.parent {
            Some(p) if p.will_wake(w) => {}
            _ => g.parent = Some(w.clone()),
        }
    }

    /// Takes the children woken so far. Call [`ReadySet::begin_poll`] on
    /// each before polling it, then give the batch back with
    /// [`ReadySet::recycle`].
    pub(crate) fn take(&mut self) -> Vec<usize> {
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        std::mem::swap(&mut batch, &mut self.shared.inner.lock().woken);
        batch
    }

    /// Hands back a batch's storage for reuse.
    pub(crate) fn recycle(&mut self, batch: Vec<usize>) {
        if batch.capacity() > self.batch.capacity() {
            self.batch = batch;
        }
    }

    /// Clears the child's queued flag (wakes from now on queue it again)
    /// and returns the waker to poll it with.
    pub(crate) fn begin_poll(&self, i: usize) -> &Waker {
        let (cw, w) = &self.children[i];
        cw.queued.store(false, Ordering::Release);
        w
    }

    /// The waker of child `i` (waking it marks the child woken).
    pub(crate) fn waker(&self, i: usize) -> &Waker {
        &self.children[i].1
    }
}
