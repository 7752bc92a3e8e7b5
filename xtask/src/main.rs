//! `cargo xtask <task>`: project tasks that are not tests.
//!
//! * `bench [--quick]`: builds `cme` in release and measures it against the targets of
//!   ARCHITECTURE.md §9 (figures, not assertions; the machine's load is printed too).
//! * `new-plugin NAME --kind attack|planner [--dir DIR]`: a plugin crate from a template.

mod bench;
mod new_plugin;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("new-plugin") => new_plugin::run(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask bench [--quick] | cargo xtask new-plugin NAME --kind attack|planner [--dir DIR]");
            return std::process::ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
