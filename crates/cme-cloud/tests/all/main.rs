//! Integration tests of the capability backends against real peers: the shipped scripts
//! run on this machine, and a private OpenSSH sshd on 127.0.0.1.

mod compute;
mod ec2;
mod scripts;
mod ssh;
