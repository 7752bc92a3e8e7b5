//! Reading one HTTP/1.1 request off a kept-alive connection, for the local sinks the bench
//! and the chaos harness point attacks at.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpStream;

/// Bodies longer than this are refused (the connection is dropped): no attack the sinks
/// serve sends one.
const MAX_BODY: usize = 1 << 20;

/// The next request's path and body (read by `content-length`); None once the client has
/// closed the connection or sent something that is not a request this can read.
pub(crate) async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length.min(MAX_BODY)];
    reader.read_exact(&mut body).await.ok()?;
    Some((path, body))
}
