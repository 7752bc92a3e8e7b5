//! The host fault attacks through the real `cme` binary, against isolated test hosts:
//! each an sshd in a network and mount namespace of its own (`cme_test_peers::testhost`),
//! so that a full disk, an `/etc/hosts` entry or a stepped clock lands there and never on
//! this machine. Each fault is checked while it is held (the workers' CPU time and memory,
//! the file's size, `getent hosts` in the namespace, the stand-in clock) and after its undo:
//! the host's firewall, qdiscs, hosts file bytes, disk and processes exactly as before.
//! The stress attacks run once with stress-ng and once on a host that lacks it (the shell
//! fallback). The real clock is never set: `time_skew` succeeds only against a stand-in
//! `date` and `chronyc`, and is refused, saying why, on a host without CAP_SYS_TIME.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use cme_test_peers::sshd::ed25519 as keygen;
use cme_test_peers::testhost::{self, TestHost, TestHostConfig};

use crate::inventories::{undo_of, wait_for};
use crate::support::*;

/// Test hosts named in one inventory (`hosts`, each host tagged `box: NAME`), with the
/// client key authorized for root on each.
struct HostRig {
    dir: tempfile::TempDir,
    client_key: PathBuf,
    hosts: Vec<(String, TestHost)>,
}

impl HostRig {
    fn start(configs: Vec<(&str, TestHostConfig)>) -> Option<HostRig> {
        if !testhost::available() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let host_key = keygen(dir.path(), "host_key");
        let client_key = keygen(dir.path(), "client_key");
        let hosts = configs
            .into_iter()
            .map(|(name, config)| {
                let home = dir.path().join(name);
                std::fs::create_dir_all(&home).unwrap();
                (name.to_string(), TestHost::start(&home, &host_key, &[&client_key], config))
            })
            .collect();
        Some(HostRig { dir, client_key, hosts })
    }

    fn host(&self, name: &str) -> &TestHost {
        &self.hosts.iter().find(|(n, _)| n == name).expect("a host of the rig").1
    }

    async fn engine(&self) -> (Engine, Api) {
        let home = self.dir.path().join("engine");
        std::fs::create_dir_all(&home).unwrap();
        let config = format!(
            "[ssh]\nknown_hosts = \"{}\"\nhost_key_policy = \"accept-new\"\n",
            self.dir.path().join("known_hosts").display()
        );
        let engine = Engine::start(&home, Backend::Sqlite, Options { config: Some(config), ..Options::default() });
        let api = engine.client();
        let key = std::fs::read_to_string(&self.client_key).unwrap();
        let created =
            api.post("/api/1/credentials/", &json!({"name": "root", "user": "root", "private_key": key})).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let hosts: String = self
            .hosts
            .iter()
            .map(|(name, host)| {
                format!("        {name}:\n          ansible_host: {}\n          box: {name}\n", host.address)
            })
            .collect();
        let yaml = format!(
            "all:\n  vars:\n    cme_credential: root\n    ansible_port: 22\n  children:\n    hosts:\n      hosts:\n{hosts}"
        );
        let imported = api
            .raw(reqwest::Method::POST, "/api/1/inventories/", Some(yaml.into_bytes()), Some("application/yaml"))
            .await;
        assert_eq!(imported.status, 201, "{:?}", imported.body);
        (engine, api)
    }
}

/// `attack` aimed at the rig's host `name`.
fn at(name: &str, reference: &str, mut args: Value) -> Value {
    args["target"] = json!({"inventory": "hosts", "tags": {"box": name}});
    json!({"ref": reference, "args": args})
}

/// Runs `attack`, asserts it succeeded, and returns its executor id.
async fn made(api: &Api, engine: &Engine, attack: Value) -> String {
    let done = api.run_once(attack, false).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", engine.stderr());
    done["id"].as_str().unwrap().to_string()
}

/// Runs `attack`, asserts it was refused with an error containing `says`, before any undo
/// was armed.
async fn refused(api: &Api, attack: Value, says: &str) {
    let done = api.run_once(attack, false).await;
    assert_eq!(done["status"], "failed", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(error.contains(says), "{error:?} does not say {says:?}");
    assert!(undo_of(api, done["id"].as_str().unwrap()).await.is_null(), "nothing armed: {done}");
}

/// Waits for the run's undo to have run, successfully.
async fn reverted(api: &Api, executor: &str) {
    wait_for("the undo", async || {
        let undo = undo_of(api, executor).await;
        assert!(undo["state"] != "failed", "{undo}");
        undo["state"] == "done"
    })
    .await;
    let undo = undo_of(api, executor).await;
    assert_eq!(undo["outcome"], "exit 0", "{undo}");
}

/// The CPU ticks (user + system) and resident KiB of the host's processes besides sshd's.
fn usage(host: &TestHost) -> (u64, u64) {
    let mut ticks = 0;
    let mut rss = 0;
    for pid in host.pids() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "sshd" {
            continue;
        }
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
            ticks += fields.get(11).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
            ticks += fields.get(12).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        rss += status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
    }
    (ticks, rss)
}

/// The stress hosts: one with stress-ng, one without (the shell fallback).
fn stress_rig() -> Option<HostRig> {
    let disk = || TestHostConfig { disk_mib: Some(1200), ..TestHostConfig::default() };
    let without = TestHostConfig { hidden_tools: vec!["/usr/bin/stress-ng".into()], ..disk() };
    HostRig::start(vec![("ng", disk()), ("sh", without)])
}

#[tokio::test]
async fn cpu_and_memory_stress_load_the_host_and_their_undo_leaves_no_worker_behind() {
    let Some(rig) = stress_rig() else { return };
    let (engine, api) = rig.engine().await;
    for name in ["ng", "sh"] {
        let host = rig.host(name);
        let before = host.snapshot();
        let (ticks, _) = usage(host);
        let stat_before = std::fs::read_to_string("/proc/stat").unwrap();
        let cpu =
            made(&api, &engine, at(name, "cpu_stress:CpuStress", json!({"cores": 1, "duration_seconds": 4}))).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (busy, _) = usage(host);
        let stat_after = std::fs::read_to_string("/proc/stat").unwrap();
        // One worker, busy: at least a fifth of a CPU in 1.5 s on a loaded 2-core machine.
        assert!(busy - ticks >= 30, "{name}: the worker used {} ticks\n{stat_before}\n{stat_after}", busy - ticks);
        reverted(&api, &cpu).await;
        assert_eq!(host.snapshot(), before, "{name}: the host is as it was after the CPU stress");

        let memory =
            made(&api, &engine, at(name, "memory_stress:MemoryStress", json!({"mib": 96, "duration_seconds": 5})))
                .await;
        let mut held = 0;
        for _ in 0..40 {
            held = usage(host).1;
            if held >= 80 * 1024 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(held >= 80 * 1024, "{name}: the worker holds {held} KiB of the 96 MiB asked");
        reverted(&api, &memory).await;
        assert_eq!(host.snapshot(), before, "{name}: the host is as it was after the memory stress");
    }
    // More than may be taken while leaving max(256 MiB, 10 %) available: refused, naming it.
    refused(
        &api,
        at("ng", "memory_stress:MemoryStress", json!({"percent": 100, "duration_seconds": 5})),
        "would leave less than max(256 MiB, 10 %)",
    )
    .await;
    // The undo, armed before the workers, also ends them on a halt.
    let host = rig.host("ng");
    let before = host.snapshot();
    let long =
        made(&api, &engine, at("ng", "cpu_stress:CpuStress", json!({"cores": 1, "duration_seconds": 600}))).await;
    assert_ne!(host.snapshot(), before, "the worker runs");
    assert_eq!(api.post("/api/1/halt", &json!({})).await.status, 200);
    reverted(&api, &long).await;
    assert_eq!(host.snapshot(), before, "halting ended the worker");
}

#[tokio::test]
async fn io_stress_writes_under_its_path_and_its_undo_removes_the_workers_and_their_files() {
    let Some(rig) = stress_rig() else { return };
    let (engine, api) = rig.engine().await;
    for name in ["ng", "sh"] {
        let host = rig.host(name);
        let disk = host.disk.display().to_string();
        let before = host.snapshot();
        // stress-ng unlinks its files as it opens them: what shows is the disk's use and the
        // run's directory.
        let used =
            || host.exec_ok(&format!("df -Pk {disk} | awk 'NR == 2 {{ print $3 }}'")).trim().parse::<u64>().unwrap();
        let idle = used();
        let args = json!({"workers": 1, "bytes": 16 << 20, "path": disk, "duration_seconds": 4});
        let io = made(&api, &engine, at(name, "io_stress:IoStress", args)).await;
        let mut most = used();
        for _ in 0..30 {
            most = most.max(used());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            most >= idle + 1024,
            "{name}: the worker wrote at least 1 MiB on the disk: {idle} KiB, then at most {most} KiB"
        );
        let dirs = host.exec_ok(&format!("ls {disk}"));
        assert!(dirs.contains("cme-io-stress-"), "{name}: under its run's directory: {dirs:?}");
        reverted(&api, &io).await;
        assert_eq!(host.snapshot(), before, "{name}: no worker and no file left");
    }
    // Writers that would leave less than max(1 GiB, 5 %) free are refused.
    let disk = rig.host("ng").disk.display().to_string();
    let big = json!({"workers": 4, "bytes": 64u64 << 20, "path": disk, "duration_seconds": 4});
    refused(&api, at("ng", "io_stress:IoStress", big), "would leave less than max(1 GiB, 5 %)").await;
}

#[tokio::test]
async fn disk_fill_fills_the_hosts_disk_within_its_floor_and_its_undo_removes_the_file() {
    let Some(rig) = HostRig::start(vec![("box", TestHostConfig { disk_mib: Some(1200), ..TestHostConfig::default() })])
    else {
        return;
    };
    let (engine, api) = rig.engine().await;
    let host = rig.host("box");
    let disk = host.disk.display().to_string();
    let before = host.snapshot();
    let fill = made(
        &api,
        &engine,
        at("box", "disk_fill:DiskFill", json!({"path": disk, "bytes": 100 << 20, "duration_seconds": 3})),
    )
    .await;
    let sizes = host.exec_ok(&format!("stat -c '%n %s' {disk}/cme-disk-fill-*"));
    assert!(sizes.trim().ends_with(&format!(" {}", 100 << 20)), "the file holds 100 MiB: {sizes}");
    reverted(&api, &fill).await;
    assert_eq!(host.snapshot(), before, "the file is gone");

    // 1200 MiB: at most 176 MiB may be taken while leaving 1 GiB free.
    refused(
        &api,
        at("box", "disk_fill:DiskFill", json!({"path": disk, "percent": 90, "duration_seconds": 3})),
        "would leave less than max(1 GiB, 5 %) = 1024 MiB free",
    )
    .await;
    refused(
        &api,
        at("box", "disk_fill:DiskFill", json!({"path": disk, "leave_free_mib": 10, "duration_seconds": 3})),
        "would leave less than",
    )
    .await;
    refused(
        &api,
        at("box", "disk_fill:DiskFill", json!({"path": "/nonexistent/dir", "bytes": 1, "duration_seconds": 3})),
        "there is no directory /nonexistent/dir",
    )
    .await;
    // Filled up to leave 1100 MiB free: 100 MiB.
    let leave = made(
        &api,
        &engine,
        at("box", "disk_fill:DiskFill", json!({"path": disk, "leave_free_mib": 1100, "duration_seconds": 3})),
    )
    .await;
    let free = host.exec_ok(&format!("df -Pk {disk} | awk 'NR == 2 {{ print $4 }}'"));
    assert_eq!(free.trim().parse::<u64>().unwrap() / 1024, 1100, "1100 MiB left free");
    reverted(&api, &leave).await;
    assert_eq!(host.snapshot(), before);
    // A dry run writes nothing.
    let dry = api
        .run_once(at("box", "disk_fill:DiskFill", json!({"path": disk, "bytes": 1 << 20, "duration_seconds": 3})), true)
        .await;
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert_eq!(host.snapshot(), before, "a dry run changed nothing");
}

#[tokio::test]
async fn dns_fault_points_names_elsewhere_and_its_undo_restores_the_hosts_file_byte_for_byte() {
    let Some(rig) = HostRig::start(vec![("box", TestHostConfig::default())]) else { return };
    let (engine, api) = rig.engine().await;
    let host = rig.host("box");
    // A last line without its newline, and an entry of the operator's own.
    let original = format!("127.0.0.1\tlocalhost\n{}\tbox\n10.1.1.1 db.internal", host.address);
    std::fs::write(host.hosts_file(), &original).unwrap();
    let before = host.snapshot();
    // `getent ahostsv4 NAME` and `ahostsv6`: one family each, answered by the files.
    let resolve = |query: &str| host.exec(&format!("getent {query}")).stdout;

    let redirect =
        json!({"names": ["api.example.com", "cache.internal"], "redirect_to": "10.2.2.2", "duration_seconds": 3});
    let pointed = made(&api, &engine, at("box", "dns_fault:DnsFault", redirect)).await;
    let hosts = std::fs::read_to_string(host.hosts_file()).unwrap();
    for name in ["api.example.com", "cache.internal"] {
        let v4 = String::from_utf8_lossy(&resolve(&format!("ahostsv4 {name}"))).into_owned();
        assert!(v4.starts_with("10.2.2.2"), "{name} pointed elsewhere: {v4:?}\n{hosts}");
        // Its IPv6 lookup is answered too (never by DNS, whose answer would be the real one).
        let v6 = String::from_utf8_lossy(&resolve(&format!("ahostsv6 {name}"))).into_owned();
        assert!(v6.starts_with("::"), "{name} has no IPv6 way around: {v6:?}");
    }
    let kept = String::from_utf8_lossy(&resolve("ahostsv4 db.internal")).into_owned();
    assert!(kept.starts_with("10.1.1.1"), "other entries kept: {kept:?}");
    assert!(
        std::fs::read_to_string("/etc/hosts").unwrap().lines().all(|l| !l.contains("cme-dns-fault")),
        "never this machine's"
    );
    reverted(&api, &pointed).await;
    assert_eq!(std::fs::read_to_string(host.hosts_file()).unwrap(), original, "byte for byte");
    assert_eq!(host.snapshot(), before);

    let unresolvable = made(
        &api,
        &engine,
        at("box", "dns_fault:DnsFault", json!({"names": ["api.example.com"], "duration_seconds": 3})),
    )
    .await;
    let v4 = String::from_utf8_lossy(&resolve("ahostsv4 api.example.com")).into_owned();
    let v6 = String::from_utf8_lossy(&resolve("ahostsv6 api.example.com")).into_owned();
    assert!(v4.starts_with("0.0.0.0") && v6.starts_with("::"), "unspecified both ways: {v4:?} {v6:?}");
    // An operator's edit while the fault is held is kept by the undo.
    std::fs::OpenOptions::new()
        .append(true)
        .open(host.hosts_file())
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"10.3.3.3 added.later\n"))
        .unwrap();
    reverted(&api, &unresolvable).await;
    let after = std::fs::read_to_string(host.hosts_file()).unwrap();
    assert!(
        !after.contains("cme-dns-fault")
            && after.contains("10.3.3.3 added.later")
            && after.contains("10.1.1.1 db.internal"),
        "{after}"
    );
}

/// A stand-in `date` keeping an offset to the real clock in a file beside it, and a
/// stand-in `chronyc` recording whether sync is online.
fn clock_stand_ins(dir: &std::path::Path) -> Vec<(String, String)> {
    let state = dir.display();
    let date = format!(
        "#!/bin/sh\n# A stand-in clock: the real one plus an offset kept in {state}/clock-offset.\n\
         off=$(cat {state}/clock-offset 2>/dev/null || echo 0)\n\
         case \"$1\" in\n\
         -s) t=${{2#@}}; echo $(( t - $(/bin/date +%s) )) > {state}/clock-offset; /bin/date -u -d \"@$t\";;\n\
         +%s) echo $(( $(/bin/date +%s) + off ));;\n\
         *) /bin/date -d \"@$(( $(/bin/date +%s) + off ))\" \"$@\";;\n\
         esac\n"
    );
    let chronyc = format!(
        "#!/bin/sh\necho \"$*\" >> {state}/chronyc.log\n\
         case \"$*\" in *tracking*) echo 'Reference ID    : 7F7F0101 (stand-in)';; *offline*) echo offline > {state}/sync;; *online*) echo online > {state}/sync;; esac\n"
    );
    vec![("date".into(), date), ("chronyc".into(), chronyc)]
}

#[tokio::test]
async fn time_skew_steps_a_stand_in_clock_with_sync_paused_and_is_refused_where_the_clock_cannot_be_set() {
    let state = tempfile::tempdir().unwrap();
    let settable =
        TestHostConfig { stand_ins: clock_stand_ins(state.path()), clock_settable: true, ..TestHostConfig::default() };
    let Some(rig) = HostRig::start(vec![("clock", settable), ("container", TestHostConfig::default())]) else { return };
    let (engine, api) = rig.engine().await;
    let offset = || {
        std::fs::read_to_string(state.path().join("clock-offset"))
            .unwrap_or_default()
            .trim()
            .parse::<i64>()
            .unwrap_or(0)
    };
    let sync = || std::fs::read_to_string(state.path().join("sync")).unwrap_or_default().trim().to_string();
    let year =
        || String::from_utf8(std::process::Command::new("/bin/date").arg("+%Y").output().unwrap().stdout).unwrap();
    let this_year = year();

    let skew =
        made(&api, &engine, at("clock", "time_skew:TimeSkew", json!({"offset_seconds": -7200, "duration_seconds": 3})))
            .await;
    assert!((offset() + 7200).abs() <= 1, "the stand-in clock is 2 h behind: {}", offset());
    assert_eq!(sync(), "offline", "chrony paused");
    reverted(&api, &skew).await;
    // The true time again, to the second: whole seconds of the clock and the uptime.
    assert!(offset().abs() <= 2, "stepped back: {}", offset());
    assert_eq!(sync(), "online", "chrony resumed");
    let log = std::fs::read_to_string(state.path().join("chronyc.log")).unwrap();
    assert!(log.contains("makestep"), "{log}");
    assert_eq!(year(), this_year, "this machine's clock never moved");

    // Without CAP_SYS_TIME (a container), the real date is never tried: refused, saying so.
    let container = rig.host("container");
    let before = container.snapshot();
    refused(
        &api,
        at("container", "time_skew:TimeSkew", json!({"offset_seconds": 3600, "duration_seconds": 3})),
        "the clock cannot be set on this host",
    )
    .await;
    assert_eq!(container.snapshot(), before);
}

#[tokio::test]
async fn a_partition_cuts_the_host_off_both_ways_never_from_the_engine_and_netem_faults_are_refused_without_netem() {
    let Some(rig) = HostRig::start(vec![("box", TestHostConfig::default())]) else { return };
    let (engine, api) = rig.engine().await;
    let host = rig.host("box");
    let before = host.snapshot();
    // A closed port answers at once (refused); cut off, the connection hangs.
    let reach =
        |address: &str| host.exec(&format!("timeout 2 bash -c '</dev/tcp/{address}/1' 2>/dev/null; echo $?")).stdout;
    assert_eq!(String::from_utf8_lossy(&reach("127.0.0.2")).trim(), "1", "refused before the partition");

    let partition = json!({"fault": "partition", "peers": ["127.0.0.2", "192.0.2.0/24"], "duration_seconds": 4});
    let cut = made(&api, &engine, at("box", "network_fault:NetworkFault", partition)).await;
    let rules = host.exec_ok("iptables-save");
    for rule in [
        "-A INPUT -s 127.0.0.2/32",
        "-A OUTPUT -d 127.0.0.2/32",
        "-A INPUT -s 192.0.2.0/24",
        "-A OUTPUT -d 192.0.2.0/24",
    ] {
        assert!(rules.lines().any(|l| l.starts_with(rule) && l.ends_with("-j DROP")), "{rule} in\n{rules}");
    }
    assert_eq!(String::from_utf8_lossy(&reach("127.0.0.2")).trim(), "124", "the connection hangs while cut off");
    reverted(&api, &cut).await;
    assert_eq!(host.snapshot(), before, "the rules are gone, and only they");
    assert_eq!(String::from_utf8_lossy(&reach("127.0.0.2")).trim(), "1");

    // Any network holding the engine's address as the host sees it could not be undone.
    for peers in [json!([format!("{}/30", host.engine_address)]), json!(["0.0.0.0/0"]), json!([host.engine_address])] {
        let partition = json!({"fault": "partition", "peers": peers, "duration_seconds": 4});
        refused(&api, at("box", "network_fault:NetworkFault", partition), "the engine's address as box sees it").await;
    }
    assert_eq!(host.snapshot(), before);

    // Corruption and duplication need netem, which this kernel lacks: refused, saying so,
    // and their undo (armed first) still runs and leaves the qdiscs as they were.
    for (fault, field) in [("corrupt", "corrupt_percent"), ("duplicate", "duplicate_percent")] {
        let mut args = json!({"fault": fault, "interface": "eth0", "duration_seconds": 3});
        args[field] = json!(5);
        let done = api.run_once(at("box", "network_fault:NetworkFault", args), false).await;
        let executor = done["id"].as_str().unwrap();
        let netem = host.exec_ok("tc qdisc show dev eth0").contains("netem") || done["status"] == "succeeded";
        if !netem {
            assert!(done["error"].as_str().unwrap_or_default().contains("the kernel lacks netem"), "{done}");
        }
        reverted(&api, executor).await;
        assert_eq!(host.snapshot(), before, "{fault}: the qdiscs are as they were");
    }
}

#[tokio::test]
async fn container_fault_stops_pauses_kills_and_restarts_through_podman_and_the_docker_cli_and_its_undo_restores_each()
{
    if !cme_test_peers::containers::available() {
        return;
    }
    let containers = tempfile::tempdir().unwrap();
    let podman = cme_test_peers::containers::Podman::start(containers.path());
    let docker_cli =
        std::process::Command::new("sh").args(["-c", "command -v docker"]).output().is_ok_and(|o| o.status.success());
    if docker_cli {
        podman.serve_docker_api();
    } else {
        cme_test_peers::missing_peer("the docker CLI", "apt-get install docker.io");
    }
    let config = TestHostConfig { env: podman.env.clone(), ..TestHostConfig::default() };
    let Some(rig) = HostRig::start(vec![("box", config)]) else { return };
    let (engine, api) = rig.engine().await;
    podman.container("cme-db", &["app=db"]);
    podman.container("cme-web-1", &["app=web"]);
    podman.container("cme-web-2", &["app=web"]);
    let states = || ["cme-db", "cme-web-1", "cme-web-2"].map(|name| podman.state(name));
    assert_eq!(states(), ["running", "running", "running"]);
    let fault = |args: Value| at("box", "container_fault:ContainerFault", args);

    // By name, through podman: stopped while held, started by the undo.
    let stop = made(
        &api,
        &engine,
        fault(json!({"runtime": "podman", "action": "stop", "name": "cme-db", "duration_seconds": 3})),
    )
    .await;
    assert_eq!(states(), ["exited", "running", "running"], "only cme-db stopped");
    reverted(&api, &stop).await;
    assert_eq!(states(), ["running", "running", "running"]);

    // By label, both of them, through the docker CLI on podman's Docker API.
    if docker_cli {
        let pause = fault(
            json!({"runtime": "docker", "action": "pause", "label": "app=web", "containers": 2, "duration_seconds": 3}),
        );
        let paused = made(&api, &engine, pause).await;
        assert_eq!(states(), ["running", "paused", "paused"], "both web containers paused");
        reverted(&api, &paused).await;
        assert_eq!(states(), ["running", "running", "running"]);
    }

    // By image, one of the three at random: killed, then started.
    let kill = fault(
        json!({"runtime": "podman", "action": "kill", "image": cme_test_peers::containers::IMAGE, "duration_seconds": 3}),
    );
    let killed = made(&api, &engine, kill).await;
    assert_eq!(states().iter().filter(|s| *s == "exited").count(), 1, "one killed: {:?}", states());
    reverted(&api, &killed).await;
    assert_eq!(states(), ["running", "running", "running"]);

    // A restart: nothing to undo, the container runs again with a new start.
    let started = || podman.run(&["inspect", "-f", "{{.State.StartedAt}}", "cme-db"]);
    let first = started();
    let restart = api.run_once(fault(json!({"runtime": "podman", "action": "restart", "name": "cme-db"})), false).await;
    assert_eq!(restart["status"], "succeeded", "{restart}");
    assert!(undo_of(&api, restart["id"].as_str().unwrap()).await.is_null(), "no undo for a restart");
    assert_eq!(states(), ["running", "running", "running"]);
    assert_ne!(started(), first, "restarted");
    let leftovers =
        std::fs::read_dir("/tmp").unwrap().filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned());
    let run = restart["id"].as_str().unwrap().to_string();
    assert!(leftovers.filter(|name| name.contains(&run)).count() == 0, "a restart keeps no state on the host");

    // Nothing matching, or no daemon to reach: refused before anything changes.
    refused(
        &api,
        fault(json!({"runtime": "podman", "action": "stop", "name": "cme-nothere", "duration_seconds": 3})),
        "no running container named cme-nothere",
    )
    .await;
    refused(
        &api,
        fault(json!({"runtime": "podman", "action": "pause", "label": "app=none", "duration_seconds": 3})),
        "no running container labelled app=none",
    )
    .await;
    if docker_cli {
        podman.service_stop();
        refused(
            &api,
            fault(json!({"runtime": "docker", "action": "stop", "name": "cme-db", "duration_seconds": 3})),
            "docker cannot list containers here",
        )
        .await;
    }
    assert_eq!(states(), ["running", "running", "running"]);
}

#[tokio::test]
async fn every_host_fault_in_a_dry_run_changes_nothing_and_says_what_it_would_do_and_sudo_runs_them_as_root() {
    let config = TestHostConfig { disk_mib: Some(1200), ..TestHostConfig::default() };
    let Some(rig) = HostRig::start(vec![("box", config)]) else { return };
    let (engine, api) = rig.engine().await;
    let host = rig.host("box");
    let disk = host.disk.display().to_string();
    let before = host.snapshot();
    let faults = [
        ("cpu_stress:CpuStress", json!({"cores": 1, "duration_seconds": 3})),
        ("memory_stress:MemoryStress", json!({"mib": 64, "duration_seconds": 3})),
        ("io_stress:IoStress", json!({"bytes": 1 << 20, "path": disk, "duration_seconds": 3})),
        ("disk_fill:DiskFill", json!({"path": disk, "bytes": 1 << 20, "duration_seconds": 3})),
        ("dns_fault:DnsFault", json!({"names": ["db.internal"], "duration_seconds": 3})),
        ("time_skew:TimeSkew", json!({"offset_seconds": 60, "duration_seconds": 3})),
        ("container_fault:ContainerFault", json!({"action": "stop", "name": "db", "duration_seconds": 3})),
        ("network_fault:NetworkFault", json!({"fault": "partition", "peers": ["192.0.2.0/24"], "duration_seconds": 3})),
    ];
    for (reference, args) in &faults {
        let dry = api.run_once(at("box", reference, args.clone()), true).await;
        assert_eq!(dry["status"], "succeeded", "{reference}: {dry}");
        assert!(dry.to_string().contains("dry run: would"), "{reference} says what it would do: {dry}");
        assert!(undo_of(&api, dry["id"].as_str().unwrap()).await.is_null(), "{reference}: nothing armed");
        assert_eq!(host.snapshot(), before, "{reference}: a dry run changed nothing");
    }
    // sudo: true runs the commands through `sudo -n` (root may, without a password).
    let sudo =
        std::process::Command::new("sh").args(["-c", "command -v sudo"]).output().is_ok_and(|o| o.status.success());
    if !sudo {
        cme_test_peers::missing_peer("sudo", "apt-get install sudo");
        return;
    }
    let fill =
        at("box", "disk_fill:DiskFill", json!({"path": disk, "bytes": 8 << 20, "duration_seconds": 3, "sudo": true}));
    let filled = made(&api, &engine, fill).await;
    let undo = undo_of(&api, &filled).await;
    assert!(undo["command"].as_str().unwrap_or_default().starts_with("sudo -n sh -c "), "{undo}");
    assert!(host.exec_ok(&format!("ls {disk}")).contains("cme-disk-fill-"));
    reverted(&api, &filled).await;
    assert_eq!(host.snapshot(), before);
}
