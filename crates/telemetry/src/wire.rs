//! Protobuf's wire format, as far as writing OTLP takes it: field keys, varints and
//! length-delimited fields. The services' exporter writes spans with it, and the lab's store
//! frames the pieces of the requests it keeps.

/// The key of field `number` of `wire_type` (0 varint, 1 fixed 64-bit, 2 length-delimited, 5
/// fixed 32-bit).
#[inline]
pub fn key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    varint(out, u64::from(number) << 3 | u64::from(wire_type));
}

/// `value` as a varint; a value under 128 is one byte, written inline.
#[inline]
pub fn varint(out: &mut Vec<u8>, value: u64) {
    if value < 0x80 {
        out.push(value as u8);
    } else {
        long_varint(out, value);
    }
}

fn long_varint(out: &mut Vec<u8>, value: u64) {
    let (bytes, used) = varint_bytes(value);
    out.extend_from_slice(&bytes[..used]);
}

/// `value` as a varint: its bytes, and how many of them.
#[inline]
pub(crate) fn varint_bytes(mut value: u64) -> ([u8; 10], usize) {
    let (mut bytes, mut used) = ([0; 10], 0);
    while value >= 0x80 {
        bytes[used] = (value as u8 & 0x7f) | 0x80;
        value >>= 7;
        used += 1;
    }
    bytes[used] = value as u8;
    (bytes, used + 1)
}

/// The bytes `value` takes as a varint.
pub(crate) fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// The bytes the key of field `number` takes.
fn key_len(number: u32) -> usize {
    varint_len(u64::from(number) << 3)
}

/// A length-delimited field of `len` bytes, framing included.
pub fn framed(number: u32, len: usize) -> usize {
    key_len(number) + varint_len(len as u64) + len
}

/// The key and length of length-delimited field `number`, whose `len` bytes come next.
#[inline]
pub fn length_delimited(out: &mut Vec<u8>, number: u32, len: usize) {
    key(out, number, 2);
    varint(out, len as u64);
}

/// Field `number` as length-delimited `value`: key, length, bytes.
#[inline]
pub fn bytes(out: &mut Vec<u8>, number: u32, value: &[u8]) {
    length_delimited(out, number, value.len());
    out.extend_from_slice(value);
}
