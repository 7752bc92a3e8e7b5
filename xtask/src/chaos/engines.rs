//! The engines under test: `cme serve` processes the harness starts, kills, pauses and
//! restarts, each logging to a file of its own; optionally under libfaketime (a clock the
//! harness steps through a timestamp file) and inside a mount namespace of its own (a
//! small ext4 image for its SQLite file).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// Debian's libfaketime.
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// How to start one engine (kept for its restarts).
#[derive(Clone)]
pub struct Recipe {
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub database_url: String,
    pub config: PathBuf,
    /// A timestamp file for libfaketime (its offset, `+0` when not stepped).
    pub clock: Option<PathBuf>,
    /// A mount namespace to run in (the pid of its holder, see [`SmallDisk`]).
    pub namespace: Option<u32>,
}

/// A small ext4 file system (a loop-mounted image, `errors=remount-ro`) in a mount
/// namespace of its own, held by a sleeping process so that it outlives engine restarts;
/// the machine's mounts never see it. It fills up (ENOSPC), and its error trigger turns it
/// read-only until it is checked (`e2fsck -fy`) and mounted again.
pub struct SmallDisk {
    holder: Child,
    pub mount: PathBuf,
    image: PathBuf,
}

impl SmallDisk {
    pub fn create(mount: &Path, megabytes: u32) -> anyhow::Result<SmallDisk> {
        std::fs::create_dir_all(mount)?;
        let image = mount.with_extension("img");
        std::fs::File::create(&image)?.set_len(u64::from(megabytes) << 20)?;
        let made =
            Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image).output().context("mkfs.ext4 (e2fsprogs)")?;
        anyhow::ensure!(made.status.success(), "mkfs.ext4: {}", String::from_utf8_lossy(&made.stderr));
        let holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sleep", "infinity"])
            .stdin(Stdio::null())
            .spawn()
            .context("unshare --mount (needs root and util-linux)")?;
        let disk = SmallDisk { holder, mount: mount.to_path_buf(), image };
        disk.until_unshared()?;
        disk.mount_image()?;
        Ok(disk)
    }

    /// Waits until the holder runs in a mount namespace of its own. Right after the spawn
    /// `unshare` may not have called unshare(2) yet: a mount made through it then would
    /// land in the machine's namespace (and stay there).
    fn until_unshared(&self) -> anyhow::Result<()> {
        let ours = std::fs::read_link("/proc/self/ns/mnt")?;
        for _ in 0..500 {
            let theirs = std::fs::read_link(format!("/proc/{}/ns/mnt", self.pid()));
            if theirs.is_ok_and(|theirs| theirs != ours) {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        anyhow::bail!("unshare --mount did not give its process a mount namespace of its own in 5 s")
    }

    /// Mounts the image at the mount point, inside the namespace.
    pub fn mount_image(&self) -> anyhow::Result<()> {
        let options = "loop,errors=remount-ro";
        let mounted =
            self.nsenter(&["mount", "-o", options, &self.image.to_string_lossy(), &self.mount.to_string_lossy()])?;
        anyhow::ensure!(mounted.status.success(), "mount: {}", String::from_utf8_lossy(&mounted.stderr));
        // Owner-only directories would keep nobody out here; the engine runs as root.
        Ok(())
    }

    /// Unmounts, repairs (`e2fsck -fy`) and mounts the image again.
    pub fn repair(&self) -> anyhow::Result<()> {
        let unmounted = self.nsenter(&["umount", &self.mount.to_string_lossy()])?;
        anyhow::ensure!(unmounted.status.success(), "umount: {}", String::from_utf8_lossy(&unmounted.stderr));
        // 0: clean, 1: errors corrected.
        let checked = Command::new("e2fsck").args(["-fy"]).arg(&self.image).output()?;
        anyhow::ensure!(
            matches!(checked.status.code(), Some(0 | 1)),
            "e2fsck: {}",
            String::from_utf8_lossy(&checked.stdout)
        );
        self.mount_image()
    }

    /// Turns the file system read-only as an ext4 error would (its sysfs trigger).
    pub fn trigger_error(&self) -> anyhow::Result<()> {
        // The loop device mounted there now: after a repair the image may still be
        // attached to an earlier one too (`losetup -j` lists both), whose ext4 is not the
        // engine's.
        let line = self.mount_line();
        let device = line
            .lines()
            .filter_map(|l| l.split(" - ").nth(1)?.split_whitespace().nth(1))
            .filter_map(|source| source.strip_prefix("/dev/"))
            .next_back()
            .context("no loop device mounted for the SQLite file")?;
        std::fs::write(format!("/sys/fs/ext4/{device}/trigger_fs_error"), "cme chaos\n")
            .context("ext4's trigger_fs_error")?;
        Ok(())
    }

    /// The namespace's mountinfo line(s) of the image's mount point.
    pub fn mount_line(&self) -> String {
        let mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", self.pid())).unwrap_or_default();
        let point = format!(" {} ", self.mount.display());
        mounts.lines().filter(|l| l.contains(&point)).collect::<Vec<_>>().join("\n")
    }

    /// Whether the namespace's mount of the image is read-only.
    pub fn read_only(&self) -> bool {
        self.mount_line()
            .lines()
            // The mount's options, or the super block's (after " - "): an ext4 error
            // turns the latter read-only (`ro`, or `emergency_ro` on newer kernels).
            .any(|l| {
                l.split_whitespace()
                    .flat_map(|field| field.split(','))
                    .any(|option| matches!(option, "ro" | "emergency_ro"))
            })
    }

    fn nsenter(&self, command: &[&str]) -> anyhow::Result<std::process::Output> {
        Ok(Command::new("nsenter").args(["-t", &self.pid().to_string(), "-m", "--"]).args(command).output()?)
    }

    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// `path` (under the mount point) as the namespace sees it.
    pub fn inside(&self, path: &Path) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{}", self.pid(), path.display()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

pub struct EngineProc {
    pub recipe: Recipe,
    child: Option<Child>,
    pub url: Option<String>,
    pub log: PathBuf,
}

impl EngineProc {
    pub fn new(recipe: Recipe, index: usize) -> EngineProc {
        let log = recipe.dir.join(format!("engine-{index}.log"));
        EngineProc { recipe, child: None, url: None, log }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The engine's log file and how it starts: what [`launch`] needs, taken under a
    /// lock that must not be held while an engine starts.
    pub fn plan(&self) -> (Recipe, PathBuf) {
        (self.recipe.clone(), self.log.clone())
    }

    /// Takes a launched engine in.
    pub fn install(&mut self, (child, url): (Child, String)) {
        self.child = Some(child);
        self.url = Some(url);
    }

    /// Takes the process out (to wait for it without holding a lock); its URL is gone.
    pub fn take(&mut self) -> Option<Child> {
        self.url = None;
        self.child.take()
    }

    /// Sends `signal` (`-KILL`, `-TERM`, `-STOP`, `-CONT`).
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("not running")?;
        let status = Command::new("kill").args([signal, &pid.to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
        Ok(())
    }

    /// The process state letter of `/proc/PID/stat` (`T` when stopped).
    pub fn state(&self) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        stat.rsplit_once(')')?.1.trim().chars().next()
    }
}

/// Starts an engine and waits (blocking, up to two minutes) for its listening line.
pub fn launch(recipe: &Recipe, log: &Path) -> anyhow::Result<(Child, String)> {
    let mut command = match recipe.namespace {
        Some(holder) => {
            let mut command = Command::new("nsenter");
            command.args(["-t", &holder.to_string(), "-m", "--"]).arg(&recipe.binary);
            command
        }
        None => Command::new(&recipe.binary),
    };
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &recipe.database_url, "--config"])
        .arg(&recipe.config)
        .arg("--cache-dir")
        .arg(std::env::temp_dir().join("cme-chaos-artifacts"))
        .current_dir(&recipe.dir)
        .env("RUST_LOG", "warn,cme=info")
        .stdout(Stdio::piped())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(log)?);
    if let Some(clock) = &recipe.clock {
        command
            .env("LD_PRELOAD", LIBFAKETIME)
            .env("FAKETIME_TIMESTAMP_FILE", clock)
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .env("FAKETIME_CACHE_DURATION", "1");
    }
    let mut child = command.spawn().context("starting cme")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_default();
    let Some(url) = line.trim().strip_prefix("cme listening on ") else {
        let _ = child.kill();
        let status = child.wait()?;
        bail!("the engine did not start ({status}): {line:?}; see {}", log.display());
    };
    Ok((child, url.to_string()))
}

impl Drop for EngineProc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
