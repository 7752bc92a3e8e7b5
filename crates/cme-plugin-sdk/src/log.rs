//! Logging into the run's log through the host's `log` import.
//!
//! Use the macros [`trace!`](crate::trace), [`debug!`](crate::debug), [`info!`](crate::info),
//! [`warn!`](crate::warn) and [`error!`](crate::error); they take `format!` arguments.

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[cfg(all(target_arch = "wasm32", any(feature = "planner", feature = "attack", feature = "probe")))]
macro_rules! convert {
    ($host:ident, $level:expr) => {
        match $level {
            Level::Trace => $host::Level::Trace,
            Level::Debug => $host::Level::Debug,
            Level::Info => $host::Level::Info,
            Level::Warn => $host::Level::Warn,
            Level::Error => $host::Level::Error,
        }
    };
}

/// Sends one line to the host. Outside a component (unit tests on the build machine)
/// lines go to stderr.
pub fn write(level: Level, message: &str) {
    #[cfg(all(target_arch = "wasm32", feature = "planner"))]
    {
        use crate::planner::bindings::cme::plugin::log as host;
        host::log(convert!(host, level), message);
    }
    #[cfg(all(target_arch = "wasm32", feature = "attack"))]
    {
        use crate::attack::bindings::cme::plugin::log as host;
        host::log(convert!(host, level), message);
    }
    #[cfg(all(target_arch = "wasm32", feature = "probe"))]
    {
        use crate::probe::bindings::cme::plugin::log as host;
        host::log(convert!(host, level), message);
    }
    #[cfg(not(all(target_arch = "wasm32", any(feature = "planner", feature = "attack", feature = "probe"))))]
    eprintln!("[{level:?}] {message}");
}


/// Logs at trace level: `trace!("checked {} filters", n)`.
#[macro_export]
macro_rules! trace { ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Trace, &::std::format!($($arg)*)) }; }
/// Logs at debug level.
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Debug, &::std::format!($($arg)*)) }; }
/// Logs at info level.
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, &::std::format!($($arg)*)) }; }
/// Logs at warn level.
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Warn, &::std::format!($($arg)*)) }; }
/// Logs at error level.
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, &::std::format!($($arg)*)) }; }
