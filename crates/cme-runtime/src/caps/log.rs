//! `cme:plugin/log`: lines into the run's record (capped in count and length).

use super::Unit;
use crate::bindings::attack::cme::plugin::log::{Host, Level};
use crate::grant::{Denial, Fences, Grant};
use crate::info::Capability;
use crate::outcome::LogLevel;
use crate::state::CallState;

/// The `log` unit: every world may log, without a declaration or grant (the line caps
/// of the call's limits bound it).
pub(crate) struct Log;

impl Unit for Log {
    const INTERFACE: &'static str = "cme:plugin/log";
    type RunState = ();
    type Use<'a> = ();

    fn check(_: &[Capability], _: &Grant, _: &Fences, _: ()) -> Result<(), Denial> {
        Ok(())
    }
}

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
