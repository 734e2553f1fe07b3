//! RFC 6455 frames as a client receives them: the server's complete, unfragmented data
//! messages cut out of the received bytes in one pass.
//!
//! The feed's connection hands every frame that is not a plain data message (control
//! frames, fragments, anything the protocol would refuse) to the WebSocket library, which
//! answers pings, closes and fails the connection as it always did. Only frames that need
//! nothing but their payload are split here: FIN set, no RSV bit (no extension is
//! negotiated), text or binary, unmasked (a server never masks), within the size limit.

use std::ops::Range;

/// What [`split_data_frames`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The payloads of the plain data frames, in order, as ranges of the buffer.
    pub payloads: Vec<Range<usize>>,
    /// Where the scan stopped: the end of the last plain frame taken (the start of the
    /// next frame, complete or not).
    pub end: usize,
    /// When not 0: the frame at `end` is not a plain data frame, and this many bytes of it
    /// are here for the WebSocket library (the whole frame; only its header when the
    /// header alone already makes it an error: masked, or larger than the limit).
    pub special: usize,
}

/// Scan `buf` from `start` for plain data frames (module doc) of at most `max_size` bytes.
/// `data_allowed` is false while the library is in the middle of a fragmented message:
/// every frame then goes to it (a new data frame there is its error to report).
///
/// Stops at the first frame that is incomplete (`special` 0: wait for more bytes) or not
/// plain (`special` > 0).
pub fn split_data_frames(buf: &[u8], start: usize, max_size: usize, data_allowed: bool) -> Split {
    let mut payloads = Vec::new();
    let mut pos = start.min(buf.len());
    let max = max_size as u64;
    loop {
        let Some(header) = FrameHeader::read(&buf[pos..]) else {
            return Split {
                payloads,
                end: pos,
                special: 0,
            };
        };
        let available = (buf.len() - pos) as u64;
        let whole = (header.len as u64).saturating_add(header.payload);
        let plain = data_allowed
            && header.fin
            && header.rsv == 0
            && (header.opcode == OP_TEXT || header.opcode == OP_BINARY)
            && !header.masked
            && header.payload <= max;
        if plain {
            if available < whole {
                return Split {
                    payloads,
                    end: pos,
                    special: 0,
                };
            }
            let body = pos + header.len;
            // `whole <= available`, so the payload fits in usize
            let end = body + header.payload as usize;
            payloads.push(body..end);
            pos = end;
            continue;
        }
        let special = if header.masked || header.payload > max {
            header.len as u64
        } else if available >= whole {
            whole
        } else {
            return Split {
                payloads,
                end: pos,
                special: 0,
            };
        };
        // `special <= available`
        return Split {
            payloads,
            end: pos,
            special: special as usize,
        };
    }
}

const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;

/// The fixed part of a frame: flags, opcode, payload length, and the header's own length.
struct FrameHeader {
    fin: bool,
    rsv: u8,
    opcode: u8,
    masked: bool,
    payload: u64,
    len: usize,
}

impl FrameHeader {
    /// The header at the start of `b`, or `None` until all of it is there.
    fn read(b: &[u8]) -> Option<FrameHeader> {
        let (&b0, &b1) = (b.first()?, b.get(1)?);
        let masked = b1 & 0x80 != 0;
        let (payload, mut len) = match b1 & 0x7f {
            126 => (
                u64::from(u16::from_be_bytes(b.get(2..4)?.try_into().ok()?)),
                4,
            ),
            127 => (u64::from_be_bytes(b.get(2..10)?.try_into().ok()?), 10),
            n => (u64::from(n), 2),
        };
        if masked {
            len += 4;
        }
        if b.len() < len {
            return None;
        }
        Some(FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: b0 & 0x70,
            opcode: b0 & 0x0f,
            masked,
            payload,
            len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server frame: flags and opcode in `b0`, unmasked.
    fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![b0];
        match payload.len() {
            n if n < 126 => out.push(n as u8),
            n if n <= 0xffff => {
                out.push(126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(payload);
        out
    }

    fn texts(buf: &[u8], split: &Split) -> Vec<Vec<u8>> {
        split
            .payloads
            .iter()
            .map(|r| buf[r.clone()].to_vec())
            .collect()
    }

    #[test]
    fn plain_frames_of_every_length_encoding_are_cut_out() {
        let big = vec![b'x'; 70_000];
        let mid = vec![b'y'; 300];
        let mut buf = frame(0x81, b"{\"a\":1}");
        buf.extend(frame(0x82, &mid));
        buf.extend(frame(0x81, &big));
        buf.extend(frame(0x81, b""));
        let split = split_data_frames(&buf, 0, 1 << 20, true);
        assert_eq!(
            texts(&buf, &split),
            vec![b"{\"a\":1}".to_vec(), mid, big, vec![]]
        );
        assert_eq!((split.end, split.special), (buf.len(), 0));
    }

    #[test]
    fn an_incomplete_frame_waits_at_every_cut() {
        let mut buf = frame(0x81, b"first");
        let second = frame(0x81, &[b'z'; 200]);
        buf.extend(&second);
        let first_len = buf.len() - second.len();
        for cut in first_len..buf.len() {
            let split = split_data_frames(&buf[..cut], 0, 1 << 20, true);
            assert_eq!(split.payloads.len(), 1, "cut at {cut}");
            assert_eq!((split.end, split.special), (first_len, 0));
        }
        // and from an offset
        let split = split_data_frames(&buf, first_len, 1 << 20, true);
        assert_eq!(split.payloads, vec![first_len + 4..buf.len()]);
    }

    #[test]
    fn other_frames_stop_the_scan_and_are_handed_on_whole() {
        let ping = frame(0x89, b"hi");
        let fragment = frame(0x01, b"part");
        let rsv = frame(0xc1, b"deflated");
        for special in [
            &ping,
            &fragment,
            &rsv,
            &frame(0x88, b"\x03\xe8"),
            &frame(0x83, b""),
        ] {
            let mut buf = frame(0x81, b"a");
            let at = buf.len();
            buf.extend(special);
            buf.extend(frame(0x81, b"b"));
            let split = split_data_frames(&buf, 0, 1 << 20, true);
            assert_eq!(split.payloads, vec![2..3]);
            assert_eq!((split.end, split.special), (at, special.len()));
            // an incomplete one waits
            let split = split_data_frames(&buf[..at + special.len() - 1], 0, 1 << 20, true);
            assert_eq!((split.end, split.special), (at, 0));
        }
    }

    #[test]
    fn errors_are_handed_on_as_soon_as_their_header_is_there() {
        // larger than the limit: the header says so
        let buf = frame(0x81, &[b'x'; 300]);
        let split = split_data_frames(&buf[..10], 0, 100, true);
        assert_eq!((split.end, split.special), (0, 4));
        // masked (servers must not mask): header and key
        let masked = [0x81, 0x85, 1, 2, 3, 4, b'h'];
        let split = split_data_frames(&masked, 0, 100, true);
        assert_eq!((split.end, split.special), (0, 6));
        assert_eq!(split_data_frames(&masked[..5], 0, 100, true).special, 0);
    }

    #[test]
    fn mid_message_every_frame_is_handed_on() {
        let buf = frame(0x81, b"whole");
        let split = split_data_frames(&buf, 0, 100, false);
        assert!(split.payloads.is_empty());
        assert_eq!((split.end, split.special), (0, buf.len()));
    }

    #[test]
    fn a_length_beyond_any_buffer_is_an_error_not_a_wait() {
        let mut buf = vec![0x81, 127];
        buf.extend_from_slice(&u64::MAX.to_be_bytes());
        let split = split_data_frames(&buf, 0, 1 << 20, true);
        assert_eq!((split.end, split.special), (0, 10));
        assert_eq!(
            split_data_frames(&[], 5, 10, true),
            Split {
                payloads: vec![],
                end: 0,
                special: 0
            }
        );
    }
}
