//! The shipped scripts, run for real where this machine supports them.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cme_cloud::scripts::{ScriptLibrary, embedded};

fn script(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cme-script-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, ScriptLibrary::default().read(name).unwrap()).unwrap();
    path
}

fn run(name: &str, args: &[&str]) -> Output {
    Command::new("sh").arg(script(name)).args(args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn every_script_passes_shellcheck_and_documents_itself() {
    let have_shellcheck = Command::new("shellcheck").arg("--version").output().is_ok();
    if !have_shellcheck {
        cme_test_peers::missing_peer("shellcheck", "apt-get install shellcheck");
    }
    let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../script_attacks"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".sh"))
        .count();
    assert_eq!(embedded().count(), on_disk, "every script of script_attacks/ ships");
    for (name, bytes) in embedded() {
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(text.starts_with("#!/bin/sh\n"), "{name}");
        for header in ["Usage:", "Duration:", "Undo:"] {
            assert!(text.contains(header), "{name} lacks {header}");
        }
        if have_shellcheck {
            let output = Command::new("shellcheck").arg(script(name)).output().unwrap();
            assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stdout));
        }
    }
}

#[test]
fn s_empty_writes_its_marker() {
    let marker = std::env::temp_dir().join(format!("cme-marker-{}", std::process::id()));
    let output = run("s_empty.sh", &[marker.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(std::fs::read_to_string(&marker).unwrap().starts_with("cme smoke test ran at "));
    std::fs::remove_file(marker).unwrap();
}

#[test]
fn s_kill_process_kills_the_named_process_only() {
    // A copy of sleep under a name nothing else on the machine has.
    let name = format!("cmevictim{}", std::process::id() % 100_000);
    let victim = std::env::temp_dir().join(&name);
    std::fs::copy("/bin/sleep", &victim).unwrap();
    let mut child = Command::new(&victim).arg("300").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let output = run("s_kill_process.sh", &[&name]);
    assert!(output.status.success(), "{}", stderr(&output));
    let status = child.wait().unwrap();
    assert!(!status.success(), "the victim was killed");
    let again = run("s_kill_process.sh", &[&name]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("no process named"));
    std::fs::remove_file(victim).unwrap();
}

#[test]
fn s_burncpu_burns_for_the_given_time_and_stops() {
    let started = Instant::now();
    let output = run("s_burncpu.sh", &["2", "1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "burned 1 CPU(s) for 2 s");
    assert_eq!(run("s_burncpu.sh", &["lots"]).status.code(), Some(2));
}

#[test]
fn s_filldisk_fills_then_removes_its_file() {
    let dir = tempdir();
    // On a disk of its own (a 1200 MiB tmpfs in a mount namespace of its own), so that the
    // floor max(1 GiB, 5 %) depends on nothing this machine holds.
    let unshared = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o size=1200m cme-fill {0} && sh {1} 2 0 {0} && ls -A {0} | wc -l",
            dir.display(),
            script("s_filldisk.sh").display()
        ))
        .output()
        .unwrap();
    if !unshared.status.success() && stderr(&unshared).contains("unshare") {
        cme_test_peers::missing_peer("root and unshare (util-linux) for a private tmpfs", "run as root");
        return;
    }
    assert!(unshared.status.success(), "{}", stderr(&unshared));
    let said = String::from_utf8_lossy(&unshared.stdout);
    assert!(said.contains("holding 2 MB"), "{said}");
    assert!(said.trim_end().ends_with('0'), "the file is gone: {said}");
    assert_eq!(run("s_filldisk.sh", &["1", "0", "/nonexistent-dir"]).status.code(), Some(2));
    // More than the disk has less max(1 GiB, 5 %): refused before anything is written.
    let greedy = run("s_filldisk.sh", &["1000000000", "0", dir.to_str().unwrap()]);
    assert_eq!(greedy.status.code(), Some(3), "{}", stderr(&greedy));
    assert!(stderr(&greedy).contains("would leave less than max(1 GiB, 5 %)"), "{}", stderr(&greedy));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing written");
}

#[test]
fn network_scripts_apply_and_undo_or_say_what_is_missing() {
    for name in ["s_network_latency.sh", "s_network_loss.sh"] {
        let output = run(name, &["1", "1", "lo"]);
        match output.status.code() {
            // netem present and root: applied for a second, then removed.
            Some(0) => {}
            Some(3) => assert!(stderr(&output).contains("sch_netem"), "{name}: {}", stderr(&output)),
            other => panic!("{name}: exit {other:?}: {}", stderr(&output)),
        }
    }
    let output = run("s_blackhole_port.sh", &["9", "1"]);
    match output.status.code() {
        Some(0) => {}
        Some(3) => assert!(stderr(&output).contains("iptables"), "{}", stderr(&output)),
        other => panic!("s_blackhole_port.sh: exit {other:?}: {}", stderr(&output)),
    }
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cme-fill-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}
