//! Request decoding for every API and version the broker advertises: header then body, from
//! untrusted bytes, must fail cleanly (no panic, no unbounded allocation, no hang). The first two
//! input bytes pick the API (among `dispatch::SUPPORTED`) and the version in its range, so every
//! decoder is reachable; the rest is the header after the api key and version, then the body.
use bytes::{BufMut, Bytes, BytesMut};
use gregor::{codec, dispatch};

pub fn run(data: &[u8]) {
    let [api, version, rest @ ..] = data else {
        return;
    };
    let s = dispatch::SUPPORTED[usize::from(*api) % dispatch::SUPPORTED.len()];
    let span = (s.max - s.min + 1) as u8;
    let v = s.min + i16::from(version % span);
    let mut frame = BytesMut::with_capacity(4 + rest.len());
    frame.put_i16(s.key as i16);
    frame.put_i16(v);
    frame.put_slice(rest);
    let mut frame: Bytes = frame.freeze();
    let Ok((key, header)) = codec::decode_header(&mut frame) else {
        return;
    };
    assert_eq!((key, header.request_api_version), (s.key, v));
    let _ = dispatch::decode_request_body(key, v, &mut frame);
}
