//! The WAL's byte formats: segment headers and records.
//!
//! ```text
//! segment header (at offset 0 of every segment file; integers little-endian)
//! offset  size  field
//!      0     8  magic "SLUICWAL"
//!      8     4  format version (WAL_VERSION)
//!     12     4  log id: the log the data file's commits continue in (its
//!               commit slot names it); 0: none recorded, any is accepted
//!     16    16  database id: the data file's, so a segment of another
//!               database is rejected
//!     32     8  sequence number of the segment's first record
//!     40     8  xxh3-64 of bytes 0..40
//!
//! record (packed one after another after the header)
//! offset  size  field
//!      0     8  sequence number
//!      8     4  payload length n
//!     12     8  xxh3-64 of bytes 0..12 followed by the payload
//!     20     n  payload: one whole committed transaction
//!
//! seal (the last record of a segment the journal rolled away from; a
//! record whose sequence number is u64::MAX, never assigned)
//! offset  size  field
//!      0     8  u64::MAX
//!      8     4  12
//!     12     8  xxh3-64 of bytes 0..12 followed by the payload
//!     20     8  payload: the next segment's first sequence number
//!     28     4  payload: the log id the next segment records
//! ```
//!
//! A record is valid only if its checksum matches and its sequence number is
//! the one expected next; a seal, if it names the sequence number expected
//! next (the next segment's first). A seal ends its segment and says the log
//! goes on in the segment it names: recovery refuses a log whose last
//! segment is sealed (`reader::read_log`), since the segment after it, made
//! durable before the seal, is missing. A torn tail (a prefix of a record), a zero-filled
//! tail (whose checksum cannot be zero's hash) and stale bytes all fail one of
//! the two tests; the reader stops at the first record that fails.

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"SLUICWAL";
/// The format version new segments record: 2 since segments end in seals.
pub(crate) const WAL_VERSION: u32 = 2;
/// The oldest format version the reader accepts: version 1 is version 2
/// without seals.
pub(crate) const OLDEST_WAL_VERSION: u32 = 1;
pub(crate) const SEGMENT_HEADER_LEN: usize = 48;
pub(crate) const RECORD_HEADER_LEN: usize = 20;
/// The largest payload a record may carry (a record's length field is a u32).
pub const MAX_PAYLOAD: usize = u32::MAX as usize;

/// The header at the start of every segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) db_id: u128,
    /// The log this segment belongs to: the data file records the log its
    /// commits continue in (`Slot::log_id`), and every writable open that
    /// finds no WAL starts a new one. Two copies of one data file (the same
    /// `db_id`) that each went on writing thus write different logs, and a
    /// copy put back beside the other's log is refused instead of replaying
    /// it. 0: none (a segment from before log ids, or of an in-memory log).
    pub(crate) log_id: u32,
    pub(crate) first_seq: u64,
}

/// Why a segment header was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Too short, bad magic or bad checksum: not (or no longer) a segment.
    Invalid(&'static str),
    /// A valid segment of another format version.
    Version(u32),
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut buf = [0u8; SEGMENT_HEADER_LEN];
        buf[..8].copy_from_slice(&SEGMENT_MAGIC);
        buf[8..12].copy_from_slice(&WAL_VERSION.to_le_bytes());
        buf[12..16].copy_from_slice(&self.log_id.to_le_bytes());
        buf[16..32].copy_from_slice(&self.db_id.to_le_bytes());
        buf[32..40].copy_from_slice(&self.first_seq.to_le_bytes());
        let sum = xxh3_64(&buf[..40]);
        buf[40..48].copy_from_slice(&sum.to_le_bytes());
        buf
    }

    pub(crate) fn decode(buf: &[u8]) -> Result<Self, HeaderError> {
        let buf = buf
            .get(..SEGMENT_HEADER_LEN)
            .ok_or(HeaderError::Invalid("segment shorter than its header"))?;
        if buf[..8] != SEGMENT_MAGIC {
            return Err(HeaderError::Invalid("bad segment magic"));
        }
        if le_u64(&buf[40..48]) != xxh3_64(&buf[..40]) {
            return Err(HeaderError::Invalid("segment header checksum mismatch"));
        }
        let version = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
        if !(OLDEST_WAL_VERSION..=WAL_VERSION).contains(&version) {
            return Err(HeaderError::Version(version));
        }
        Ok(Self {
            db_id: u128::from_le_bytes(buf[16..32].try_into().unwrap_or_default()),
            log_id: u32::from_le_bytes([buf[12], buf[13], buf[14], buf[15]]),
            first_seq: le_u64(&buf[32..40]),
        })
    }
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().unwrap_or_default())
}

/// Records up to this long (header and payload) are hashed in one call,
/// from a copy on the stack: xxh3's own short-input paths end at 240 bytes.
const ONE_SHOT_LEN: usize = 240;

/// xxh3-64 of `head` followed by `payload`. A short record is copied
/// together and hashed in one call, a long one streamed: the same hash
/// either way, without the streaming state's setup and finish for the
/// record of a one-write commit (callgrind: 168 instructions against 230).
fn checksum(head: &[u8], payload: &[u8]) -> u64 {
    let len = head.len() + payload.len();
    if len <= ONE_SHOT_LEN {
        let mut joined = [0u8; ONE_SHOT_LEN];
        joined[..head.len()].copy_from_slice(head);
        joined[head.len()..len].copy_from_slice(payload);
        return xxh3_64(&joined[..len]);
    }
    let mut hasher = Xxh3::new();
    hasher.update(head);
    hasher.update(payload);
    hasher.digest()
}

/// Appends the record `(seq, payload)` to `out` (tests craft logs with it;
/// the journal appends with [`encode_record_with`]).
/// REQUIRES: `payload.len() <= MAX_PAYLOAD`.
#[cfg(test)]
pub(crate) fn encode_record(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let written = encode_record_with(out, seq, payload.len(), |out| out.extend_from_slice(payload));
    debug_assert!(written, "a copied payload has its own length");
}

/// Appends the record of `seq` whose `len`-byte payload `write` appends to
/// `out`, in place: a caller that encodes its payload needs no buffer of
/// its own. `false`, and `out` as it was, if `write` appended some other
/// number of bytes; if `write` panics, `out` is left as it was too (it is
/// a WAL queue, whose next records must not follow a partial one).
/// REQUIRES: `len <= MAX_PAYLOAD`.
pub(crate) fn encode_record_with(out: &mut Vec<u8>, seq: u64, len: usize, write: impl FnOnce(&mut Vec<u8>)) -> bool {
    /// Cuts `out` back to `start` when dropped, unless the record is done.
    struct Partial<'a> {
        out: &'a mut Vec<u8>,
        start: usize,
        done: bool,
    }
    impl Drop for Partial<'_> {
        fn drop(&mut self) {
            if !self.done {
                self.out.truncate(self.start);
            }
        }
    }
    let mut head = [0u8; 12];
    head[..8].copy_from_slice(&seq.to_le_bytes());
    head[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    let start = out.len();
    let mut record = Partial { out, start, done: false };
    record.out.reserve(RECORD_HEADER_LEN + len);
    record.out.extend_from_slice(&head);
    // The checksum's place, filled once the payload is there to hash.
    record.out.extend_from_slice(&[0; 8]);
    write(record.out);
    let payload = start + RECORD_HEADER_LEN;
    if record.out.len() - payload != len {
        return false;
    }
    let sum = checksum(&head, &record.out[payload..]);
    record.out[start + 12..payload].copy_from_slice(&sum.to_le_bytes());
    record.done = true;
    true
}

/// A seal's sequence field: no record is ever assigned it (`Journal::append`
/// stops one short of it).
const SEAL_SEQ: u64 = u64::MAX;

/// A seal's payload: the next segment's first sequence number and log id.
const SEAL_PAYLOAD_LEN: usize = 12;

/// The bytes a seal occupies.
pub(crate) const SEAL_LEN: usize = RECORD_HEADER_LEN + SEAL_PAYLOAD_LEN;

/// Appends the seal that ends a segment whose successor's first record is
/// `next`, in log `log_id`.
pub(crate) fn encode_seal(out: &mut Vec<u8>, next: u64, log_id: u32) {
    let written = encode_record_with(out, SEAL_SEQ, SEAL_PAYLOAD_LEN, |out| {
        out.extend_from_slice(&next.to_le_bytes());
        out.extend_from_slice(&log_id.to_le_bytes());
    });
    debug_assert!(written, "a seal's payload has its own length");
}

/// The result of decoding one record from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// A valid record and the bytes it occupies.
    Record { seq: u64, payload: &'a [u8], len: usize },
    /// The buffer ends inside a record header or payload.
    Truncated,
    /// The record's checksum fails (torn, zeroed or garbage bytes).
    Corrupt,
    /// A valid record with a sequence number other than the expected one
    /// (or a seal naming another than the expected one).
    OutOfOrder { seq: u64 },
    /// A valid seal naming the expected sequence number as the next
    /// segment's first, in log `log_id`: the segment ends here.
    Seal { log_id: u32 },
}

/// Decodes the record at the front of `buf`, expecting sequence `expected`.
/// Never reads past `buf`, whatever its bytes claim.
pub(crate) fn decode_record(buf: &[u8], expected: u64) -> Decoded<'_> {
    let Some(head) = buf.get(..RECORD_HEADER_LEN) else {
        return Decoded::Truncated;
    };
    let seq = le_u64(&head[..8]);
    let len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
    let sum = le_u64(&head[12..20]);
    // The length comes from disk: checked, so no platform's usize wraps.
    let Some(payload) = RECORD_HEADER_LEN
        .checked_add(len)
        .and_then(|end| buf.get(RECORD_HEADER_LEN..end))
    else {
        return Decoded::Truncated;
    };
    if checksum(&head[..12], payload) != sum {
        return Decoded::Corrupt;
    }
    // A seal is never a record, whatever is expected. (Another record
    // carrying the seal's number is one with an unassignable number: the
    // reader refuses it.)
    if seq == SEAL_SEQ
        && let Ok(seal) = <[u8; SEAL_PAYLOAD_LEN]>::try_from(payload)
    {
        if le_u64(&seal[..8]) != expected {
            return Decoded::OutOfOrder { seq };
        }
        return Decoded::Seal {
            log_id: u32::from_le_bytes([seal[8], seal[9], seal[10], seal[11]]),
        };
    }
    if seq != expected {
        return Decoded::OutOfOrder { seq };
    }
    Decoded::Record {
        seq,
        payload,
        len: RECORD_HEADER_LEN + payload.len(),
    }
}

/// Decodes a valid record at the front of `buf` whatever its place in the
/// sequence, if its sequence number lies in `seqs`: `(seq, bytes it
/// occupies)`. The sequence number is tested first, so most garbage is
/// rejected without computing a checksum. Used only on recovery's error
/// path, to search for records behind a bad one.
pub(crate) fn decode_any(buf: &[u8], seqs: std::ops::RangeInclusive<u64>) -> Option<(u64, usize)> {
    let seq = le_u64(buf.get(..8)?);
    if !seqs.contains(&seq) {
        return None;
    }
    match decode_record(buf, seq) {
        Decoded::Record { seq, len, .. } => Some((seq, len)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_written_in_place_makes_the_record_a_copy_makes() {
        // The format, spelled out: sequence, length, xxh3 of those twelve
        // bytes and the payload, then the payload.
        let head = [&7u64.to_le_bytes()[..], &7u32.to_le_bytes()].concat();
        let sum = xxhash_rust::xxh3::xxh3_64(&[&head[..], b"payload"].concat());
        let copied = [&b"queued"[..], &head, &sum.to_le_bytes(), b"payload"].concat();
        let mut in_place = b"queued".to_vec();
        assert!(encode_record_with(&mut in_place, 7, 7, |out| out.extend_from_slice(b"payload")));
        assert_eq!(in_place, copied);
        assert!(matches!(
            decode_record(&in_place[6..], 7),
            Decoded::Record { seq: 7, payload: b"payload", .. }
        ));
        // A payload of another length than announced appends nothing, nor
        // does one whose encoder panics part way.
        for wrong in [&b"short"[..], b"too long!", b""] {
            assert!(!encode_record_with(&mut in_place, 8, 7, |out| out.extend_from_slice(wrong)));
            assert_eq!(in_place, copied, "{wrong:?}");
        }
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            encode_record_with(&mut in_place, 8, 7, |out| {
                out.extend_from_slice(b"pay");
                panic!("an encoder's bug");
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(in_place, copied, "a panicking encoder leaves a partial record");
    }

    #[test]
    fn a_record_hashed_in_one_call_hashes_as_streamed() {
        // The format is xxh3 of the header's 12 bytes and the payload, however
        // it is computed: records on either side of the one-call length.
        let head = [7u8; 12];
        for len in 0..=ONE_SHOT_LEN + 16 {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
            let mut streamed = Xxh3::new();
            streamed.update(&head);
            streamed.update(&payload);
            assert_eq!(checksum(&head, &payload), streamed.digest(), "payload of {len} bytes");
        }
    }

    #[test]
    fn records_round_trip_in_sequence() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 5, b"hello");
        encode_record(&mut buf, 6, b"");
        let Decoded::Record { seq, payload, len } = decode_record(&buf, 5) else {
            panic!()
        };
        assert_eq!((seq, payload), (5, &b"hello"[..]));
        assert_eq!(
            decode_record(&buf[len..], 6),
            Decoded::Record {
                seq: 6,
                payload: b"",
                len: 20
            }
        );
        assert_eq!(decode_record(&buf, 4), Decoded::OutOfOrder { seq: 5 });
    }

    #[test]
    fn a_seal_names_the_next_segment_and_only_the_expected_one() {
        let mut buf = Vec::new();
        encode_seal(&mut buf, 42, 0xabcd);
        assert_eq!(buf.len(), SEAL_LEN);
        assert_eq!(decode_record(&buf, 42), Decoded::Seal { log_id: 0xabcd });
        // A seal naming another successor than the record expected next is
        // no end of the segment: the reader stops there as at a stray record.
        assert_eq!(decode_record(&buf, 41), Decoded::OutOfOrder { seq: SEAL_SEQ });
        assert_eq!(decode_record(&buf[..SEAL_LEN - 1], 42), Decoded::Truncated);
        let mut flipped = buf.clone();
        flipped[SEAL_LEN - 1] ^= 1;
        assert_eq!(decode_record(&flipped, 42), Decoded::Corrupt);
        // Never found as a record by the search past a stop.
        assert_eq!(decode_any(&buf, 0..=u64::MAX), None);
    }

    #[test]
    fn every_torn_prefix_and_every_bit_flip_is_rejected() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 9, b"payload bytes");
        for cut in 0..buf.len() {
            assert!(
                !matches!(decode_record(&buf[..cut], 9), Decoded::Record { .. }),
                "prefix {cut} accepted"
            );
        }
        for bit in 0..buf.len() * 8 {
            let mut damaged = buf.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(decode_record(&damaged, 9), Decoded::Record { .. }),
                "flip {bit} accepted"
            );
        }
        assert_eq!(decode_record(&[0u8; 64], 0), Decoded::Corrupt, "zero fill");
    }

    #[test]
    fn a_huge_claimed_length_is_truncation_not_an_allocation() {
        let mut head = vec![0u8; RECORD_HEADER_LEN];
        head[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_record(&head, 0), Decoded::Truncated);
    }

    #[test]
    fn segment_header_round_trips_and_names_versions() {
        let h = SegmentHeader {
            db_id: 77,
            log_id: 0xfeed_beef,
            first_seq: 1000,
        };
        let bytes = h.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        assert!(matches!(
            SegmentHeader::decode(&bytes[..20]),
            Err(HeaderError::Invalid(_))
        ));
        let mut other = bytes;
        other[8] = 1;
        let sum = xxh3_64(&other[..40]);
        other[40..48].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(SegmentHeader::decode(&other), Ok(h), "version 1, without seals, is read");
        other[8] = 3;
        let sum = xxh3_64(&other[..40]);
        other[40..48].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(SegmentHeader::decode(&other), Err(HeaderError::Version(3)));
    }
}
