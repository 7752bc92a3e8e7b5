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

    /// Fills the file system until the kernel answers ENOSPC.
    pub fn fill(&self) -> anyhow::Result<()> {
        use std::io::Write;
        let mut file = std::fs::File::create(self.filler())?;
        let chunk = vec![0u8; 256 * 1024];
        loop {
            match file.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => return Ok(()),
                Err(e) => anyhow::bail!("filling the disk: {e}"),
            }
        }
    }

    /// Frees what `fill` took, durably: the unlink is committed to ext4's journal before
    /// this returns. Left in the journal's 5-second commit window, an error trigger that
    /// follows (the read-only fault) aborts the journal, and after the repair the filler is
    /// back and the disk full for good (a clean-clone `.ci/run` lost every event after it).
    pub fn unfill(&self) -> anyhow::Result<()> {
        std::fs::remove_file(self.filler())?;
        // fsync on an ext4 directory commits the running journal transaction.
        std::fs::File::open(self.inside(&self.mount))?
            .sync_all()
            .context("fsync of the disk's root after the unlink")?;
        Ok(())
    }

    fn filler(&self) -> PathBuf {
        self.inside(&self.mount.join("filler"))
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
        self.mount_image()?;
        // A fault the harness reverted stays reverted.
        anyhow::ensure!(!self.filler().exists(), "the disk-full filler came back with the repair");
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_disk_stays_freed_through_an_error_and_its_repair() {
        let dir = tempfile::tempdir().unwrap();
        let disk = match SmallDisk::create(&dir.path().join("disk"), 16) {
            Ok(disk) => disk,
            Err(e) if !cme_test_peers::peers_required() => {
                eprintln!("skipped: no small disk here (needs root, util-linux, e2fsprogs): {e:#}");
                return;
            }
            Err(e) => panic!("CME_REQUIRE_PEERS=1 and no small disk: {e:#}"),
        };
        disk.fill().unwrap();
        disk.unfill().unwrap();
        // At once, inside ext4's 5-second journal commit window: the read-only fault.
        disk.trigger_error().unwrap();
        assert!(disk.read_only(), "the error trigger turned the disk read-only: {}", disk.mount_line());
        disk.repair().expect("repaired, without the filler");
        assert!(!disk.read_only());
        let free = std::fs::File::create(disk.inside(&disk.mount.join("probe")))
            .and_then(|mut probe| std::io::Write::write_all(&mut probe, &[0u8; 1 << 20]));
        assert!(free.is_ok(), "a megabyte fits on the freed disk: {free:?}");
    }
}
