//! A bare actix-web handler serving fixed bytes at `/api/1/planners/`: what the HTTP
//! stack alone costs, the reference `cargo xtask bench` measures `cme` against. Same
//! actix-web, same release profile, same default worker count as `cme serve`; no
//! middleware, no state, no database.
//!
//! Usage: cme-bench-bare BODY_FILE CONTENT_TYPE (prints `listening on http://ADDR`).

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(body_file), Some(content_type)) = (args.next(), args.next()) else {
        eprintln!("usage: cme-bench-bare BODY_FILE CONTENT_TYPE");
        std::process::exit(2);
    };
    let body = web::Bytes::from(std::fs::read(&body_file)?);
    let server = HttpServer::new(move || {
        let (body, content_type) = (body.clone(), content_type.clone());
        App::new().route(
            "/api/1/planners/",
            web::get().to(move || {
                let (body, content_type) = (body.clone(), content_type.clone());
                async move { HttpResponse::Ok().content_type(content_type).body(body) }
            }),
        )
    })
    .disable_signals()
    .bind("127.0.0.1:0")?;
    for addr in server.addrs() {
        println!("listening on http://{addr}");
    }
    server.run().await
}
