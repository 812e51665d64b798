//! The blocking lane every engine has: a small pool of threads running
//! blocking syscalls. The mio engine runs all its file ops here (`open`,
//! `pread`, `pwritev`, `fdatasync`, `statx`, ...); the io_uring engine the
//! calls that have no opcode ([`crate::op::BlockingCall`]). What each op
//! does is in [`run`] (file ops) and [`calls`] (the blocking calls).
//!
//! A job is one op, or a link chain of ops run in order: when one of them
//! fails or comes up short, the rest complete with `-ECANCELED`, as
//! `IOSQE_IO_LINK` does on io_uring. Results go to the `done` queue, and the
//! engine's waker is rung when that queue goes from empty to non-empty.

pub(crate) mod calls;
pub(crate) mod run;

use crate::engine::Notify;
use crate::op::{Cqe, Op};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, RwLock};

/// One op of a job, with its user data.
#[derive(Clone, Copy)]
pub(crate) struct Step {
    pub user_data: u64,
    pub op: Op,
    /// Linked with [`crate::op::Link::Always`]: the next step runs even if
    /// this one fails or comes up short.
    pub always: bool,
}

// SAFETY: the pointers in an Op point into the driver's slab entries, which
// stay allocated until the op's completion is reaped (Engine::push's
// contract); the job moves them to a pool thread and back, never aliasing.
unsafe impl Send for Step {}

/// A chain of ops on (at most) one file descriptor.
pub(crate) struct Job {
    pub steps: Vec<Step>,
    /// The descriptor the job uses, for cancel-by-file and deferred closes.
    pub fd: Option<i32>,
    /// The job writes, syncs or truncates `fd`: such jobs on one file run
    /// one at a time in submission order (io_uring's io-wq does the same
    /// for writes to one file), so appends land in the order they were
    /// made. Reads run in parallel.
    pub serial: bool,
}

struct Queue {
    jobs: VecDeque<Job>,
    /// Jobs being run: their descriptor (a close of it waits) and whether
    /// they are serial.
    running: Vec<(Option<i32>, bool)>,
    stop: bool,
    /// Threads started.
    spawned: usize,
}

/// Completions made by pool threads, for the engine to reap.
pub(crate) struct Done {
    pub cqes: Mutex<Vec<Cqe>>,
    /// Rung when `cqes` goes from empty to non-empty and no `notify` is set.
    pub wake: Box<dyn Fn() + Send + Sync>,
    /// Called instead of `wake` when set (Engine::set_notify).
    pub notify: RwLock<Option<Notify>>,
}

pub(crate) struct Pool {
    queue: Mutex<Queue>,
    ready: Condvar,
    done: Arc<Done>,
    /// The most threads the pool starts.
    threads: usize,
}

impl Pool {
    pub fn new(threads: usize, done: Arc<Done>) -> Arc<Pool> {
        Arc::new(Pool {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                running: Vec::new(),
                stop: false,
                spawned: 0,
            }),
            ready: Condvar::new(),
            done,
            threads: threads.max(1),
        })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Queues jobs, starting threads while more jobs wait than threads are
    /// free, up to the limit: a ring that never touches a file costs no
    /// thread, and one that keeps 2 reads in flight costs 2.
    pub fn submit(self: &Arc<Self>, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let n = jobs.len();
        let (first, grow) = {
            let mut q = lock(&self.queue);
            q.jobs.extend(jobs);
            // Threads not running a job are idle or about to be (a thread
            // leaves `running` before it posts its completions): at one op
            // in flight the same thread takes every job.
            let free = q.spawned - q.running.len();
            let short = q.jobs.len().saturating_sub(free);
            let grow = short.min(self.threads - q.spawned);
            q.spawned += grow;
            (q.spawned - grow, grow)
        };
        for i in first..first + grow {
            let pool = self.clone();
            let started = std::thread::Builder::new()
                .name(format!("ringline-fs-{i}"))
                .spawn(move || pool.work());
            if started.is_err() {
                lock(&self.queue).spawned -= 1;
            }
        }
        if lock(&self.queue).spawned == 0 {
            // Not even one thread: run the jobs here rather than never.
            while let Some(job) = lock(&self.queue).jobs.pop_front() {
                self.finish(run(&job));
            }
            return;
        }
        if n == 1 {
            self.ready.notify_one();
        } else {
            self.ready.notify_all();
        }
    }

    /// Removes queued (not yet started) jobs that `hit` selects; returns
    /// them so their ops can complete with `-ECANCELED`.
    pub fn take_queued(&self, mut hit: impl FnMut(&Job) -> bool) -> Vec<Job> {
        let mut q = lock(&self.queue);
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(q.jobs.len());
        while let Some(j) = q.jobs.pop_front() {
            if hit(&j) {
                taken.push(j);
            } else {
                kept.push_back(j);
            }
        }
        q.jobs = kept;
        taken
    }

    /// Whether a job on `fd` is queued or running.
    pub fn uses(&self, fd: i32) -> bool {
        let q = lock(&self.queue);
        q.running.iter().any(|r| r.0 == Some(fd)) || q.jobs.iter().any(|j| j.fd == Some(fd))
    }

    fn work(&self) {
        loop {
            let job = {
                let mut q = lock(&self.queue);
                loop {
                    if q.stop {
                        return;
                    }
                    if let Some(j) = next_job(&mut q) {
                        q.running.push((j.fd, j.serial));
                        break j;
                    }
                    q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
                }
            };
            let cqes = run(&job);
            {
                let mut q = lock(&self.queue);
                if let Some(i) = q.running.iter().position(|r| *r == (job.fd, job.serial)) {
                    q.running.swap_remove(i);
                }
            }
            self.finish(cqes);
        }
    }

    fn finish(&self, cqes: Vec<Cqe>) {
        let was_empty = {
            let mut d = lock(&self.done.cqes);
            let e = d.is_empty();
            d.extend(cqes);
            e
        };
        if was_empty {
            let notify = self.done.notify.read().unwrap_or_else(|p| p.into_inner());
            match notify.as_ref() {
                Some(n) => n(),
                None => (self.done.wake)(),
            }
        }
    }

    pub fn stop(&self) {
        lock(&self.queue).stop = true;
        self.ready.notify_all();
    }
}

/// The oldest queued job that may start: a serial job waits while another
/// serial job on its file runs, and so do later jobs of that file that are
/// serial.
fn next_job(q: &mut Queue) -> Option<Job> {
    let i = q
        .jobs
        .iter()
        .position(|j| !j.serial || !q.running.iter().any(|(fd, serial)| *serial && *fd == j.fd))?;
    q.jobs.remove(i)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs a job's ops in order; after a failed or short one, the rest are
/// cancelled (unless it was linked to the next with `always`).
fn run(job: &Job) -> Vec<Cqe> {
    let mut out = Vec::with_capacity(job.steps.len());
    let mut broken = false;
    for s in &job.steps {
        let result = if broken {
            -libc::ECANCELED
        } else {
            let (r, whole) = run::file_op(&s.op);
            broken = !whole && !s.always;
            r
        };
        out.push(Cqe {
            user_data: s.user_data,
            result,
            flags: 0,
        });
    }
    out
}
