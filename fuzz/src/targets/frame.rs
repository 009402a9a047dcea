//! Connection framing (`codec::split_frame`): bytes arriving in arbitrary pieces are split into
//! exactly the frames their length prefixes announce, in order, and a prefix over the limit is an
//! error before anything is buffered for it. The first input byte sets the frame size limit, the
//! second the size of the pieces the rest arrives in.
use bytes::BytesMut;
use gregor::codec::{frame_len, split_frame};

pub fn run(data: &[u8]) {
    let [limit, piece, stream @ ..] = data else {
        return;
    };
    let max_frame = usize::from(*limit) * 8;
    let piece = usize::from(*piece).max(1);
    let mut buf = BytesMut::new();
    let mut consumed = 0usize;
    for chunk in stream.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match split_frame(&mut buf, max_frame) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max_frame);
                    assert_eq!(before - buf.len(), frame.len() + 4);
                    assert_eq!(
                        &stream[consumed + 4..consumed + 4 + frame.len()],
                        &frame[..]
                    );
                    consumed += 4 + frame.len();
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "nothing consumed without a whole frame");
                    break;
                }
                Err(_) => {
                    assert!(frame_len(&buf, max_frame).is_err());
                    return;
                }
            }
        }
    }
}
