//! A TCP proxy between the engines and PostgreSQL that can delay every chunk it forwards
//! or reset every connection it holds (the engines reconnect through it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub port: u16,
    /// Added before each forwarded chunk (ms; 0: none).
    delay_ms: Arc<AtomicU64>,
    /// Bumped to reset every connection open now.
    resets: watch::Sender<u64>,
    /// Connections open now.
    open: Arc<AtomicU64>,
}

impl Proxy {
    pub async fn start(upstream: u16) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (resets, _) = watch::channel(0);
        let open = Arc::new(AtomicU64::new(0));
        let (delay, reset, count) = (delay_ms.clone(), resets.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (delay, mut reset, count) = (delay.clone(), reset.subscribe(), count.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { return };
                    count.fetch_add(1, Ordering::SeqCst);
                    reset.borrow_and_update();
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let up = pipe(&mut client_read, &mut server_write, &delay);
                    let down = pipe(&mut server_read, &mut client_write, &delay);
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                        _ = reset.changed() => {}
                    }
                    count.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(Proxy { port, delay_ms, resets, open })
    }

    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Closes every connection open now; answers how many there were.
    pub fn reset_all(&self) -> u64 {
        let open = self.open.load(Ordering::SeqCst);
        self.resets.send_modify(|n| *n += 1);
        open
    }
}

async fn pipe(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    delay_ms: &AtomicU64,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        let delay = delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        to.write_all(&buffer[..read]).await?;
    }
}
