//! A private PostgreSQL cluster on 127.0.0.1: its own data directory, socket directory
//! and port, started and stopped with `pg_ctl` as the `postgres` user (`runuser`; initdb
//! and pg_ctl refuse root). Never a shared server: whoever starts it may restart it, kill
//! its backends or stop it without touching anybody else's database.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running private cluster; stopped (immediately) and removed when dropped.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    /// `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication).
    pub url: String,
}

/// How `pg_ctl restart` stops the server first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Disconnects every client, checkpoints, stops.
    Fast,
    /// Stops at once, as a crash would (recovery replays the WAL at start).
    Immediate,
}

impl StopMode {
    fn flag(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

fn failed(what: &str, output: &std::process::Output) -> io::Error {
    io::Error::other(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// The newest PostgreSQL server binaries Debian installed (`/usr/lib/postgresql/N/bin`).
pub fn server_binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.split('.').next()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

impl PrivatePostgres {
    /// initdb into `dir` (created, handed to the postgres user) and start on a free port.
    pub fn start(dir: &Path) -> io::Result<PrivatePostgres> {
        let bin =
            server_binaries().ok_or_else(|| io::Error::other("no PostgreSQL server (apt-get install postgresql)"))?;
        std::fs::create_dir_all(dir.join("sock"))?;
        let owned = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir).output()?;
        if !owned.status.success() {
            return Err(failed("chown postgres", &owned));
        }
        // Through /tmp's sticky bit and a 0700 parent the postgres user must still reach it.
        Command::new("chmod").arg("755").arg(dir).status()?;
        let port = free_port()?;
        let postgres = PrivatePostgres {
            bin,
            dir: dir.to_path_buf(),
            port,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        };
        let data = postgres.data();
        let init = postgres
            .as_postgres(&postgres.bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .output()?;
        if !init.status.success() {
            return Err(failed("initdb", &init));
        }
        postgres.pg_ctl(&["start", "-w", "-t", "60"])?;
        Ok(postgres)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn as_postgres(&self, program: &Path) -> Command {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program).stdin(Stdio::null());
        command
    }

    fn pg_ctl(&self, action: &[&str]) -> io::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off",
            self.port,
            self.dir.join("sock").display()
        );
        let output = self
            .as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args(["-o", &options])
            .args(action)
            .output()?;
        if output.status.success() { Ok(()) } else { Err(failed(&format!("pg_ctl {}", action.join(" ")), &output)) }
    }

    /// Stops the server (`mode`) and starts it again, waiting until it accepts connections.
    pub fn restart(&self, mode: StopMode) -> io::Result<()> {
        self.pg_ctl(&["restart", "-w", "-t", "60", "-m", mode.flag()])
    }

    /// Runs one SQL statement with psql; answers its unaligned output.
    pub fn psql(&self, sql: &str) -> io::Result<String> {
        let output = Command::new("psql").arg(&self.url).args(["-qAtX", "-c", sql]).stdin(Stdio::null()).output()?;
        if !output.status.success() {
            return Err(failed("psql", &output));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// When the server last started (`pg_postmaster_start_time()`): a restart changes it.
    pub fn started_at(&self) -> io::Result<String> {
        self.psql("SELECT pg_postmaster_start_time()")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
    }
}

/// A TCP port free on 127.0.0.1 now.
pub fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
