//! The writing side of a connection: a response's chunks in order, file regions with `sendfile`
//! on a plain socket, read into memory (a piece at a time, off the async workers) for TLS.

use std::io::IoSlice;

use tokio::io::{AsyncWrite, AsyncWriteExt, Interest, WriteHalf};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::log::OpenRegion;
use crate::wire::Chunk;

/// Bytes of a file region read into memory at once when it cannot be sent with `sendfile`.
const COPY_PIECE: u64 = 256 << 10;

/// Where responses go: a plain socket can send file regions with `sendfile`; a TLS stream
/// encrypts, so regions are copied through it.
pub(super) trait ResponseWriter: AsyncWrite + Unpin + Send {
    fn socket(&self) -> Option<&TcpStream>;
}

impl ResponseWriter for OwnedWriteHalf {
    fn socket(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

impl ResponseWriter for WriteHalf<TlsStream<TcpStream>> {
    fn socket(&self) -> Option<&TcpStream> {
        None
    }
}

/// Writes a response's chunks in order: runs of chunks in memory with as few vectored writes as
/// the socket allows, file regions with `sendfile` from the page cache. Fails when the socket
/// takes no byte for `idle` (the client stopped reading).
pub(super) async fn write_chunks<W: ResponseWriter>(
    wr: &mut W,
    chunks: &[Chunk],
    idle: std::time::Duration,
) -> std::io::Result<()> {
    let mut rest = chunks;
    while let Some(first) = rest.first() {
        match first {
            Chunk::File(region) => {
                match wr.socket() {
                    Some(socket) => send_region(socket, region, idle).await?,
                    None => copy_region(wr, region, idle).await?,
                }
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
    // A TLS stream holds the last records until flushed (a socket holds nothing).
    if wr.socket().is_none() {
        progress(idle, wr.flush()).await?;
    }
    Ok(())
}

/// Writes a file region through a stream that cannot take it with `sendfile`, reading it a piece
/// at a time on the blocking pool.
async fn copy_region<W: ResponseWriter>(
    wr: &mut W,
    region: &OpenRegion,
    idle: std::time::Duration,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut position = region.position;
    let end = region.position + region.len;
    while position < end {
        let len = (end - position).min(COPY_PIECE) as usize;
        let file = region.file.clone();
        let at = position;
        let piece = tokio::task::spawn_blocking(move || {
            let mut piece = vec![0u8; len];
            file.read_exact_at(&mut piece, at).map(|()| piece)
        })
        .await
        .map_err(std::io::Error::other)??;
        progress(idle, wr.write_all(&piece)).await?;
        position += len as u64;
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

async fn write_memory<W: ResponseWriter>(
    wr: &mut W,
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
