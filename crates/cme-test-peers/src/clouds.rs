//! Local stand-ins for the cloud APIs no emulator serves here (GCE, Azure, DigitalOcean):
//! servers written for this project from the routes and shapes of each provider's
//! official client (`fakes/*.py`, standard-library Python), one per test, on a loopback
//! port of their own. Each behaves as the real API does where an engine can get it wrong:
//! it pages small, answers one 429 with `Retry-After`, keeps an operation in progress for
//! a while, can fail one, and wants its credential on every request.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A fake cloud API, stopped when dropped.
pub struct FakeCloud {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    child: Child,
}

impl FakeCloud {
    /// The DigitalOcean API v2 (`fakes/digitalocean.py`), wanting `Bearer token`.
    pub fn digitalocean(token: &str) -> FakeCloud {
        FakeCloud::start("digitalocean.py", &[token])
    }

    fn start(script: &str, args: &[&str]) -> FakeCloud {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fakes").join(script);
        let mut child = Command::new("python3")
            .arg(&path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e} (python3 is needed)", path.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).expect("the fake prints its port");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("{script} printed {line:?}, not its port"));
        FakeCloud { url: format!("http://127.0.0.1:{port}"), child }
    }
}

impl Drop for FakeCloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
