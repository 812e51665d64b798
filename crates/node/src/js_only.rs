//! State only the JS thread touches, without a lock.
//!
//! A delivery of completions to JavaScript took and released about twenty
//! uncontended mutexes (the JS state, the scratch vectors, the deferred
//! settlements, the weak tokens), and their atomic operations were most of
//! the binding's time in a 64 B ping-pong. The JS thread is the only one
//! that uses that state: napi calls, the threadsafe function's callback and
//! the env's cleanup hook all run on it. [`JsOnly`] holds such state in a
//! `RefCell` and checks, without an atomic operation, that it is on that
//! thread.

use std::cell::{RefCell, RefMut};

thread_local! {
    /// Its address tells threads apart (no atomic operation, unlike
    /// `std::thread::current`).
    static MARK: u8 = const { 0 };
}

fn thread_mark() -> usize {
    MARK.with(|m| m as *const u8 as usize)
}

/// A value used only on the thread that made it (the JS thread).
pub(crate) struct JsOnly<T> {
    cell: RefCell<T>,
    owner: usize,
}

// SAFETY: every access goes through `get`, which panics on any thread but
// the one that made the value, so its RefCell is never touched by two
// threads; `T: Send` lets the value be dropped by whichever thread drops
// the last reference to its owner (nothing else uses it then).
unsafe impl<T: Send> Sync for JsOnly<T> {}

impl<T> JsOnly<T> {
    /// Made on the JS thread, which alone may use it.
    pub(crate) fn new(value: T) -> JsOnly<T> {
        JsOnly {
            cell: RefCell::new(value),
            owner: thread_mark(),
        }
    }

    /// The value, borrowed until the guard drops. Panics off the JS thread,
    /// or when it is already borrowed (where a mutex would deadlock).
    pub(crate) fn get(&self) -> RefMut<'_, T> {
        assert_eq!(
            thread_mark(),
            self.owner,
            "ringline: JS-thread state used on another thread"
        );
        self.cell.borrow_mut()
    }
}
