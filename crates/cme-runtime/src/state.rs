//! The state of one call's Store: a sandbox with no ambient authority, the call's
//! limits, its log and audit trail, and (for attack runs) its capabilities.

use std::time::Instant;

use chrono::Utc;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::audit::{AuditEvent, AuditSource, Decision};
use crate::caps::Capabilities;
use crate::config::Limits;
use crate::error::{CallError, LimitBreach};
use crate::outcome::{LogLevel, LogLine};

pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: Limits,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    pub log: Vec<LogLine>,
    pub audit: Vec<AuditEvent>,
    pub host_calls: u32,
    /// `name@version`, for audit events and tracing.
    pub plugin: String,
    pub run_id: String,
    /// The experiment step an attack run makes (its undos say so).
    pub step: Option<String>,
    /// None: the zero-capability sandbox of `describe` and `plan`.
    pub caps: Option<Capabilities>,
    pub deadline: Instant,
    /// The capability call waiting on the outside world (its call and target), so that a
    /// call the run's end interrupts (deadline, cancellation) is still audited.
    pub in_flight: Option<(&'static str, String)>,
    /// Bytes of linear memory over all of the call's memories (a component may have
    /// several core modules, each with its own): what the memory limit caps.
    memory_total: usize,
}

impl CallState {
    /// A sandbox: no files, no environment, no arguments, no sockets; stdout and stderr
    /// go to capped in-memory pipes that end up in the run's record.
    pub fn new(plugin: String, run_id: String, limits: Limits, caps: Option<Capabilities>) -> Self {
        let stdout = MemoryOutputPipe::new(limits.max_stdio_bytes);
        let stderr = MemoryOutputPipe::new(limits.max_stdio_bytes);
        let wasi = WasiCtx::builder().stdout(stdout.clone()).stderr(stderr.clone()).build();
        CallState {
            wasi,
            table: ResourceTable::new(),
            limits,
            stdout,
            stderr,
            log: Vec::new(),
            in_flight: None,
            memory_total: 0,
            audit: Vec::new(),
            host_calls: 0,
            plugin,
            run_id,
            step: None,
            caps,
            deadline: Instant::now() + limits.deadline,
        }
    }

    /// Counts a capability call; breaking the cap ends the call.
    pub fn count_host_call(&mut self) -> wasmtime::Result<()> {
        self.host_calls += 1;
        if self.host_calls > self.limits.max_host_calls {
            return Err(breach(CallError::HostCallLimit(self.limits.max_host_calls)));
        }
        Ok(())
    }

    /// Appends a log line (cut at the line cap); breaking the line-count cap ends the call.
    pub fn push_log(&mut self, level: LogLevel, mut message: String) -> wasmtime::Result<()> {
        if self.log.len() as u32 >= self.limits.max_log_lines {
            return Err(breach(CallError::LogLimit(self.limits.max_log_lines)));
        }
        if message.len() > self.limits.max_log_line_bytes {
            let mut end = self.limits.max_log_line_bytes;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push_str(" [cut]");
        }
        tracing::debug!(plugin = %self.plugin, run_id = %self.run_id, ?level, %message, "plugin log");
        self.log.push(LogLine { at: Utc::now(), level, message });
        Ok(())
    }

    /// Records an audit event for a capability call.
    /// Marks `call` on `target` as sent to the outside world and not answered yet.
    pub fn begin(&mut self, call: &'static str, target: &str) {
        self.in_flight = Some((call, target.to_string()));
    }

    /// Audits the call the run's end interrupted, if any: it was sent, its effect is unknown.
    pub fn end_in_flight(&mut self) {
        if let Some((call, target)) = self.in_flight.take() {
            self.audit(
                call,
                target,
                Decision::Allowed,
                Some("unknown: the run ended while the call was in flight".into()),
            );
        }
    }

    /// Records a capability call; URL user-info in its target and texts is masked first
    /// (audit rows and logs never show it).
    pub fn audit(&mut self, call: &str, target: String, decision: Decision, outcome: Option<String>) {
        self.in_flight = None;
        let target = cme_secrets::text_of(&target).into_owned();
        let outcome = cme_secrets::option_of(outcome.as_deref());
        let decision = match decision {
            Decision::Denied(reason) => Decision::Denied(cme_secrets::text_of(&reason).into_owned()),
            Decision::Unavailable(reason) => Decision::Unavailable(cme_secrets::text_of(&reason).into_owned()),
            allowed => allowed,
        };
        let dry_run = self.caps.as_ref().is_some_and(|c| c.dry_run);
        if let Decision::Denied(reason) = &decision {
            tracing::warn!(plugin = %self.plugin, run_id = %self.run_id, call, %target, %reason, "capability denied");
        }
        let (decision, reason) = decision.into_parts();
        self.audit.push(AuditEvent {
            at: Utc::now(),
            source: AuditSource::Plugin,
            run_id: (!self.run_id.is_empty()).then(|| self.run_id.clone()),
            actor: self.plugin.clone(),
            action: call.to_string(),
            target,
            decision,
            reason,
            dry_run,
            outcome,
        });
    }

    /// Which captured stream, if any, is full: a flood of output ends the call.
    pub fn full_stdio(&self) -> Option<&'static str> {
        let cap = self.limits.max_stdio_bytes;
        if self.stdout.contents().len() >= cap {
            Some("stdout")
        } else if self.stderr.contents().len() >= cap {
            Some("stderr")
        } else {
            None
        }
    }
}

pub(crate) fn breach(error: CallError) -> wasmtime::Error {
    wasmtime::Error::new(LimitBreach(error))
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Memory and table growth beyond the limits ends the call with an error naming the
/// limit (rather than a guest allocation failure that looks like a bug). The memory limit
/// is per call: the sum over every memory of every instance the call creates.
impl ResourceLimiter for CallState {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.memory_total.saturating_sub(current).saturating_add(desired);
        if total > self.limits.memory_bytes {
            return Err(breach(CallError::MemoryLimit { limit: self.limits.memory_bytes, requested: total }));
        }
        self.memory_total = total;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        const MAX_TABLE_ELEMENTS: usize = 100_000;
        if desired > MAX_TABLE_ELEMENTS {
            return Err(breach(CallError::MemoryLimit { limit: MAX_TABLE_ELEMENTS, requested: desired }));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        32
    }

    fn tables(&self) -> usize {
        32
    }

    fn memories(&self) -> usize {
        8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_limit_caps_the_sum_of_all_memories_of_a_call() {
        let limits = Limits { memory_bytes: 10 << 20, ..Limits::default() };
        let mut state = CallState::new("p@1".into(), "run".into(), limits, None);
        // Two memories of 4 MiB each fit; growing one of them by 4 MiB more does not.
        assert!(state.memory_growing(0, 4 << 20, None).unwrap());
        assert!(state.memory_growing(0, 4 << 20, None).unwrap());
        let breach = state.memory_growing(4 << 20, 8 << 20, None).unwrap_err();
        assert!(breach.to_string().contains("memory") || format!("{breach:?}").contains("MemoryLimit"), "{breach:?}");
        // A third memory that would pass the total is refused too, one that fits is not.
        assert!(state.memory_growing(0, 3 << 20, None).is_err());
        assert!(state.memory_growing(0, 2 << 20, None).unwrap());
    }
}
