//! The faults: a schedule drawn from the seed, and each injection. An injection waits for
//! its precondition (an executor claimed or running somewhere) instead of a fixed sleep,
//! checks that it took effect, and records the span it was in force.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use super::history::Fault;
use super::workload::Draw;
use super::{Backend, World, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `kill -9`, then a restart.
    Kill9,
    /// `SIGTERM` while work is in flight, then a restart.
    Term,
    /// `SIGSTOP` past the leases, then `SIGCONT`.
    Stop,
    PgRestartFast,
    PgRestartImmediate,
    /// `pg_terminate_backend` of every engine connection.
    PgTerminate,
    /// The proxy resets every engine connection.
    ProxyReset,
    /// The proxy delays every chunk for a few seconds.
    ProxyDelay,
    /// The SQLite file's file system filled up, then freed.
    DiskFull,
    /// The SQLite file's ext4 turned read-only by its error trigger; then the engine is
    /// stopped, the image checked (`e2fsck -fy`) and mounted again, the engine restarted.
    ReadOnly,
    /// A lone engine's wall clock stepped by this many seconds, then back.
    ClockStep(i64),
    /// One replica's wall clock off by this many seconds, then back.
    ClockSkew(i64),
    /// A second engine started on the live SQLite file (it must be refused).
    SecondEngine,
}

impl FaultKind {
    pub fn name(self) -> String {
        match self {
            FaultKind::Kill9 => "kill9".into(),
            FaultKind::Term => "sigterm".into(),
            FaultKind::Stop => "sigstop".into(),
            FaultKind::PgRestartFast => "pg-restart-fast".into(),
            FaultKind::PgRestartImmediate => "pg-restart-immediate".into(),
            FaultKind::PgTerminate => "pg-terminate-backend".into(),
            FaultKind::ProxyReset => "proxy-reset".into(),
            FaultKind::ProxyDelay => "proxy-delay".into(),
            FaultKind::DiskFull => "disk-full".into(),
            FaultKind::ReadOnly => "read-only-disk".into(),
            FaultKind::ClockStep(s) => format!("clock-step {s:+}s"),
            FaultKind::ClockSkew(s) => format!("clock-skew {s:+}s"),
            FaultKind::SecondEngine => "second-engine".into(),
        }
    }
}

/// The fault kinds a backend is tested with.
fn kinds(backend: Backend, faketime: bool) -> Vec<FaultKind> {
    use FaultKind::*;
    let mut kinds = vec![Kill9, Term, Stop];
    match backend {
        Backend::Sqlite => {
            kinds.extend([DiskFull, ReadOnly, SecondEngine]);
            if faketime {
                kinds.extend([ClockStep(90), ClockStep(7_200), ClockStep(8 * 86_400), ClockStep(-7_200)]);
            }
        }
        Backend::Postgres => {
            kinds.extend([PgRestartFast, PgRestartImmediate, PgTerminate, ProxyReset, ProxyDelay]);
            if faketime {
                kinds.extend([ClockSkew(5), ClockSkew(-5), ClockSkew(120), ClockSkew(-120)]);
            }
        }
    }
    kinds
}

/// One injection: after a pause, a fault on an engine.
#[derive(Debug, Clone)]
pub struct Item {
    pub gap: Duration,
    pub kind: FaultKind,
    pub engine: usize,
}

pub struct Schedule {
    pub items: Vec<Item>,
    /// How long the workload and the injections go on...
    pub span: Duration,
    /// ... unless every item is to run (`--ci`), however long that takes.
    pub whole: bool,
}

/// The schedule: under `--ci` every kind once, in order, a few seconds apart; otherwise
/// rounds of every kind in an order drawn from the seed (so that each kind is injected
/// about as often as the others), 0.5–2 s apart, for `minutes`.
pub fn schedule(seed: u64, backend: Backend, ci: bool, minutes: f64, faketime: bool, engines: usize) -> Schedule {
    let kinds = kinds(backend, faketime);
    let mut draw = Draw::new(seed);
    if ci {
        let items = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| Item { gap: Duration::from_secs(3), kind: *kind, engine: i % engines })
            .collect();
        return Schedule { items, span: Duration::ZERO, whole: true };
    }
    let mut items = Vec::new();
    while items.len() < 5_000 {
        let mut round = kinds.clone();
        // Fisher–Yates, by the seed.
        for i in (1..round.len()).rev() {
            round.swap(i, draw.between(0, i as u64 + 1) as usize);
        }
        for kind in round {
            let gap = Duration::from_millis(draw.between(500, 2_000));
            items.push(Item { gap, kind, engine: draw.between(0, engines as u64) as usize });
        }
    }
    Schedule { items, span: Duration::from_secs_f64(minutes * 60.0), whole: false }
}

/// Runs the schedule until its span has passed (under `--ci`: every item); answers, per
/// kind, how many were injected and how many while work was in flight.
pub async fn inject(world: Arc<World>, schedule: Schedule) -> anyhow::Result<Vec<(String, usize, usize)>> {
    let started = tokio::time::Instant::now();
    let mut counts: Vec<(String, usize, usize)> = Vec::new();
    let mut draw = Draw::new(schedule.items.len() as u64 ^ 0xFA17);
    for item in &schedule.items {
        if !schedule.whole && started.elapsed() >= schedule.span {
            break;
        }
        tokio::time::sleep(item.gap).await;
        // The precondition: work in flight (up to 15 s, then injected anyway, not counted).
        let mut overlapping = false;
        for _ in 0..150 {
            if world.work_in_flight().await {
                overlapping = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let name = item.kind.name();
        let from = now_ms();
        let clock_ahead_ms = one(&world, item, &mut draw).await.with_context(|| format!("injecting {name}"))?;
        world.faults.lock().unwrap().push(Fault {
            kind: name.clone(),
            engine: Some(item.engine),
            from,
            until: now_ms(),
            clock_ahead_ms,
            clock_step_ms: match item.kind {
                FaultKind::ClockStep(seconds) => seconds * 1_000,
                _ => 0,
            },
        });
        match counts.iter_mut().find(|(k, _, _)| *k == name) {
            Some(count) => {
                count.1 += 1;
                count.2 += usize::from(overlapping);
            }
            None => counts.push((name, 1, usize::from(overlapping))),
        }
    }
    world.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(counts)
}

/// Injects one fault, checks it took effect, lifts it; answers how far a lone engine's
/// clock was ahead meanwhile (ms).
async fn one(world: &World, item: &Item, draw: &mut Draw) -> anyhow::Result<i64> {
    let engine = item.engine.min(world.engines.len() - 1);
    let lease = Duration::from_secs(7);
    match item.kind {
        FaultKind::Kill9 => {
            let status = world.end_engine(engine, "-KILL").await?;
            anyhow::ensure!(std::os::unix::process::ExitStatusExt::signal(&status) == Some(9), "not killed: {status}");
            tokio::time::sleep(Duration::from_millis(draw.between(300, 2_500))).await;
            world.start_engine(engine).await?;
        }
        FaultKind::Term => {
            let status = world.end_engine(engine, "-TERM").await?;
            anyhow::ensure!(status.success(), "SIGTERM: the engine exited {status}");
            world.start_engine(engine).await?;
        }
        FaultKind::Stop => {
            world.engines[engine].lock().unwrap().signal("-STOP")?;
            // Taken effect once /proc says stopped (signals are delivered asynchronously).
            let mut state = None;
            for _ in 0..100 {
                state = world.engines[engine].lock().unwrap().state();
                if state == Some('T') {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            anyhow::ensure!(state == Some('T'), "SIGSTOP: state {state:?}");
            tokio::time::sleep(lease + Duration::from_millis(draw.between(500, 3_000))).await;
            world.engines[engine].lock().unwrap().signal("-CONT")?;
        }
        FaultKind::PgRestartFast | FaultKind::PgRestartImmediate => {
            let pg = world.postgres.as_ref().context("no PostgreSQL")?;
            let before = pg.started_at()?;
            let mode = if item.kind == FaultKind::PgRestartFast {
                cme_test_peers::postgres::StopMode::Fast
            } else {
                cme_test_peers::postgres::StopMode::Immediate
            };
            tokio::task::block_in_place(|| pg.restart(mode))?;
            let after = pg.started_at()?;
            anyhow::ensure!(before != after, "pg_ctl restart: the postmaster start time did not move");
        }
        FaultKind::PgTerminate => {
            let pg = world.postgres.as_ref().context("no PostgreSQL")?;
            let ended = pg.psql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'chaos' AND pid <> pg_backend_pid()",
            )?;
            anyhow::ensure!(ended.parse::<u64>().unwrap_or(0) > 0, "no engine connection to terminate");
        }
        FaultKind::ProxyReset => {
            let proxy = world.proxy.as_ref().context("no proxy")?;
            anyhow::ensure!(proxy.reset_all() > 0, "no engine connection through the proxy");
        }
        FaultKind::ProxyDelay => {
            let proxy = world.proxy.as_ref().context("no proxy")?;
            proxy.set_delay(Duration::from_millis(draw.between(200, 1_500)));
            tokio::time::sleep(Duration::from_millis(draw.between(2_000, 6_000))).await;
            proxy.set_delay(Duration::ZERO);
        }
        FaultKind::DiskFull => {
            let disk = world.disk.as_ref().context("no small disk")?;
            tokio::task::block_in_place(|| disk.fill())?;
            let refused = until_unready(world, engine).await;
            tokio::time::sleep(Duration::from_millis(draw.between(1_000, 4_000))).await;
            tokio::task::block_in_place(|| disk.unfill())?;
            // Taken effect: the filler met ENOSPC. The engine may still write for a while
            // (into WAL pages it already has): then it is rightly ready.
            if !refused {
                eprintln!("chaos: disk full, and the engine still wrote (its WAL had room)");
            }
        }
        FaultKind::ReadOnly => {
            let disk = world.disk.as_ref().context("no small disk")?;
            disk.trigger_error()?;
            // Taken effect: the namespace's mount of the image is read-only now.
            let mut read_only = false;
            for _ in 0..150 {
                read_only = disk.read_only();
                if read_only {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::ensure!(read_only, "ext4's error trigger left the file system writable: {}", disk.mount_line());
            if !until_unready(world, engine).await {
                eprintln!("chaos: read-only disk, and the engine still wrote (into its page cache)");
            }
            tokio::time::sleep(Duration::from_millis(draw.between(500, 2_000))).await;
            let status = world.end_engine(engine, "-TERM").await?;
            anyhow::ensure!(status.success(), "SIGTERM on a read-only disk: the engine exited {status}");
            tokio::task::block_in_place(|| disk.repair())?;
            world.start_engine(engine).await?;
        }
        FaultKind::ClockStep(seconds) | FaultKind::ClockSkew(seconds) => {
            let clock = world.engines[engine].lock().unwrap().recipe.clock.clone().context("no fake clock")?;
            let url = world.url(engine).context("no engine")?;
            std::fs::write(&clock, format!("{seconds:+}\n"))?;
            // Taken effect when the engine's Date header has moved (cached up to 1 s).
            let mut moved = false;
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let Ok(answer) = world.http.get(format!("{url}/livez")).send().await else { continue };
                let date = answer.headers().get("date").and_then(|d| d.to_str().ok()).map(str::to_string);
                let at = date.and_then(|d| chrono::DateTime::parse_from_rfc2822(&d).ok());
                if at.is_some_and(|at| (at.timestamp() - chrono::Utc::now().timestamp() - seconds).abs() <= 3) {
                    moved = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(draw.between(3_000, 8_000))).await;
            std::fs::write(&clock, "+0\n")?;
            anyhow::ensure!(moved, "the engine's Date header did not move by {seconds} s");
            // A lone engine (SQLite) has no other clock: it may fire early by the step.
            if matches!(item.kind, FaultKind::ClockStep(_)) {
                return Ok(seconds.max(0) * 1_000);
            }
        }
        FaultKind::SecondEngine => {
            let recipe = world.engines[0].lock().unwrap().recipe.clone();
            let log = world.dir.join("second-engine.log");
            let launched = {
                let (recipe, log) = (recipe.clone(), log.clone());
                tokio::task::spawn_blocking(move || super::engines::launch(&recipe, &log)).await?
            };
            match launched {
                Ok((mut child, _)) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("a second engine started on the live SQLite file")
                }
                Err(_) => {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    anyhow::ensure!(log.contains("another engine is serving"), "refused, but not for the lock: {log}");
                }
            }
        }
    }
    Ok(0)
}

/// Whether engine `n`'s `/readyz` turns 503 within five seconds.
async fn until_unready(world: &World, n: usize) -> bool {
    let Some(url) = world.url(n) else { return false };
    for _ in 0..50 {
        let answer = world.http.get(format!("{url}/readyz")).send().await;
        if answer.is_ok_and(|a| a.status().as_u16() == 503) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Writes to `path` until the file system is full (ENOSPC).
/// Lifts whatever is still in force and brings every engine up.
pub async fn lift_all(world: &World) -> anyhow::Result<()> {
    if let Some(proxy) = &world.proxy {
        proxy.set_delay(Duration::ZERO);
    }
    for n in 0..world.engines.len() {
        let down = {
            let e = world.engines[n].lock().unwrap();
            if let Some(clock) = &e.recipe.clock {
                std::fs::write(clock, "+0\n")?;
            }
            if e.pid().is_some() {
                let _ = e.signal("-CONT");
            }
            e.pid().is_none()
        };
        if down {
            world.start_engine(n).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_its_schedule_and_every_kind_comes_once_a_round() {
        let one = schedule(7, Backend::Postgres, false, 30.0, true, 3);
        let again = schedule(7, Backend::Postgres, false, 30.0, true, 3);
        let kinds_of = |s: &Schedule| s.items.iter().map(|i| (i.kind, i.engine, i.gap)).collect::<Vec<_>>();
        assert_eq!(kinds_of(&one), kinds_of(&again), "the same seed, the same schedule");
        assert_ne!(kinds_of(&one), kinds_of(&schedule(8, Backend::Postgres, false, 30.0, true, 3)));
        let all = kinds(Backend::Postgres, true);
        for round in one.items.chunks(all.len()).take(100) {
            let mut seen: Vec<FaultKind> = round.iter().map(|i| i.kind).collect();
            seen.dedup();
            assert_eq!(seen.len(), all.len(), "each kind once a round: {seen:?}");
            assert!(all.iter().all(|k| seen.contains(k)));
        }
        assert!(one.items.iter().all(|i| i.engine < 3 && i.gap >= Duration::from_millis(500)));
    }
}
