//! Item 61: the number-guessing game over TCP, a threaded server and a threaded client
//! (the async ones are `serve_async` and `play_async_at`).
//!
//! `cargo run --example item61_guess`

use std::net::SocketAddr;

use concur::guess::{self, ServerConfig};
use concur::process::CancelToken;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = guess::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let addr = listener.local_addr()?;
    let stop = CancelToken::new()?;
    let server_stop = stop.clone();
    let server = std::thread::spawn(move || {
        guess::serve_threads(listener, ServerConfig::default(), &server_stop)
    });
    for round in guess::play_threaded(addr)? {
        println!("{round}");
    }
    stop.cancel();
    let stats = server.join().expect("the server thread")?;
    println!("served {} sessions", stats.sessions);
    Ok(())
}
