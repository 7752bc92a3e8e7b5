//! A private OpenSSH sshd with its own host key and authorized keys, listening on given
//! loopback addresses (moto gives instances in a 127.0.0.0/24 subnet such addresses).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// Whether sshd and ssh-keygen are installed; under `CME_REQUIRE_PEERS=1` their absence
/// fails the test instead of skipping it.
pub fn available() -> bool {
    let present = Path::new(SSHD).exists() && Command::new("ssh-keygen").arg("-?").output().is_ok();
    if !present {
        crate::missing_peer(&format!("{SSHD} or ssh-keygen"), "apt-get install openssh-server");
    }
    present
}

/// `ssh-keygen -q -f dir/name ARGS...`; returns the private key's path (`.pub` beside it).
pub fn keygen(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen").args(["-q", "-f"]).arg(&path).args(args).status().expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen {args:?}");
    path
}

/// An unencrypted ed25519 key pair.
pub fn ed25519(dir: &Path, name: &str) -> PathBuf {
    keygen(dir, name, &["-t", "ed25519", "-N", ""])
}

/// The user the tests run as: the sshd authorizes the test keys for this user.
pub fn current_user() -> String {
    String::from_utf8(Command::new("id").arg("-un").output().expect("id runs").stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A running sshd; killed on drop.
pub struct Sshd {
    child: Child,
    pub port: u16,
}

impl Sshd {
    /// Starts sshd on `addresses`:`port` with `host_key`, authorizing the public halves of
    /// `authorized`, and waits until it accepts connections. Its config and log live in `dir`.
    pub fn start(dir: &Path, addresses: &[&str], port: u16, host_key: &Path, authorized: &[&Path]) -> Sshd {
        let keys: String =
            authorized.iter().map(|k| std::fs::read_to_string(k.with_extension("pub")).expect("public key")).collect();
        std::fs::write(dir.join("authorized_keys"), keys).expect("writing authorized_keys");
        let listen: String = addresses.iter().map(|a| format!("ListenAddress {a}\n")).collect();
        let config = format!(
            "Port {port}\n{listen}HostKey {host}\nPidFile {dir}/sshd.pid\nAuthorizedKeysFile {dir}/authorized_keys\n\
             PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             StrictModes no\nUsePAM no\nLogLevel VERBOSE\n",
            host = host_key.display(),
            dir = dir.display()
        );
        let config_path = dir.join("sshd_config");
        std::fs::write(&config_path, config).expect("writing sshd_config");
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").ok();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).expect("sshd.log"))
            .spawn()
            .expect("sshd starts");
        let started = Instant::now();
        while std::net::TcpStream::connect((addresses[0], port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "sshd did not start: {}",
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Sshd { child, port }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
