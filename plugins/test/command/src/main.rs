//! A WASI command: not a cme plugin.

fn main() {
    println!("hello from a command component");
}
