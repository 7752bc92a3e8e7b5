//! `cargo xtask <task>`: project tasks that are not tests.
//!
//! * `bench [--quick]`: builds `cme` in release and measures it against the targets of
//!   ARCHITECTURE.md §9 (figures, not assertions; the machine's load is printed too).
//!
//! A new plugin project comes from the binary: `cme plugins new NAME --kind attack|planner|probe`.

mod bench;
mod fuzz;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask bench [--quick] [--only GROUP,...]\n       cargo xtask fuzz [--minutes N] [--cases N]"
            );
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
