//! Errors at the runtime's edge: loading a plugin, and calling one.

use std::time::Duration;

/// Why a component could not become a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "not a WebAssembly binary (it does not start with \\0asm): upload the .wasm file that `cargo build --release --target wasm32-wasip2` writes"
    )]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component: build for wasm32-wasip2 (cargo build --target wasm32-wasip2), which emits a component"
    )]
    CoreModule,
    #[error("the component does not compile: {0}")]
    Compile(String),
    #[error(
        "the component implements none of the `planner`, `attack` and `probe` worlds of cme:plugin@0.4.x, 0.3.x, 0.2.x or 0.1.x (it exports {exports:?}; a planner exports describe and plan, an attack describe and run, a probe describe and check)"
    )]
    UnknownWorld { exports: Vec<String> },
    #[error(
        "the component's imports cannot be satisfied by this engine: {0} (plugins may import cme:plugin/*@0.4.x, @0.3.x, @0.2.x or @0.1.x and wasi:cli, wasi:io, wasi:clocks, wasi:random, wasi:filesystem @0.2.x)"
    )]
    Imports(String),
    #[error(
        "describe() failed: {0} (describe() must answer at once, without loops, large allocations or capability calls)"
    )]
    Describe(#[source] CallError),
    #[error("describe() returned an invalid plugin-info: {0}")]
    InvalidInfo(String),
    #[error("artifact cache: {0}")]
    Cache(String),
}

/// Why a call into a plugin did not return a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The args were refused, by the schema (with the JSON pointer of the offending value)
    /// or by the plugin.
    #[error("invalid args{}: {message}", pointer.as_deref().map(|p| format!(" at {p:?}")).unwrap_or_default())]
    InvalidArgs { pointer: Option<String>, message: String },
    /// The plugin reported that a capability was denied.
    #[error("denied: {0}")]
    Denied(String),
    /// The plugin ran and reported failure.
    #[error("failed: {0}")]
    Failed(String),
    /// The call ran past its wall-clock deadline.
    #[error("deadline of {} ms exceeded", .0.as_millis())]
    Deadline(Duration),
    /// The plugin tried to grow its memories (all of them together) beyond the limit.
    #[error("memory limit of {limit} bytes per call exceeded (its memories would total {requested} bytes)")]
    MemoryLimit { limit: usize, requested: usize },
    /// The plugin recursed beyond the wasm stack.
    #[error("stack overflow: the plugin exhausted its call stack")]
    StackOverflow,
    /// The plugin panicked; the message is what it wrote to stderr.
    #[error("plugin panicked: {0}")]
    Panicked(String),
    #[error("log line limit of {0} lines exceeded")]
    LogLimit(u32),
    #[error("host call limit of {0} capability calls exceeded")]
    HostCallLimit(u32),
    /// stdout, stderr or the report grew beyond its cap.
    #[error("output limit exceeded: {what} is larger than {limit} bytes")]
    OutputLimit { what: &'static str, limit: usize },
    /// Any other trap (for example an integer division by zero).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The plugin returned something that breaks the contract (an out-of-range time,
    /// details that are not a JSON object).
    #[error("plugin broke the contract: {0}")]
    Contract(String),
    /// The engine could not run the call (not the plugin's fault).
    #[error("engine error: {0}")]
    Host(String),
    /// The caller cancelled the call (a halt, a shutdown); the text is why.
    #[error("cancelled: {0}")]
    Cancelled(String),
}

impl CallError {
    /// A short, stable name for the kind of error, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::InvalidArgs { .. } => "invalid_args",
            CallError::Denied(_) => "denied",
            CallError::Failed(_) => "failed",
            CallError::Deadline(_) => "deadline_exceeded",
            CallError::MemoryLimit { .. } => "memory_limit_exceeded",
            CallError::StackOverflow => "stack_overflow",
            CallError::Panicked(_) => "panicked",
            CallError::LogLimit(_) => "log_limit_exceeded",
            CallError::HostCallLimit(_) => "host_call_limit_exceeded",
            CallError::OutputLimit { .. } => "output_limit_exceeded",
            CallError::Trap(_) => "trap",
            CallError::Contract(_) => "contract_violation",
            CallError::Host(_) => "engine_error",
            CallError::Cancelled(_) => "cancelled",
        }
    }
}

/// A limit broken inside the store (a host call or the limiter); carried through
/// wasmtime's error as the trap's cause, then turned into a [`CallError`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct LimitBreach(pub CallError);
