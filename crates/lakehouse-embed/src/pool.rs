//! The blocking threads that run the local model, and the micro-batching in front of them.
//!
//! Inference never runs on the async runtime: requests are queued here and a bounded set of dedicated threads
//! takes them. A thread that finds work waits a short window (counted from when the oldest request arrived)
//! for more, then runs everything queued as one call into the model, so under load the throughput is that of
//! batched inference while a lone request pays at most the window in latency. A thread still busy with a
//! pass when requests arrive takes them all at once when it finishes, so the window is not paid twice.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::local::LocalModel;

/// Texts gathered into one call at most; one request larger than this still goes in one call.
const MAX_TEXTS_PER_CALL: usize = 256;

/// Settings of an [`InferencePool`].
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Inference threads.
    pub threads: usize,
    /// How long to gather concurrent requests before a forward pass.
    pub batch_window: Duration,
    /// Texts allowed to wait before new requests are refused.
    pub max_queued_texts: usize,
}

/// A bounded pool of inference threads over one [`LocalModel`].
#[derive(Debug)]
pub struct InferencePool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    model: LocalModel,
    state: Mutex<State>,
    wake: Condvar,
    batch_window: Duration,
    max_queued_texts: usize,
}

#[derive(Debug, Default)]
struct State {
    jobs: VecDeque<Job>,
    queued_texts: usize,
    stopping: bool,
}

#[derive(Debug)]
struct Job {
    texts: Vec<String>,
    arrived: Instant,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>>>,
}

impl InferencePool {
    /// Starts the threads over a loaded model.
    pub fn start(model: LocalModel, options: &PoolOptions) -> Result<Self> {
        let shared = Arc::new(Shared {
            model,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            batch_window: options.batch_window,
            max_queued_texts: options.max_queued_texts.max(1),
        });
        let mut threads = Vec::new();
        for index in 0..options.threads.max(1) {
            let shared = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name(format!("embed-infer-{index}"))
                .spawn(move || shared.run())
                .map_err(|err| Error::Inference(format!("starting an inference thread: {err}")))?;
            threads.push(handle);
        }
        Ok(InferencePool { shared, threads })
    }

    /// The loaded model.
    pub fn model(&self) -> &LocalModel {
        &self.shared.model
    }

    /// Embeds texts on the pool, batched with whatever else is queued. One vector per text, in order.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            if state.stopping {
                return Err(Error::PoolStopped);
            }
            // A request alone may exceed the bound (it is capped by max_batch elsewhere); refuse only when
            // others are already waiting, so a large request cannot starve forever.
            if state.queued_texts > 0
                && state.queued_texts + texts.len() > self.shared.max_queued_texts
            {
                return Err(Error::Overloaded {
                    queued: state.queued_texts,
                    max: self.shared.max_queued_texts,
                });
            }
            state.queued_texts += texts.len();
            state.jobs.push_back(Job {
                texts,
                arrived: Instant::now(),
                reply,
            });
        }
        self.shared.wake.notify_all();
        answer.await.map_err(|_| Error::PoolStopped)?
    }

    /// Texts waiting for a thread right now.
    pub fn queued_texts(&self) -> usize {
        self.shared.lock().queued_texts
    }
}

impl Drop for InferencePool {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_all();
        for handle in self.threads.drain(..) {
            // A thread that panicked has nothing left to clean up; the panic was already reported.
            let _ = handle.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a queue and counters, consistent after every statement; a panic elsewhere does not
        // leave it half-updated, so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self) {
        while let Some(jobs) = self.next_jobs() {
            self.process(jobs);
        }
    }

    /// Waits for work, gathers for the batch window, and takes the queued jobs; `None` when stopping.
    fn next_jobs(&self) -> Option<Vec<Job>> {
        let mut state = self.lock();
        loop {
            if state.stopping {
                // Answer what is still queued with an error rather than dropping it silently.
                for job in state.jobs.drain(..) {
                    let _ = job.reply.send(Err(Error::PoolStopped));
                }
                state.queued_texts = 0;
                return None;
            }
            let Some(oldest) = state.jobs.front().map(|job| job.arrived) else {
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let deadline = oldest + self.batch_window;
            let now = Instant::now();
            if state.queued_texts < MAX_TEXTS_PER_CALL && now < deadline {
                state = self
                    .wake
                    .wait_timeout(state, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                continue;
            }
            let mut taken = Vec::new();
            let mut texts = 0;
            while let Some(job) = state.jobs.front() {
                if !taken.is_empty() && texts + job.texts.len() > MAX_TEXTS_PER_CALL {
                    break;
                }
                texts += job.texts.len();
                if let Some(job) = state.jobs.pop_front() {
                    taken.push(job);
                }
            }
            state.queued_texts -= texts;
            return Some(taken);
        }
    }

    /// Runs one call over the jobs' texts and answers each job with its share.
    fn process(&self, jobs: Vec<Job>) {
        // A caller that went away (client disconnected, timeout) needs no answer; skip its texts.
        let jobs: Vec<Job> = jobs
            .into_iter()
            .filter(|job| !job.reply.is_closed())
            .collect();
        let texts: Vec<&str> = jobs
            .iter()
            .flat_map(|job| job.texts.iter().map(String::as_str))
            .collect();
        if texts.is_empty() {
            return;
        }
        // A panic inside the model must not kill the thread: queued requests would then wait forever.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.model.embed(&texts)))
                .unwrap_or_else(|_| {
                    Err(Error::Inference(
                        "the model panicked on this batch".to_owned(),
                    ))
                });
        match outcome {
            Ok(vectors) => {
                let mut vectors = vectors.into_iter();
                for job in jobs {
                    let share: Vec<Vec<f32>> = vectors.by_ref().take(job.texts.len()).collect();
                    let _ = job.reply.send(Ok(share));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, texts = texts.len(), "local embedding failed");
                let message = err.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(Error::Inference(message.clone())));
                }
            }
        }
    }
}
