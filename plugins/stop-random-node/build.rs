//! Derives the args schema natively, so the component carries it as text.

#[path = "src/args.rs"]
#[allow(dead_code)]
mod args;

fn main() {
    println!("cargo:rerun-if-changed=src/args.rs");
    cme_plugin_sdk::build::write_args_schema::<args::Args>("Args");
}
