//! `cme:plugin/log`: lines into the run's record (capped in count and length).

use crate::bindings::attack::cme::plugin::log::{Host, Level};
use crate::outcome::LogLevel;
use crate::state::CallState;

impl Host for CallState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        self.push_log(level, message)
    }
}
