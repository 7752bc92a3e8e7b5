//! The epoch ticker: a std thread that advances the engine's epoch every 10 ms while calls
//! are in flight (and for a second after the last, so that a stream of short calls does
//! not wake it each time), and sleeps on a condition variable otherwise, so that an idle
//! engine uses no CPU at all.

use cme_model::Locked;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wasmtime::{Engine, EngineWeak};

/// Epoch tick: the granularity of deadlines.
pub const TICK: Duration = Duration::from_millis(10);

#[derive(Clone)]
pub(crate) struct Ticker {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    active: usize,
    stopped: bool,
    /// The thread waits on the condition variable (only then does a call wake it).
    parked: bool,
}

/// How long the ticker keeps ticking after the last call ended.
const LINGER: Duration = Duration::from_secs(1);

/// Keeps the ticker running while alive.
pub(crate) struct Active {
    shared: Arc<Shared>,
}

impl Ticker {
    /// Starts the thread; it ends when the engine is dropped.
    pub fn start(engine: &Engine) -> Ticker {
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), wake: Condvar::new() });
        let weak = engine.weak();
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("cme-epoch-ticker".into())
            .spawn(move || run(weak, thread_shared))
            .expect("spawning the epoch ticker thread");
        Ticker { shared }
    }

    /// Marks a call in flight until the returned guard drops.
    pub fn activate(&self) -> Active {
        let mut state = self.shared.lock();
        state.active += 1;
        if state.parked {
            self.shared.wake.notify_one();
        }
        drop(state);
        Active { shared: self.shared.clone() }
    }

    /// Ends the thread (when the runtime is dropped).
    pub fn stop(&self) {
        self.shared.lock().stopped = true;
        self.shared.wake.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.locked()
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.shared.lock().active -= 1;
    }
}

fn run(engine: EngineWeak, shared: Arc<Shared>) {
    let mut last_busy = std::time::Instant::now();
    loop {
        {
            let mut state = shared.lock();
            if state.active > 0 {
                last_busy = std::time::Instant::now();
            }
            while state.active == 0 && !state.stopped && last_busy.elapsed() >= LINGER {
                state.parked = true;
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                state.parked = false;
                last_busy = std::time::Instant::now();
            }
            if state.stopped {
                return;
            }
        }
        std::thread::sleep(TICK);
        match engine.upgrade() {
            Some(engine) => engine.increment_epoch(),
            None => return,
        }
    }
}
