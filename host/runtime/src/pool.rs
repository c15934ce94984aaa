//! Threads of their own for plugin code, so that WebAssembly never runs on
//! the threads that serve the network.
//!
//! Each instance runs on one OS thread of this pool, inside that thread's
//! own single-threaded tokio runtime (timers only). The pool grows on demand
//! up to a fixed number of threads (the instance cap plus the load slots), so
//! a free instance slot always finds a thread, and never shrinks: its size is
//! bounded and its threads idle in a blocking `recv` when there is no work.
//!
//! Why threads rather than tasks: a CPU-bound plugin gives up a tokio worker
//! only at an epoch tick, so plugins sharing the I/O runtime's workers delay
//! every other request by a tick each. On threads of their own, the kernel's
//! scheduler shares the cores among them, and the I/O runtime stays
//! responsive.
//!
//! Short requests first: when more instances are running than the host has
//! cores, an instance that is still running after [`DEMOTE_AFTER`] of wall
//! time has its thread moved to the `SCHED_IDLE` policy ([`demote`]), so
//! that a new request, and the network threads, preempt it as soon as they
//! wake; demoted instances share what is left among themselves. An
//! unprivileged process cannot leave `SCHED_IDLE` again, so a demoted thread
//! retires when its job ends and a fresh one takes its place. (`SCHED_IDLE`
//! rather than nice 19: under EEVDF a nice-19 task keeps its slice when a
//! normal one wakes, which left echo's p95 at ~14 ms under 16 spinners;
//! `SCHED_IDLE` tasks are preempted at once.)

use std::cell::Cell;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long an instance runs at normal priority before it is demoted.
pub(crate) const DEMOTE_AFTER: Duration = Duration::from_millis(5);

/// The cores this process may use.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

thread_local! {
    /// Set on a pool thread whose priority was lowered by [`demote`].
    static DEMOTED: Cell<bool> = const { Cell::new(false) };
}

/// Moves the calling pool thread to `SCHED_IDLE` for the rest of its life
/// (once). Failing to do so (a platform without it) leaves the priority as
/// it is: fairness degrades, nothing else does.
pub(crate) fn demote() {
    if DEMOTED.with(Cell::get) {
        return;
    }
    DEMOTED.with(|d| d.set(true));
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadPriority, ThreadSchedulePolicy,
    };
    if let Err(e) = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    ) {
        tracing::debug!(error = ?e, "could not lower a plugin thread's priority");
    }
}

type Job = Box<dyn FnOnce(&tokio::runtime::Runtime) + Send>;

/// A bounded, growing pool of plugin threads.
pub(crate) struct WasmPool {
    sender: Mutex<Option<Sender<Job>>>,
    receiver: Arc<Mutex<Receiver<Job>>>,
    state: Arc<Mutex<PoolState>>,
    max_threads: usize,
}

#[derive(Default)]
struct PoolState {
    threads: usize,
    idle: usize,
}

/// The pool could not take a job.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PoolError {
    #[error("cannot start a plugin thread: {0}")]
    Spawn(std::io::Error),
    #[error("the plugin thread pool is shut down")]
    Closed,
}

impl WasmPool {
    pub(crate) fn new(max_threads: usize) -> WasmPool {
        let (sender, receiver) = channel::<Job>();
        WasmPool {
            sender: Mutex::new(Some(sender)),
            receiver: Arc::new(Mutex::new(receiver)),
            state: Arc::new(Mutex::new(PoolState::default())),
            max_threads: max_threads.max(1),
        }
    }

    /// Threads started so far (at most the pool's bound).
    pub(crate) fn threads(&self) -> usize {
        lock(&self.state).threads
    }

    /// Runs `job` on a pool thread, starting one if none is idle and the
    /// bound allows. The caller holds an instance slot, so at most
    /// `max_threads` jobs exist at once and a queued job never waits for
    /// a thread that another job holds for long.
    pub(crate) fn submit(&self, job: Job) -> Result<(), PoolError> {
        {
            // Reserve a thread for this job: an idle one, or a new one.
            let mut state = lock(&self.state);
            if state.idle > 0 {
                state.idle -= 1;
            } else if state.threads < self.max_threads {
                let receiver = Arc::clone(&self.receiver);
                let shared = Arc::clone(&self.state);
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .map_err(PoolError::Spawn)?;
                std::thread::Builder::new()
                    .name(format!("cloister-wasm-{}", state.threads))
                    .spawn(move || worker(&runtime, &receiver, &shared))
                    .map_err(PoolError::Spawn)?;
                state.threads += 1;
            }
        }
        match &*lock(&self.sender) {
            Some(sender) => sender.send(job).map_err(|_| PoolError::Closed),
            None => Err(PoolError::Closed),
        }
    }
}

impl Drop for WasmPool {
    fn drop(&mut self) {
        // Closing the channel ends every idle worker's `recv`.
        lock(&self.sender).take();
    }
}

fn worker(
    runtime: &tokio::runtime::Runtime,
    receiver: &Mutex<Receiver<Job>>,
    state: &Mutex<PoolState>,
) {
    loop {
        let job = match lock(receiver).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        // A panic in a job (a bug, never input) ends that job only.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(runtime)));
        let mut state = lock(state);
        if DEMOTED.with(Cell::get) {
            // Its priority cannot be raised again: retire it.
            state.threads -= 1;
            return;
        }
        state.idle += 1;
    }
}

/// Locks a mutex; a panic while it was held (none of the critical sections
/// here can panic) does not stop the pool.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
