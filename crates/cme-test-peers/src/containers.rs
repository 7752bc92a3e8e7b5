//! A private Podman for container fault tests: its own config (runc, cgroupfs, ulimits a
//! sandboxed machine allows), its own storage (vfs under the test's directory), a busybox
//! image imported from Debian's busybox-static (no registry is reachable), containers on
//! `--network none` (no bridge, no firewall rule on this machine), and optionally its
//! Docker-compatible socket (`podman system service`) for the `docker` CLI.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The image every test container runs.
pub const IMAGE: &str = "localhost/cme-busybox:test";

/// Whether podman (with runc) and busybox-static are installed; under
/// `CME_REQUIRE_PEERS=1` their absence fails the test.
pub fn available() -> bool {
    let present = ["podman", "runc"].iter().all(|tool| {
        Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
    }) && Path::new("/bin/busybox").exists();
    if !present {
        crate::missing_peer("podman, runc or busybox-static", "apt-get install podman runc busybox-static");
    }
    present
}

/// A private Podman; its service (if started) is stopped and its containers removed on drop.
pub struct Podman {
    /// The environment every podman (and the `docker` CLI) call needs.
    pub env: Vec<(String, String)>,
    dir: PathBuf,
    service: std::sync::Mutex<Option<Child>>,
}

impl Podman {
    /// Configures a Podman under `dir` and imports the busybox image.
    pub fn start(dir: &Path) -> Podman {
        std::fs::create_dir_all(dir).expect("podman's directory");
        let conf = dir.join("containers.conf");
        std::fs::write(
            &conf,
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\nnetns = \"none\"\n\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .expect("containers.conf");
        let storage = dir.join("storage.conf");
        std::fs::write(
            &storage,
            format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/graph\"\nrunroot = \"{0}/run\"\n", dir.display()),
        )
        .expect("storage.conf");
        let env = vec![
            ("CONTAINERS_CONF".to_string(), conf.display().to_string()),
            ("CONTAINERS_STORAGE_CONF".to_string(), storage.display().to_string()),
            ("DOCKER_HOST".to_string(), format!("unix://{}/docker.sock", dir.display())),
        ];
        let podman = Podman { env, dir: dir.to_path_buf(), service: std::sync::Mutex::new(None) };
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).expect("rootfs");
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox");
        for applet in ["sh", "sleep"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).expect("applet");
        }
        // The root file system as a tar on disk (podman import reads it), then imported.
        let tar = dir.join("rootfs.tar");
        let packed = Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".").output().expect("tar");
        assert!(packed.status.success(), "tar: {}", String::from_utf8_lossy(&packed.stderr));
        podman.run(&["import", &tar.to_string_lossy(), IMAGE]);
        podman
    }

    /// `podman` with this Podman's environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    /// Runs podman with `args`; asserts success and returns its trimmed output.
    pub fn run(&self, args: &[&str]) -> String {
        let output = self.command().args(args).output().expect("podman runs");
        assert!(output.status.success(), "podman {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Starts a container `name` (sleeping, on no network, ending at once on TERM) with
    /// `labels`; returns its id.
    pub fn container(&self, name: &str, labels: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--network", "none", "--name", name];
        for label in labels {
            args.extend(["--label", label]);
        }
        // As PID 1 the shell ends on TERM only with a handler: a stop then takes no grace.
        args.extend([IMAGE, "/bin/sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]);
        self.run(&args)
    }

    /// The container's state (`running`, `paused`, `exited`).
    pub fn state(&self, name: &str) -> String {
        self.run(&["inspect", "-f", "{{.State.Status}}", name])
    }

    /// Serves the Docker-compatible API on `DOCKER_HOST` for the `docker` CLI.
    pub fn serve_docker_api(&self) {
        let socket = self.dir.join("docker.sock");
        let child = self
            .command()
            .args(["system", "service", "--time", "0"])
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("service.log")).expect("service.log"))
            .spawn()
            .expect("podman system service");
        let started = Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "podman's Docker API did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        *self.service.lock().unwrap() = Some(child);
    }

    /// Stops the Docker API (a daemon gone, as the `docker` CLI sees it).
    pub fn service_stop(&self) {
        if let Some(mut service) = self.service.lock().unwrap().take() {
            let _ = service.kill();
            let _ = service.wait();
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.command().args(["rm", "-a", "-f", "-t", "0"]).output();
        self.service_stop();
    }
}
