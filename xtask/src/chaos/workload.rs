//! The workload: plans created at a steady rate, bursts due together, recurring plans
//! with `overlap: forbid`, pauses, resumes, deletes, halts and resumes, each recorded
//! with when it was sent and how it was answered. Requests go to any live engine.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::history::{Action, Answer, Op};
use super::{World, now_ms};

/// When a plan fires.
pub enum When {
    At(chrono::DateTime<chrono::Utc>),
    /// A six-field cron line (seconds first).
    Cron(&'static str),
}

/// A plan whose attack is the witness, named `name` (its receipts carry the name).
pub fn plan_body(name: &str, sink: &str, when: When, forbid: bool) -> Value {
    let planner = match when {
        When::At(due) => json!({"ref": "exact_planner:ExactPlanner", "args": {"date": due.to_rfc3339()}}),
        When::Cron(line) => json!({"ref": "cron_planner:CronPlanner", "args": {"cron": line}}),
    };
    json!({
        "name": name,
        "attack": {"ref": "chaos_witness:Witness", "args": {"url": format!("{sink}/fired"), "plan": name}},
        "planner": planner,
        "grace_seconds": 30,
        "overlap": if forbid { "forbid" } else { "allow" },
    })
}

/// An experiment: a fault (an HTTP call to the sink) held two seconds with its revert
/// registered before it, then a wait; run once, at `due`.
pub fn experiment_body(name: &str, sink: &str, due: chrono::DateTime<chrono::Utc>) -> Value {
    let json_header = json!({"Content-Type": "application/json"});
    json!({
        "name": name,
        "deadline_seconds": 60,
        "steps": [
            {"name": "fault", "duration_seconds": 2, "attack": {"ref": "api_request:ApiRequest", "args": {
                "endpoint": format!("{sink}/fault"), "method": "POST", "headers": json_header,
                "payload": {"plan": name},
                "revert": {"endpoint": format!("{sink}/revert"), "method": "POST", "headers": json_header,
                           "body": json!({"plan": name}).to_string()},
            }}},
            {"name": "settle", "wait_seconds": 1},
        ],
        "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": due.to_rfc3339()}},
        "grace_seconds": 30,
    })
}

/// SplitMix64: the schedule's and the workload's draws, replayable from the seed.
pub struct Draw(u64);

impl Draw {
    pub fn new(seed: u64) -> Draw {
        Draw(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[low, high)`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low).max(1)
    }
}

/// Sends one request to a live engine; records it (None: no engine up, nothing sent).
async fn send(
    world: &World,
    engine: usize,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (Answer, Value) {
    let Some(url) = world.url(engine) else { return (Answer::Unknown, Value::Null) };
    let mut request = world.http.request(method, format!("{url}{path}"));
    if let Some(body) = body {
        request = request.json(body);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (Answer::of(Some(status)), response.json().await.unwrap_or_default())
        }
        Err(_) => (Answer::Unknown, Value::Null),
    }
}

/// Runs the workload until the injections are done.
pub async fn drive(world: Arc<World>, seed: u64) -> anyhow::Result<()> {
    let mut draw = Draw::new(seed ^ 0x5752_4B4C_4F41_4400);
    let mut live: Vec<String> = Vec::new();
    let mut paused: Vec<String> = Vec::new();
    let mut recurring = 0;
    let mut halted = false;
    let mut n = 0u64;
    while !world.stop.load(std::sync::atomic::Ordering::SeqCst) {
        n += 1;
        let engine = draw.between(0, 8) as usize;
        let roll = draw.between(0, 100);
        let sent = now_ms();
        let (action, answer, doc) = if halted && roll < 40 {
            halted = false;
            let (answer, doc) = send(&world, engine, reqwest::Method::POST, "/api/1/resume", None).await;
            (Action::Resume, answer, doc)
        } else if !halted && roll < 2 {
            halted = true;
            let body = json!({"reason": format!("chaos {n}")});
            let (answer, doc) = send(&world, engine, reqwest::Method::POST, "/api/1/halt", Some(&body)).await;
            (Action::Halt, answer, doc)
        } else if roll < 8 && !live.is_empty() {
            let id = live.swap_remove(draw.between(0, live.len() as u64) as usize);
            let path = format!("/api/1/plans/{id}/pause");
            let (answer, doc) = send(&world, engine, reqwest::Method::POST, &path, None).await;
            paused.push(id.clone());
            (Action::Pause { id }, answer, doc)
        } else if roll < 12 && !paused.is_empty() {
            let id = paused.swap_remove(draw.between(0, paused.len() as u64) as usize);
            let path = format!("/api/1/plans/{id}/resume");
            let (answer, doc) = send(&world, engine, reqwest::Method::POST, &path, None).await;
            live.push(id.clone());
            (Action::ResumePlan { id }, answer, doc)
        } else if roll < 17 && !live.is_empty() {
            let id = live.swap_remove(draw.between(0, live.len() as u64) as usize);
            let (answer, doc) =
                send(&world, engine, reqwest::Method::DELETE, &format!("/api/1/plans/{id}"), None).await;
            (Action::Delete { id }, answer, doc)
        } else if roll < 22 {
            // A burst: plans due at one instant.
            let due = chrono::Utc::now() + chrono::Duration::milliseconds(draw.between(1_500, 4_000) as i64);
            for i in 0..draw.between(5, 20) {
                let name = format!("burst-{n}-{i}");
                create(&world, engine + i as usize, &name, When::At(due), false, &mut live).await;
            }
            continue;
        } else if roll < 27 {
            let due = chrono::Utc::now() + chrono::Duration::milliseconds(draw.between(500, 4_000) as i64);
            let name = format!("experiment-{n}");
            let body = experiment_body(&name, &world.sink.base, due);
            let (answer, doc) = send(&world, engine, reqwest::Method::POST, "/api/1/plans/", Some(&body)).await;
            let id = doc["id"].as_str().map(str::to_string);
            (Action::Create { name, id, recurring: false, forbid: false }, answer, doc)
        } else if roll < 29 {
            // A blackout over every plan, a few seconds from now.
            // Whole seconds: the window the engine holds is exactly the one recorded.
            let from_now = draw.between(2, 5) as i64;
            let start =
                chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + from_now, 0).unwrap_or_default();
            let end = start + chrono::Duration::seconds(draw.between(1, 5) as i64);
            let body = json!({
                "name": format!("blackout-{n}"),
                "start": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "end": end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "stop_running": draw.between(0, 2) == 1,
            });
            let (answer, doc) = send(&world, engine, reqwest::Method::POST, "/api/1/blackouts/", Some(&body)).await;
            (Action::Blackout { start: start.timestamp_millis(), end: end.timestamp_millis() }, answer, doc)
        } else if roll < 31 && recurring < 4 {
            recurring += 1;
            let name = format!("recurring-{n}");
            create(&world, engine, &name, When::Cron("*/3 * * * * *"), true, &mut live).await;
            continue;
        } else {
            let due = chrono::Utc::now() + chrono::Duration::milliseconds(draw.between(300, 5_000) as i64);
            create(&world, engine, &format!("plan-{n}"), When::At(due), false, &mut live).await;
            tokio::time::sleep(Duration::from_millis(draw.between(50, 250))).await;
            continue;
        };
        let _ = doc;
        world.record(Op { action, sent, answered: now_ms(), answer });
        tokio::time::sleep(Duration::from_millis(draw.between(50, 250))).await;
    }
    if halted {
        let sent = now_ms();
        let (answer, _) = send(&world, 0, reqwest::Method::POST, "/api/1/resume", None).await;
        world.record(Op { action: Action::Resume, sent, answered: now_ms(), answer });
    }
    Ok(())
}

async fn create(world: &World, engine: usize, name: &str, when: When, forbid: bool, live: &mut Vec<String>) {
    let recurring = matches!(when, When::Cron(_));
    let body = plan_body(name, &world.sink.base, when, forbid);
    let sent = now_ms();
    let (answer, doc) = send(world, engine, reqwest::Method::POST, "/api/1/plans/", Some(&body)).await;
    let id = doc["id"].as_str().map(str::to_string);
    if let Some(id) = &id
        && answer.done()
    {
        live.push(id.clone());
    }
    world.record(Op {
        action: Action::Create { name: name.to_string(), id, recurring, forbid },
        sent,
        answered: now_ms(),
        answer,
    });
}
