//! Item 61 in the tour: the guessing game, threaded then async.

use std::io::Write;
use std::thread;

use super::{TourError, heading};
use crate::guess::{self, ServerConfig, Sink};
use crate::process::CancelToken;

fn io_error(err: impl std::error::Error + Send + Sync + 'static) -> TourError {
    TourError::Demo(std::io::Error::other(crate::error_chain(&err)))
}

fn print_transcripts(
    out: &mut dyn Write,
    client: &[String],
    server: &[String],
) -> std::io::Result<()> {
    for (c, s) in client
        .iter()
        .zip(server.iter().chain(std::iter::repeat(&String::new())))
    {
        writeln!(out, "  {c:<24} {s}")?;
    }
    Ok(())
}

/// Runs the item 61 part of the tour.
pub(super) fn run(out: &mut dyn Write) -> Result<(), TourError> {
    heading(out, "Item 61: know how to port threaded I/O to asyncio")?;
    writeln!(
        out,
        "The book's number-guessing game: secret 3 in 1..5, then 12 in 10..15, over TCP on an\n\
         ephemeral port. Client lines on the left, the server's on the right.\n"
    )?;

    // Threads: a thread per connection, and a blocking client.
    let listener =
        guess::bind("127.0.0.1:0".parse().map_err(io_error)?).map_err(TourError::Demo)?;
    let addr = listener.local_addr().map_err(TourError::Demo)?;
    let (transcript, server_lines) = Sink::collect();
    let config = ServerConfig {
        transcript,
        ..ServerConfig::default()
    };
    let stop = CancelToken::new().map_err(TourError::Demo)?;
    let server_stop = stop.clone();
    let server = thread::spawn(move || guess::serve_threads(listener, config, &server_stop));
    let client = guess::play_threaded(addr);
    stop.cancel();
    let joined = server.join();
    let client = client.map_err(io_error)?;
    if let Ok(Err(e)) = joined {
        return Err(TourError::Demo(e));
    }
    writeln!(out, "threaded server, threaded client ({addr}):")?;
    print_transcripts(
        out,
        &client,
        &server_lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )?;

    // Async: a tokio task per connection, and an async client.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(TourError::Demo)?;
    let (transcript, server_lines) = Sink::collect();
    let (addr, client) = runtime.block_on(async {
        let listener =
            guess::bind("127.0.0.1:0".parse().map_err(io_error)?).map_err(TourError::Demo)?;
        listener.set_nonblocking(true).map_err(TourError::Demo)?;
        let addr = listener.local_addr().map_err(TourError::Demo)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(TourError::Demo)?;
        let stop = tokio_util::sync::CancellationToken::new();
        let config = ServerConfig {
            transcript,
            ..ServerConfig::default()
        };
        let server = tokio::spawn(guess::serve_async(
            listener,
            config,
            stop.clone().cancelled_owned(),
        ));
        let client = guess::play_async_at(addr, &mut Vec::new()).await;
        stop.cancel();
        let _ = server.await;
        Ok::<_, TourError>((addr, client.map_err(io_error)?))
    })?;
    writeln!(out, "\nasync server, async client ({addr}):")?;
    print_transcripts(
        out,
        &client,
        &server_lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )?;
    writeln!(
        out,
        "\nRust: the game logic (Session, Player) does no I/O, so both ports share it line for\n\
         line. Bad input ends only its own session with an ERROR line, and the book's endless\n\
         loop on an exhausted range is an error reply. `concur guess load` runs 10,000 clients."
    )?;
    Ok(())
}
