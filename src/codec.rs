//! Sans-io codec on kafka-protocol: frame bytes ⇄ (request header, typed body) and typed
//! responses ⇄ length-prefixed frames. No tokio here.
//!
//! Defences against hostile input: the header is only decoded once enough bytes are present (the
//! crate's header decoder panics on short input); bodies are decoded under `catch_unwind` as a
//! second line. Lying counts and lengths cost nothing: the crate is patched to never reserve more
//! than the remaining bytes can hold (`vendor/kafka-protocol`), and the lazily-reserving global
//! allocator (`alloc`) stands behind that for any other huge allocation.

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Decodable, Encodable};

use crate::wire::{Attached, Chunk, ChunkedBuf};

/// Why a request frame could not be decoded; the connection is closed with this reason.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("malformed request header: {0}")]
    Header(String),
    #[error("malformed {api:?} v{version} request: {reason}")]
    Body {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

/// Why the byte stream of a connection cannot be split into frames; the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds socket.request.max.bytes ({1})")]
    TooLarge(i64, usize),
}

/// Splits the next complete frame (without its 4-byte length prefix) off the front of `buf`;
/// `None` until one has fully arrived. A length prefix over `max_frame` (or negative) is an error
/// as soon as it is seen, before any of the frame is buffered.
pub fn split_frame(buf: &mut BytesMut, max_frame: usize) -> Result<Option<Bytes>, FrameError> {
    let Some(len) = frame_len(buf, max_frame)? else {
        return Ok(None);
    };
    if buf.len() < 4 + len {
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

/// The announced length of the frame at the front of `buf`, once its prefix has arrived.
pub fn frame_len(buf: &[u8], max_frame: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes(prefix.try_into().expect("4 bytes"));
    match usize::try_from(len) {
        Ok(n) if n <= max_frame => Ok(Some(n)),
        _ => Err(FrameError::TooLarge(i64::from(len), max_frame)),
    }
}

/// The fixed part every request header starts with: api key, api version, correlation id.
pub const HEADER_PREFIX: usize = 8;

/// Reads the api key, version and correlation id without decoding the rest of the header.
pub fn peek_header(frame: &[u8]) -> Option<(i16, i16, i32)> {
    if frame.len() < HEADER_PREFIX {
        return None;
    }
    Some((
        i16::from_be_bytes([frame[0], frame[1]]),
        i16::from_be_bytes([frame[2], frame[3]]),
        i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
    ))
}

/// Decodes the request header, leaving `frame` at the start of the body.
pub fn decode_header(frame: &mut Bytes) -> Result<(ApiKey, RequestHeader), DecodeError> {
    let (key, _, _) = peek_header(frame).ok_or(DecodeError::TooShort(frame.len()))?;
    let api = ApiKey::try_from(key).map_err(|_| DecodeError::UnknownApiKey(key))?;
    let header = catch_unwind(AssertUnwindSafe(|| {
        decode_request_header_from_buffer(frame)
    }))
    .map_err(|_| DecodeError::Header("decoder panicked".into()))?
    .map_err(|e| DecodeError::Header(e.to_string()))?;
    Ok((api, header))
}

/// Decodes a request body of a version the caller has checked is supported.
pub fn decode_body<T: Decodable>(
    api: ApiKey,
    version: i16,
    body: &mut Bytes,
) -> Result<T, DecodeError> {
    let body_err = |reason: String| DecodeError::Body {
        api,
        version,
        reason,
    };
    catch_unwind(AssertUnwindSafe(|| T::decode(body, version)))
        .map_err(|_| body_err("decoder panicked".into()))?
        .map_err(|e| body_err(e.to_string()))
}

/// A response that cannot be encoded (a bug: it is logged and the connection closed).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {api:?} v{version} response: {reason}")]
pub struct EncodeError {
    pub api: ApiKey,
    pub version: i16,
    pub reason: String,
}

/// Encodes a response frame (length prefix, response header, body) as chunks: `payloads` (record
/// sets the body carries) are referenced rather than copied (see `wire`).
pub fn encode_response<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
    attached: Attached,
) -> Result<Vec<Chunk>, EncodeError> {
    let err = |e: anyhow::Error| EncodeError {
        api,
        version,
        reason: e.to_string(),
    };
    // ApiVersions responses always use header v0, so a client can read any version's answer.
    let header_version = if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    };
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let size = header.compute_size(header_version).map_err(err)?
        + body.compute_size(version).map_err(err)?;
    let mut buf = ChunkedBuf::new(4 + size, attached);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version).map_err(err)?;
    body.encode(&mut buf, version).map_err(err)?;
    buf.into_chunks().map_err(|e| err(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::MetadataRequest;

    #[test]
    fn short_and_unknown_headers_are_errors_not_panics() {
        for len in 0..HEADER_PREFIX {
            let mut b = Bytes::from(vec![0u8; len]);
            assert!(matches!(
                decode_header(&mut b),
                Err(DecodeError::TooShort(_))
            ));
        }
        let mut b = Bytes::from_static(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert!(matches!(
            decode_header(&mut b),
            Err(DecodeError::UnknownApiKey(0x7f7f))
        ));
        // Metadata v1 header with a client id length that lies.
        let mut b = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0xff]);
        assert!(matches!(decode_header(&mut b), Err(DecodeError::Header(_))));
    }

    #[test]
    fn frames_split_only_when_complete_and_lengths_are_bounded() {
        let mut buf = BytesMut::from(&[0, 0, 0, 3, b'a', b'b'][..]);
        assert_eq!(split_frame(&mut buf, 10), Ok(None));
        buf.extend_from_slice(&[b'c', 0, 0, 0, 0, 0, 0]);
        assert_eq!(split_frame(&mut buf, 10).unwrap().unwrap(), &b"abc"[..]);
        assert_eq!(split_frame(&mut buf, 10).unwrap().unwrap(), &b""[..]);
        assert_eq!(split_frame(&mut buf, 10), Ok(None));
        assert_eq!(&buf[..], &[0, 0]);
        let mut big = BytesMut::from(&[0, 0, 0, 11][..]);
        assert_eq!(split_frame(&mut big, 10), Err(FrameError::TooLarge(11, 10)));
        let mut negative = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(
            split_frame(&mut negative, 10),
            Err(FrameError::TooLarge(-1, 10))
        );
    }

    #[test]
    fn lying_array_count_fails_cleanly() {
        // The MetadataRequest v1 body that makes kafka-protocol 0.18 reserve ~154 GB.
        let mut body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
        let r = decode_body::<MetadataRequest>(ApiKey::Metadata, 1, &mut body);
        assert!(matches!(r, Err(DecodeError::Body { .. })));
    }
}
