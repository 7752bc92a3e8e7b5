//! Integration tests of the runtime against real components built from `plugins/`.
//! One binary (wasmtime's layout): every module below is a group of tests.

mod builtins;
mod cache;
mod ec2;
mod grants;
mod hostile;
mod recurring;
mod schemas;
mod support;
