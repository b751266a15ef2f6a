//! The waiter list every primitive here is built on.
//!
//! A FIFO of waiting futures kept in a slab: each waiter owns one slot, from
//! the moment it registers until it reads its outcome or gives up. A
//! notifier unlinks the head and writes the outcome into its slot, so a
//! waiter that was notified but has not run yet can still be found — that
//! is how a cancelled waiter passes on what it was handed. Slots are reused,
//! so a warm list allocates nothing per wait; removal is O(1); no unsafe.
//!
//! Every waiter also gets a ticket, numbered in arrival order: a
//! semaphore hands permits out in ticket order, so it can publish "every
//! ticket up to N was served" in one atomic word, and its waiters learn
//! their outcome from that word without taking the lock (see
//! [`List::pop_served`]).
//!
//! The list is always used under a lock owned by the primitive. It is
//! public as [`WaitList`](crate::raw::WaitList), for primitives built
//! elsewhere (aio-queue's queues keep their waiters in two, under the lock
//! that guards their items).

use std::task::Waker;

const NIL: u32 = u32::MAX;

/// What a notifier handed a waiter. aio-sync's own primitives hand out
/// `Granted` only: their waiters that can fail (a closed semaphore's, a
/// broken barrier's) read why from their primitive's state when they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The permit, the lock, the notification: what the waiter waited for.
    Granted,
    /// Refused: what the waiter waited for will not come (a shut-down
    /// queue's waiters).
    Closed,
}

enum Slot {
    Free {
        next: u32,
    },
    Waiting {
        waker: Waker,
        prev: u32,
        next: u32,
        ticket: u64,
    },
    Notified(Outcome),
}

/// A FIFO of waiting futures kept in a slab (no allocation per wait once
/// warm, O(1) removal), each with its slot until it reads its outcome or
/// gives up; to be used under its owner's lock.
///
/// A waiter [`push`](List::push)es its waker and keeps the key; a notifier
/// [`pop`](List::pop)s the first waiter, recording an [`Outcome`] for it,
/// and wakes the returned waker once the lock is released; the waiter
/// [`poll`](List::poll)s its key to read the outcome, or
/// [`remove`](List::remove)s it when it gives up (getting back an outcome
/// it was handed but did not act on, to pass on).
///
/// # Examples
/// ```
/// use std::task::Waker;
/// use aio_sync::raw::{Outcome, WaitList};
///
/// let mut list = WaitList::new();
/// let a = list.push(Waker::noop().clone());
/// let b = list.push(Waker::noop().clone());
/// assert!(list.pop(Outcome::Granted).is_some()); // `a` is served first
/// assert_eq!(list.poll(b, Waker::noop()), None); // `b` still waits
/// assert_eq!(list.poll(a, Waker::noop()), Some(Outcome::Granted));
/// assert_eq!(list.remove(b), None); // `b` gives up, unserved
/// assert!(list.is_empty());
/// ```
pub struct List {
    slots: Vec<Slot>,
    free: u32,
    head: u32,
    tail: u32,
    len: usize,
    /// The ticket of the next waiter to queue.
    next_ticket: u64,
    /// Waiters served (popped by [`pop_served`](List::pop_served)) that
    /// have not taken their permit yet. Kept by strict semaphores only
    /// (`RawSemaphore::new_strict`), which count such a waiter as waiting.
    pub(crate) unclaimed: usize,
}

impl Default for List {
    fn default() -> List {
        List::new()
    }
}

impl std::fmt::Debug for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitList").field("len", &self.len).finish()
    }
}

impl List {
    /// An empty list; allocates nothing until a waiter queues.
    pub const fn new() -> List {
        List {
            slots: Vec::new(),
            free: NIL,
            head: NIL,
            tail: NIL,
            len: 0,
            next_ticket: 1,
            unclaimed: 0,
        }
    }

    /// How many waiters are linked (not yet notified).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no waiter is linked.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Links a new waiter at the back; returns its slot key.
    pub fn push(&mut self, waker: Waker) -> usize {
        self.push_ticketed(waker).0
    }

    /// Links a new waiter at the back; returns its slot key and its
    /// ticket (1 for the first waiter, counting up by one per waiter).
    pub(crate) fn push_ticketed(&mut self, waker: Waker) -> (usize, u64) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let slot = Slot::Waiting {
            waker,
            prev: self.tail,
            next: NIL,
            ticket,
        };
        let key = if self.free != NIL {
            let k = self.free;
            match self.slots[k as usize] {
                Slot::Free { next } => self.free = next,
                _ => unreachable!("the free list points at a used slot"),
            }
            self.slots[k as usize] = slot;
            k
        } else {
            let k = u32::try_from(self.slots.len())
                .ok()
                .filter(|&k| k != NIL)
                .expect("too many waiters");
            self.slots.push(slot);
            k
        };
        if self.tail == NIL {
            self.head = key;
        } else {
            self.set_next(self.tail, key);
        }
        self.tail = key;
        self.len += 1;
        (key as usize, ticket)
    }

    /// Unlinks the first waiter and frees its slot at once; returns its
    /// waker and its ticket. The waiter does not come back to the slot: it
    /// learns it was served from the ticket, which its primitive publishes
    /// (tickets are served in order, so "served up to this ticket" says it
    /// all).
    pub(crate) fn pop_served(&mut self) -> Option<(Waker, u64)> {
        if self.head == NIL {
            return None;
        }
        let key = self.head;
        let old = std::mem::replace(&mut self.slots[key as usize], Slot::Free { next: self.free });
        match old {
            Slot::Waiting {
                waker, next, ticket, ..
            } => {
                self.free = key;
                self.head = next;
                if next == NIL {
                    self.tail = NIL;
                } else {
                    self.set_prev(next, NIL);
                }
                self.len -= 1;
                Some((waker, ticket))
            }
            _ => unreachable!("a linked slot is not waiting"),
        }
    }

    /// The waker of the waiter with `ticket` in slot `key`, if it is still
    /// waiting there (not served: its slot may have been reused since).
    pub(crate) fn waiting_waker(&mut self, key: usize, ticket: u64) -> Option<&mut Waker> {
        match self.slots.get_mut(key) {
            Some(Slot::Waiting { waker, ticket: t, .. }) if *t == ticket => Some(waker),
            _ => None,
        }
    }

    /// Unlinks the first waiter, records `outcome` in its slot and returns
    /// its waker (to be woken once the lock is released).
    pub fn pop(&mut self, outcome: Outcome) -> Option<Waker> {
        if self.head == NIL {
            return None;
        }
        let key = self.head;
        match std::mem::replace(&mut self.slots[key as usize], Slot::Notified(outcome)) {
            Slot::Waiting { waker, next, .. } => {
                self.head = next;
                if next == NIL {
                    self.tail = NIL;
                } else {
                    self.set_prev(next, NIL);
                }
                self.len -= 1;
                Some(waker)
            }
            _ => unreachable!("a linked slot is not waiting"),
        }
    }

    /// Pops every waiter with `outcome`, collecting their wakers.
    pub fn pop_all(&mut self, outcome: Outcome, into: &mut Vec<Waker>) {
        into.reserve(self.len);
        while let Some(w) = self.pop(outcome) {
            into.push(w);
        }
    }

    /// The waiter in slot `key` looks at its state: a notified waiter gets
    /// its outcome and gives the slot back; a waiting one refreshes its
    /// waker and stays.
    pub fn poll(&mut self, key: usize, waker: &Waker) -> Option<Outcome> {
        match &mut self.slots[key] {
            Slot::Notified(o) => {
                let o = *o;
                self.release(key);
                Some(o)
            }
            Slot::Waiting { waker: w, .. } => {
                if !w.will_wake(waker) {
                    w.clone_from(waker);
                }
                None
            }
            Slot::Free { .. } => unreachable!("a waiter polled a free slot"),
        }
    }

    /// The waiter in slot `key` gives up: it is unlinked if still waiting,
    /// and the slot is freed. Returns the outcome it had been handed, if
    /// any, so the caller can pass it on.
    pub fn remove(&mut self, key: usize) -> Option<Outcome> {
        let out = match &self.slots[key] {
            Slot::Notified(o) => Some(*o),
            Slot::Waiting { prev, next, .. } => {
                let (prev, next) = (*prev, *next);
                if prev == NIL {
                    self.head = next;
                } else {
                    self.set_next(prev, next);
                }
                if next == NIL {
                    self.tail = prev;
                } else {
                    self.set_prev(next, prev);
                }
                self.len -= 1;
                None
            }
            Slot::Free { .. } => unreachable!("a waiter removed a free slot"),
        };
        self.release(key);
        out
    }

    fn release(&mut self, key: usize) {
        self.slots[key] = Slot::Free { next: self.free };
        self.free = key as u32;
    }

    fn set_next(&mut self, key: u32, to: u32) {
        match &mut self.slots[key as usize] {
            Slot::Waiting { next, .. } => *next = to,
            _ => unreachable!("a linked slot is not waiting"),
        }
    }

    fn set_prev(&mut self, key: u32, to: u32) {
        match &mut self.slots[key as usize] {
            Slot::Waiting { prev, .. } => *prev = to,
            _ => unreachable!("a linked slot is not waiting"),
        }
    }
}

/// Wakes every waker in `wakers`, leaving the vector empty.
pub fn wake_all(wakers: &mut Vec<Waker>) {
    for w in wakers.drain(..) {
        w.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn w() -> Waker {
        Waker::noop().clone()
    }

    #[test]
    fn fifo_order_and_removal_from_the_middle() {
        let mut l = List::new();
        let a = l.push(w());
        let b = l.push(w());
        let c = l.push(w());
        assert_eq!(l.len(), 3);
        assert_eq!(l.remove(b), None);
        assert_eq!(l.len(), 2);
        assert!(l.pop(Outcome::Granted).is_some());
        assert_eq!(l.poll(a, &w()), Some(Outcome::Granted));
        assert_eq!(l.poll(c, &w()), None);
        assert!(l.pop(Outcome::Granted).is_some());
        assert!(l.is_empty());
        assert_eq!(l.remove(c), Some(Outcome::Granted));
        // All slots are free again and get reused.
        let d = l.push(w());
        assert!(d <= 2);
        assert_eq!(l.remove(d), None);
        assert!(l.pop(Outcome::Granted).is_none());
    }

    #[test]
    fn removing_head_and_tail_keeps_links() {
        let mut l = List::new();
        let keys: Vec<_> = (0..5).map(|_| l.push(w())).collect();
        assert_eq!(l.remove(keys[0]), None);
        assert_eq!(l.remove(keys[4]), None);
        let mut order = Vec::new();
        while l.pop(Outcome::Granted).is_some() {}
        for &k in &keys[1..4] {
            order.push(l.remove(k));
        }
        assert_eq!(order, vec![Some(Outcome::Granted); 3]);
        assert!(l.is_empty());
    }
}
