//! An isolated test host for destructive SSH faults: an sshd in a network namespace of its
//! own (a veth pair to this machine, addresses in 10.213.0.0/16; its filter tables in
//! place and empty, as on a host with a firewall loaded), in a mount namespace of
//! its own (`ip netns exec` gives one; `/etc/netns/NAME/hosts` is its `/etc/hosts`, and an
//! optional tmpfs is its disk to fill), without `CAP_SYS_TIME` (a `date -s` there fails as
//! in a container, never moving this machine's clock), and with an optional directory of
//! stand-in commands first on its sessions' `PATH`.
//!
//! A fault made there (an iptables rule, a qdisc, a hosts entry, a full disk) lands in the
//! host's namespaces, never in this machine's: its firewall, `/etc/hosts` and disk stay as
//! they were. The host's processes still share this machine's process table and CPUs, which
//! is what stress tests measure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::sshd;

/// What a test host has besides its sshd.
#[derive(Default)]
pub struct TestHostConfig {
    /// A tmpfs of this many MiB mounted at `TestHost::disk` inside the host (its pages are
    /// taken only as it fills).
    pub disk_mib: Option<u32>,
    /// Stand-in commands (`name`, shell script) put first on the sessions' `PATH`.
    pub stand_ins: Vec<(String, String)>,
    /// Installed tools the host is to lack: an empty, non-executable file is bound over each
    /// inside its mount namespace, so `command -v` no longer finds them there.
    pub hidden_tools: Vec<String>,
    /// Keep `CAP_SYS_TIME` (default: dropped, so that `date -s` fails as in a container).
    /// Only with a stand-in `date` first on `PATH`: the real one would move this
    /// machine's clock.
    pub clock_settable: bool,
    /// More environment for the sessions (`SetEnv`), e.g. a container runtime's config.
    pub env: Vec<(String, String)>,
}

/// A running isolated test host; everything it made is removed on drop.
pub struct TestHost {
    /// The network namespace's name.
    pub netns: String,
    /// The host's address, as the engine reaches it.
    pub address: String,
    /// This machine's address on the veth pair, as the host sees the engine.
    pub engine_address: String,
    pub port: u16,
    /// The tmpfs mount point inside the host (`TestHostConfig::disk_mib`).
    pub disk: PathBuf,
    /// The stand-ins' directory (shared with this machine: tests read their state there).
    pub stand_ins: PathBuf,
    sshd: Child,
    dir: PathBuf,
    // Last: removed after the sshd is gone.
    _namespace: Namespace,
}

/// The network namespace, its veth pair and its `/etc/netns` directory; removed on drop
/// (also when a test host fails to start half-way).
struct Namespace {
    name: String,
    veth: String,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let pids = Command::new("ip").args(["netns", "pids", &self.name]).output();
        for pid in pids.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default().split_whitespace()
        {
            let _ = Command::new("kill").args(["-9", pid]).output();
        }
        let _ = Command::new("ip").args(["link", "del", &self.veth]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
    }
}

/// Whether an isolated test host can run here (root, `ip`, `setpriv`, sshd); under
/// `CME_REQUIRE_PEERS=1` their absence fails the test.
pub fn available() -> bool {
    if !sshd::available() {
        return false;
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let tools = ["ip", "setpriv", "nsenter"].iter().all(|tool| {
        Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
    });
    if !(root && tools) {
        crate::missing_peer(
            "root with ip (iproute2), setpriv and nsenter (util-linux)",
            "run as root; apt-get install iproute2 util-linux",
        );
    }
    root && tools
}

static HOSTS: AtomicU32 = AtomicU32::new(0);

impl TestHost {
    /// Starts a host whose sshd authorizes the public halves of `authorized` for root. Its
    /// config, log and stand-ins live in `dir`.
    pub fn start(dir: &Path, host_key: &Path, authorized: &[&Path], config: TestHostConfig) -> TestHost {
        let n = HOSTS.fetch_add(1, Ordering::Relaxed);
        let id = (std::process::id() & 0xf_ffff) << 4 | (n & 0xf);
        let netns = format!("cme-th-{id:x}");
        let veth = format!("cth{id:x}");
        // A /30 of 10.213.0.0/16 picked from the id; another test host's subnet is avoided.
        let (address, engine_address) = free_subnet(id);
        run(&["ip", "netns", "add", &netns]);
        let namespace = Namespace { name: netns.clone(), veth: veth.clone() };
        run(&["ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns]);
        run(&["ip", "addr", "add", &format!("{engine_address}/30"), "dev", &veth]);
        run(&["ip", "link", "set", &veth, "up"]);
        run(&[
            "ip",
            "netns",
            "exec",
            &netns,
            "sh",
            "-c",
            &format!(
                "ip link set lo up && ip addr add {address}/30 dev eth0 && ip link set eth0 up && ip route add default via {engine_address} && \
                 if command -v iptables >/dev/null; then iptables -P INPUT ACCEPT && ip6tables -P INPUT ACCEPT; fi"
            ),
        ]);
        // Its /etc/hosts: `ip netns exec` binds /etc/netns/NAME/hosts over /etc/hosts.
        let etc = PathBuf::from(format!("/etc/netns/{netns}"));
        std::fs::create_dir_all(&etc).expect("/etc/netns/NAME");
        // The host name (shared with this machine: no UTS namespace) resolves, as on a real
        // host: sudo looks it up.
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        std::fs::write(
            etc.join("hosts"),
            format!("127.0.0.1\tlocalhost\n127.0.1.1\t{}\n{address}\t{netns}\n", hostname.trim()),
        )
        .expect("hosts");
        let (disk, stand_ins) = (dir.join("disk"), dir.join("bin"));
        std::fs::create_dir_all(&disk).expect("disk mount point");
        std::fs::create_dir_all(&stand_ins).expect("stand-ins");
        for (name, script) in &config.stand_ins {
            let path = stand_ins.join(name);
            std::fs::write(&path, script).expect("stand-in");
            run(&["chmod", "755", &path.to_string_lossy()]);
        }
        let sshd = spawn_sshd(dir, &netns, (&address, 22), host_key, authorized, &config, &stand_ins, &disk);
        TestHost {
            netns,
            address,
            engine_address,
            port: 22,
            disk,
            stand_ins,
            sshd,
            dir: dir.to_path_buf(),
            _namespace: namespace,
        }
    }

    /// Runs `script` with `sh -c` inside the host's network and mount namespaces (the
    /// sshd's, so its tmpfs and hosts file too).
    pub fn exec(&self, script: &str) -> Output {
        let target = match self.sshd.id() {
            pid if self.sshd_running() => {
                vec!["nsenter".to_string(), "-t".into(), pid.to_string(), "-n".into(), "-m".into(), "--".into()]
            }
            _ => vec!["ip".into(), "netns".into(), "exec".into(), self.netns.clone()],
        };
        Command::new(&target[0]).args(&target[1..]).args(["sh", "-c", script]).output().expect("runs in the test host")
    }

    /// `exec`, asserting success; returns its standard output.
    pub fn exec_ok(&self, script: &str) -> String {
        let output = self.exec(script);
        assert!(output.status.success(), "in the test host: {script}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn sshd_running(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/comm", self.sshd.id())).is_ok_and(|c| c.trim() == "sshd")
    }

    /// The sshd's log (what a failing test quotes).
    pub fn sshd_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// The host's `/etc/hosts`, as this machine stores it.
    pub fn hosts_file(&self) -> PathBuf {
        PathBuf::from(format!("/etc/netns/{}/hosts", self.netns))
    }

    /// The processes in the host's network namespace, sshd and its sessions included.
    pub fn pids(&self) -> Vec<u32> {
        let output = Command::new("ip").args(["netns", "pids", &self.netns]).output().expect("ip netns pids");
        String::from_utf8_lossy(&output.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect()
    }

    /// What a revert must leave exactly as it was: the firewall, the qdiscs, the hosts
    /// file, the disk's files and the processes besides sshd's own.
    pub fn snapshot(&self) -> String {
        // Rules and policies, not the packet counters traffic moves.
        let firewall = self.exec("for t in iptables-save ip6tables-save; do $t 2>/dev/null | grep -v '^#' | sed 's/ \\[[0-9]*:[0-9]*\\]$//'; done");
        let qdiscs = self.exec("tc qdisc show");
        // The disk's files and use, when it has one (else `df` would measure this machine's).
        let files = self.exec(&format!(
            "if mountpoint -q {0}; then find {0} -mindepth 1 -printf '%P %s\\n' 2>&1 | sort; df -k {0} 2>&1 | tail -1; fi",
            self.disk.display()
        ));
        let hosts = std::fs::read(self.hosts_file()).unwrap_or_default();
        let sshd = self.sshd.id();
        let mut processes: Vec<String> = self
            .pids()
            .into_iter()
            .filter(|pid| *pid != sshd)
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok())
            .map(|c| c.replace('\0', " "))
            .filter(|c| !c.starts_with("sshd:") && !c.is_empty())
            .collect();
        processes.sort();
        format!(
            "iptables-save:\n{}\ntc qdisc:\n{}\n/etc/hosts ({} bytes):\n{}\ndisk:\n{}\nprocesses:\n{}\n",
            String::from_utf8_lossy(&firewall.stdout),
            String::from_utf8_lossy(&qdiscs.stdout),
            hosts.len(),
            String::from_utf8_lossy(&hosts),
            String::from_utf8_lossy(&files.stdout),
            processes.join("\n")
        )
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}

/// Starts the host's sshd in its namespaces, without CAP_SYS_TIME, and waits until it
/// accepts connections.
#[allow(clippy::too_many_arguments)]
fn spawn_sshd(
    dir: &Path,
    netns: &str,
    (address, port): (&str, u16),
    host_key: &Path,
    authorized: &[&Path],
    config: &TestHostConfig,
    stand_ins: &Path,
    disk: &Path,
) -> Child {
    let keys: String =
        authorized.iter().map(|k| std::fs::read_to_string(k.with_extension("pub")).expect("public key")).collect();
    std::fs::write(dir.join("authorized_keys"), keys).expect("authorized_keys");
    let path = format!("{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", stand_ins.display());
    let sshd_config = format!(
        "Port {port}\nListenAddress {address}\nHostKey {key}\nPidFile {dir}/sshd.pid\nAuthorizedKeysFile {dir}/authorized_keys\n\
         PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
         StrictModes no\nUsePAM no\nLogLevel VERBOSE\nSetEnv PATH={path}{env}\n",
        env = config.env.iter().map(|(k, v)| format!(" {k}={v}")).collect::<String>(),
        key = host_key.display(),
        dir = dir.display()
    );
    let config_path = dir.join("sshd_config");
    std::fs::write(&config_path, sshd_config).expect("sshd_config");
    std::fs::create_dir_all("/run/sshd").ok();
    let mut mount = match config.disk_mib {
        Some(mib) => format!("mount -t tmpfs -o size={mib}m cme-test-disk {} && ", disk.display()),
        None => String::new(),
    };
    // `ip netns exec` mounts a fresh sysfs, without this machine's cgroup file systems: a
    // container runtime in the host would find none. They are mounted again there.
    mount.push_str(&cgroup_mounts());
    let hidden = dir.join("hidden");
    std::fs::write(&hidden, "").expect("the hiding file");
    for tool in &config.hidden_tools {
        mount.push_str(&format!("mount --bind {} {tool} && ", hidden.display()));
    }
    assert!(
        !config.clock_settable || config.stand_ins.iter().any(|(name, _)| name == "date"),
        "a settable clock only with a stand-in date"
    );
    let drop_sys_time: &[&str] = if config.clock_settable {
        &[]
    } else {
        &["setpriv", "--bounding-set", "-sys_time", "--inh-caps", "-sys_time", "--"]
    };
    let child = Command::new("ip")
        .args(["netns", "exec", netns])
        .args(drop_sys_time)
        .args(["sh", "-c", &format!("{mount}exec /usr/sbin/sshd -D -e -f {}", config_path.display())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("sshd.log")).expect("sshd.log"))
        .spawn()
        .expect("sshd starts in the namespace");
    let started = Instant::now();
    let socket = std::net::SocketAddr::new(address.parse().expect("an IPv4 address"), port);
    while std::net::TcpStream::connect_timeout(&socket, Duration::from_secs(1)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the test host's sshd did not start: {}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Shell commands mounting this machine's cgroup file systems again where they are (from
/// `/proc/self/mountinfo`), each followed by `&& `.
fn cgroup_mounts() -> String {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut commands = String::new();
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else { continue };
        let (point, fstype, options) = (fields[4], fields.get(dash + 1).copied(), fields.get(dash + 3).copied());
        if !point.starts_with("/sys/fs/cgroup") {
            continue;
        }
        let options: Vec<&str> = options.unwrap_or("").split(',').filter(|o| !matches!(*o, "rw" | "ro")).collect();
        let command = match fstype {
            Some("tmpfs") if point == "/sys/fs/cgroup" => {
                "mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup".to_string()
            }
            Some("cgroup2") => format!("mkdir -p {point} && mount -t cgroup2 cgroup2 {point}"),
            Some("cgroup") => {
                // A named hierarchy without controllers needs `none`.
                let only_name = options.iter().all(|o| o.starts_with("name="));
                let options = if only_name { format!("none,{}", options.join(",")) } else { options.join(",") };
                format!("mkdir -p {point} && mount -t cgroup -o {options} cgroup {point}")
            }
            _ => continue,
        };
        commands.push_str(&command);
        commands.push_str(" && ");
    }
    commands
}

/// A /30 in 10.213.0.0/16 no interface here has yet: (the host's address, ours).
fn free_subnet(id: u32) -> (String, String) {
    let taken =
        String::from_utf8_lossy(&Command::new("ip").args(["-o", "-4", "addr"]).output().expect("ip addr").stdout)
            .into_owned();
    (0..16_384u32)
        .map(|k| (id.wrapping_mul(2_654_435_761).wrapping_add(k)) % 16_384)
        .map(|slot| (slot * 4 + 1, slot * 4 + 2))
        .map(|(ours, theirs)| {
            let dotted = |n: u32| format!("10.213.{}.{}", n >> 8, n & 0xff);
            (dotted(theirs), dotted(ours))
        })
        .find(|(_, ours)| !taken.contains(&format!(" {ours}/")))
        .expect("a free /30 in 10.213.0.0/16")
}

fn run(command: &[&str]) {
    let output = Command::new(command[0]).args(&command[1..]).output().expect(command[0]);
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh(host: &TestHost, key: &Path, command: &str) -> Output {
        Command::new("ssh")
            .args([
                "-i",
                &key.to_string_lossy(),
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "BatchMode=yes", "-p", &host.port.to_string(), &format!("root@{}", host.address), command])
            .output()
            .expect("ssh runs")
    }

    #[test]
    fn a_fault_made_on_a_test_host_stays_in_its_namespaces() {
        if !available() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let host_key = sshd::ed25519(dir.path(), "host_key");
        let client = sshd::ed25519(dir.path(), "client_key");
        let config = TestHostConfig {
            disk_mib: Some(8),
            stand_ins: vec![("cme-stand-in".into(), "#!/bin/sh\necho standing in\n".into())],
            hidden_tools: vec!["/usr/bin/getent".into()],
            ..TestHostConfig::default()
        };
        let host = TestHost::start(dir.path(), &host_key, &[&client], config);
        let machine_hosts = std::fs::read("/etc/hosts").unwrap();
        let machine_rules =
            Command::new("sh").args(["-c", "iptables-save 2>/dev/null | grep -v '^#'"]).output().unwrap().stdout;
        let before = host.snapshot();

        let made = ssh(
            &host,
            &client,
            &format!(
                "cme-stand-in && ! [ -x \"$(command -v getent)\" ] && echo '10.9.9.9 cme-isolated' >> /etc/hosts && grep cme-isolated /etc/hosts && \
                 head -c 1048576 /dev/zero > {disk}/f && df -k {disk} | tail -1 && \
                 if command -v iptables >/dev/null; then iptables -I INPUT -p tcp --dport 9 -j DROP; fi; \
                 date -s @0 2>&1; echo date $?",
                disk = host.disk.display()
            ),
        );
        let said = String::from_utf8_lossy(&made.stdout);
        assert!(made.status.success(), "{said}{}\n{}", String::from_utf8_lossy(&made.stderr), host.sshd_log());
        assert!(said.contains("standing in"), "stand-ins come first on PATH: {said}");
        assert!(said.contains("10.9.9.9"), "the host resolves through its own hosts file: {said}");
        assert!(said.contains("cme-test-disk"), "the disk is the host's tmpfs: {said}");
        assert!(said.contains("Operation not permitted") && !said.contains("date 0"), "no clock to set: {said}");
        assert_ne!(host.snapshot(), before, "the faults are seen on the host");

        assert_eq!(std::fs::read("/etc/hosts").unwrap(), machine_hosts, "this machine's /etc/hosts is untouched");
        let rules =
            Command::new("sh").args(["-c", "iptables-save 2>/dev/null | grep -v '^#'"]).output().unwrap().stdout;
        assert_eq!(rules, machine_rules, "this machine's firewall is untouched");
        assert!(!dir.path().join("disk/f").exists(), "the file is on the host's tmpfs, not this machine's disk");
        let year = Command::new("date").arg("+%Y").output().unwrap().stdout;
        assert_ne!(year, b"1970\n", "this machine's clock is untouched");
    }
}
