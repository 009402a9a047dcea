//! The writing side of a connection: a response's chunks in order, file regions with `sendfile`
//! on a plain socket.

use std::io::IoSlice;

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use crate::log::OpenRegion;
use crate::wire::Chunk;

/// Writes a response's chunks in order: runs of chunks in memory with as few vectored writes as
/// the socket allows, file regions with `sendfile` from the page cache. Fails when the socket
/// takes no byte for `idle` (the client stopped reading).
pub(super) async fn write_chunks(
    wr: &mut OwnedWriteHalf,
    chunks: &[Chunk],
    idle: std::time::Duration,
) -> std::io::Result<()> {
    let mut rest = chunks;
    while let Some(first) = rest.first() {
        match first {
            Chunk::File(region) => {
                send_region(wr.as_ref(), region, idle).await?;
                rest = &rest[1..];
            }
            Chunk::Memory(_) => {
                let run = rest
                    .iter()
                    .position(|c| matches!(c, Chunk::File(_)))
                    .unwrap_or(rest.len());
                write_memory(wr, &rest[..run], idle).await?;
                rest = &rest[run..];
            }
        }
    }
    Ok(())
}

/// `io`, failing when it makes no progress for `idle`.
async fn progress<T>(
    idle: std::time::Duration,
    io: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(idle, io).await.unwrap_or_else(|_| {
        metrics::counter!("gregor_connections_closed_idle_total").increment(1);
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "the client took no response bytes for {} ms (connections.max.idle.ms)",
                idle.as_millis()
            ),
        ))
    })
}

async fn write_memory(
    wr: &mut OwnedWriteHalf,
    chunks: &[Chunk],
    idle: std::time::Duration,
) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = chunks
        .iter()
        .filter_map(|c| match c {
            Chunk::Memory(b) => Some(IoSlice::new(b)),
            Chunk::File(_) => None,
        })
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = progress(idle, wr.write_vectored(rest)).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

/// Sends a file region to the socket without copying it through userspace.
async fn send_region(
    socket: &TcpStream,
    region: &OpenRegion,
    idle: std::time::Duration,
) -> std::io::Result<()> {
    let mut position = region.position;
    let end = region.position + region.len;
    while position < end {
        progress(idle, socket.writable()).await?;
        let want = usize::try_from(end - position).unwrap_or(usize::MAX);
        let sent = socket.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(socket, &*region.file, Some(&mut position), want)
                .map_err(std::io::Error::from)
        });
        match sent {
            Ok(0) => {
                // A region is below the high watermark of a file only ever appended to (or kept
                // open after deletion), so this means the file was cut behind the broker's back.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "segment file ended {} bytes before the records being sent",
                        end - position
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
