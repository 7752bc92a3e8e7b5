//! The sink: a plain HTTP/1.1 server on 127.0.0.1 that records every attack that reaches it
//! (`POST /fired`, held open 1–3 s before it answers, so that runs are in flight when faults
//! land), every experiment's fault and revert (`POST /fault`, `POST /revert`) and every
//! webhook delivery (`POST /events`), answered at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::history::{Delivery, Receipt, Touch};
use super::now_ms;
use crate::sink_request::read_request;

#[derive(Default)]
pub struct Recorded {
    pub receipts: Vec<Receipt>,
    pub touches: Vec<Touch>,
    pub deliveries: Vec<Delivery>,
}

pub struct Sink {
    pub base: String,
    pub recorded: Arc<Mutex<Recorded>>,
}

impl Sink {
    pub async fn start() -> anyhow::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let recorded: Arc<Mutex<Recorded>> = Default::default();
        let shared = recorded.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        Ok(Sink { base, recorded })
    }
}

/// Serves the requests of one connection (kept alive) until it closes.
async fn serve(socket: tokio::net::TcpStream, recorded: Arc<Mutex<Recorded>>) {
    let mut reader = BufReader::new(socket);
    while let Some((path, body)) = read_request(&mut reader).await {
        let at = now_ms();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let text = |key: &str| doc[key].as_str().unwrap_or_default().to_string();
        if path.starts_with("/fired") {
            // 1–3 s, varied by the run id (no shared generator to lock).
            let run_id = text("run_id");
            let spread = run_id.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
            let hold = 1_000 + spread % 2_000;
            // Recorded on arrival: the attack reached the sink even if its engine dies
            // before the answer.
            let receipt = Receipt { run_id, plan: text("plan"), at, done: at + hold as i64 };
            let index = {
                let mut recorded = recorded.lock().unwrap();
                recorded.receipts.push(receipt);
                recorded.receipts.len() - 1
            };
            // An attack ends early when its engine drops the request (cancelled, killed).
            let mut probe = [0u8; 1];
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(hold)) => {}
                _ = reader.read(&mut probe) => {
                    recorded.lock().unwrap().receipts[index].done = now_ms();
                    return;
                }
            }
        } else if path.starts_with("/fault") || path.starts_with("/revert") {
            let touch = Touch { plan: text("plan"), revert: path.starts_with("/revert"), at };
            recorded.lock().unwrap().touches.push(touch);
        } else if path.starts_with("/events") {
            let kind = text("type").trim_start_matches("cme.").to_string();
            let delivery = Delivery { event_id: text("id"), kind, subject: text("subject"), at };
            recorded.lock().unwrap().deliveries.push(delivery);
        }
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        if reader.get_mut().write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}
