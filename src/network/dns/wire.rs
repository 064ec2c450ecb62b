//! The DNS message format (RFC 1035 §4.1), as much of it as the engine's
//! server needs: read a query's header and its one question, and build the
//! replies it gives itself (A and PTR answers, NODATA, NXDOMAIN, SERVFAIL,
//! REFUSED, FORMERR). Forwarded queries are relayed as bytes and never
//! parsed past the header. Pure: no I/O.
//!
//! A crate (`hickory-proto`) would bring a large tree for these ~300
//! lines; the subset below is small and fully unit-tested.

use std::net::Ipv4Addr;

use thiserror::Error;

pub const HEADER_LEN: usize = 12;
/// The largest UDP reply without EDNS (RFC 1035 §4.2.1); a longer one is
/// cut and marked truncated, so the client retries over TCP.
pub const UDP_LIMIT: usize = 512;
/// A name on the wire is at most 255 bytes (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;

pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;

const FLAG_QR: u16 = 0x8000;
const OPCODE_MASK: u16 = 0x7800;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
/// The offset of the question's name in every message: answers point
/// back to it instead of repeating it (RFC 1035 §4.1.4).
const QUESTION_POINTER: u16 = 0xC000 | HEADER_LEN as u16;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("a DNS message of {len} bytes is shorter than its 12-byte header")]
    Short { len: usize },
    #[error("not a query: the response bit is set")]
    NotQuery,
    #[error("a query with {count} questions: exactly one is supported")]
    QuestionCount { count: u16 },
    #[error("the question runs past the end of the message (byte {offset})")]
    Truncated { offset: usize },
    #[error("label type {bits:#04x} at byte {offset} is reserved")]
    LabelType { bits: u8, offset: usize },
    #[error("compression pointer at byte {offset} does not point backwards")]
    PointerForward { offset: usize },
    #[error("the question's name is longer than 255 bytes")]
    NameTooLong,
}

/// Response codes (RFC 1035 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5,
}

/// One answer record the server gives itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    A(Ipv4Addr),
    /// A reverse lookup's name (dotted, no trailing dot).
    Ptr(String),
}

/// The question of a query: its name as sent (case kept, since resolvers
/// that randomise case check the reply echoes it), type and class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub labels: Vec<Vec<u8>>,
    pub qtype: u16,
    pub qclass: u16,
}

impl Question {
    /// The name, dotted, without a trailing dot; "" for the root.
    pub fn name(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        labels.join(".")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    pub flags: u16,
    pub question: Question,
}

impl Query {
    /// The opcode (0 is a standard query).
    pub fn opcode(&self) -> u16 {
        (self.flags & OPCODE_MASK) >> 11
    }
}

fn u16_at(msg: &[u8], offset: usize) -> Result<u16, WireError> {
    match msg.get(offset..offset + 2) {
        Some(&[hi, lo]) => Ok(u16::from_be_bytes([hi, lo])),
        _ => Err(WireError::Truncated { offset }),
    }
}

/// The id of anything at least a header long, to address an error reply.
pub fn message_id(msg: &[u8]) -> Option<u16> {
    u16_at(msg, 0).ok().filter(|_| msg.len() >= HEADER_LEN)
}

/// Parses a query: header, then its single question. Anything after the
/// question (an EDNS OPT record, say) is ignored.
pub fn parse_query(msg: &[u8]) -> Result<Query, WireError> {
    if msg.len() < HEADER_LEN {
        return Err(WireError::Short { len: msg.len() });
    }
    let id = u16_at(msg, 0)?;
    let flags = u16_at(msg, 2)?;
    if flags & FLAG_QR != 0 {
        return Err(WireError::NotQuery);
    }
    let count = u16_at(msg, 4)?;
    if count != 1 {
        return Err(WireError::QuestionCount { count });
    }
    let (labels, end) = read_name(msg, HEADER_LEN)?;
    let question = Question {
        labels,
        qtype: u16_at(msg, end)?,
        qclass: u16_at(msg, end + 2)?,
    };
    Ok(Query { id, flags, question })
}

/// Reads the name at `start`, following compression pointers; returns the
/// labels and the offset just past the name where it starts. Pointers
/// must point strictly backwards, which also rules out loops.
fn read_name(msg: &[u8], start: usize) -> Result<(Vec<Vec<u8>>, usize), WireError> {
    let mut labels = Vec::new();
    let mut offset = start;
    let mut end = None;
    let mut length = 0;
    loop {
        let len = *msg.get(offset).ok_or(WireError::Truncated { offset })?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                return Ok((labels, end.unwrap_or(offset + 1)));
            }
            0x00 => {
                let label = msg
                    .get(offset + 1..offset + 1 + usize::from(len))
                    .ok_or(WireError::Truncated { offset })?;
                length += label.len() + 1;
                if length + 1 > MAX_NAME {
                    return Err(WireError::NameTooLong);
                }
                labels.push(label.to_vec());
                offset += 1 + usize::from(len);
            }
            0xC0 => {
                let target = usize::from(u16_at(msg, offset)? & 0x3FFF);
                if target >= offset {
                    return Err(WireError::PointerForward { offset });
                }
                end.get_or_insert(offset + 2);
                offset = target;
            }
            bits => return Err(WireError::LabelType { bits, offset }),
        }
    }
}

fn push_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// `name` as labels; empty labels (a trailing dot) are dropped and a label
/// is cut at 63 bytes, the most a length byte can say.
fn push_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let bytes = &label.as_bytes()[..label.len().min(63)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out.push(0);
}

fn header(out: &mut Vec<u8>, id: u16, flags: u16, questions: u16, answers: u16) {
    push_u16(out, id);
    push_u16(out, flags);
    push_u16(out, questions);
    push_u16(out, answers);
    push_u16(out, 0);
    push_u16(out, 0);
}

fn reply_flags(query_flags: u16, rcode: Rcode, authoritative: bool) -> u16 {
    let mut flags = FLAG_QR | FLAG_RA | (query_flags & (OPCODE_MASK | FLAG_RD)) | rcode as u16;
    if authoritative {
        flags |= FLAG_AA;
    }
    flags
}

/// The reply to `query`: its question echoed, then `answers` with `ttl`.
/// Answers that would take the message past `limit` bytes are left out
/// and the reply marked truncated (TC).
pub fn response(
    query: &Query,
    rcode: Rcode,
    authoritative: bool,
    answers: &[Record],
    ttl: u32,
    limit: usize,
) -> Vec<u8> {
    let mut records = Vec::new();
    let mut fitted = 0u16;
    let mut truncated = false;
    let question_len: usize = query.question.labels.iter().map(|l| l.len() + 1).sum::<usize>() + 5;
    for answer in answers {
        let mut record = Vec::new();
        push_u16(&mut record, QUESTION_POINTER);
        let (rtype, rdata) = match answer {
            Record::A(address) => (TYPE_A, address.octets().to_vec()),
            Record::Ptr(name) => {
                let mut data = Vec::new();
                push_name(&mut data, name);
                (TYPE_PTR, data)
            }
        };
        push_u16(&mut record, rtype);
        push_u16(&mut record, CLASS_IN);
        record.extend_from_slice(&ttl.to_be_bytes());
        push_u16(&mut record, rdata.len() as u16);
        record.extend_from_slice(&rdata);
        if HEADER_LEN + question_len + records.len() + record.len() > limit || fitted == u16::MAX {
            truncated = true;
            break;
        }
        records.extend_from_slice(&record);
        fitted += 1;
    }
    let mut flags = reply_flags(query.flags, rcode, authoritative);
    if truncated {
        flags |= FLAG_TC;
    }
    let mut out = Vec::with_capacity(HEADER_LEN + question_len + records.len());
    header(&mut out, query.id, flags, 1, fitted);
    for label in &query.question.labels {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    push_u16(&mut out, query.question.qtype);
    push_u16(&mut out, query.question.qclass);
    out.extend_from_slice(&records);
    out
}

/// A header-only reply (no question) for a message whose question could
/// not be read: FORMERR, with the id and opcode of what was sent.
pub fn error_response(msg: &[u8], rcode: Rcode) -> Option<Vec<u8>> {
    let id = message_id(msg)?;
    let flags = u16_at(msg, 2).ok()?;
    let mut out = Vec::with_capacity(HEADER_LEN);
    header(&mut out, id, reply_flags(flags, rcode, false), 0, 0);
    Some(out)
}

/// A standard query for `name` (recursion desired): what clients send;
/// used by tests and the latency check.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    header(&mut out, id, FLAG_RD, 1, 0);
    push_name(&mut out, name);
    push_u16(&mut out, qtype);
    push_u16(&mut out, CLASS_IN);
    out
}

/// What a reply says, read back: rcode, whether truncated, and its A
/// answers in order (other types skipped). For tests and for clients of
/// the server that want to check it, such as the integration tests.
pub fn parse_a_answers(msg: &[u8]) -> Result<(Rcode, Vec<Ipv4Addr>), WireError> {
    if msg.len() < HEADER_LEN {
        return Err(WireError::Short { len: msg.len() });
    }
    let flags = u16_at(msg, 2)?;
    let rcode = match flags & 0x000F {
        0 => Rcode::NoError,
        1 => Rcode::FormErr,
        3 => Rcode::NxDomain,
        4 => Rcode::NotImp,
        5 => Rcode::Refused,
        _ => Rcode::ServFail,
    };
    let questions = u16_at(msg, 4)?;
    let answers = u16_at(msg, 6)?;
    let mut offset = HEADER_LEN;
    for _ in 0..questions {
        offset = skip_name(msg, offset)? + 4;
    }
    let mut addresses = Vec::new();
    for _ in 0..answers {
        offset = skip_name(msg, offset)?;
        let rtype = u16_at(msg, offset)?;
        let len = usize::from(u16_at(msg, offset + 8)?);
        let data = msg
            .get(offset + 10..offset + 10 + len)
            .ok_or(WireError::Truncated { offset })?;
        if let (TYPE_A, &[a, b, c, d]) = (rtype, data) {
            addresses.push(Ipv4Addr::new(a, b, c, d));
        }
        offset += 10 + len;
    }
    Ok((rcode, addresses))
}

/// The offset past the (possibly compressed) name at `offset`.
fn skip_name(msg: &[u8], mut offset: usize) -> Result<usize, WireError> {
    loop {
        let len = *msg.get(offset).ok_or(WireError::Truncated { offset })?;
        match len & 0xC0 {
            0x00 if len == 0 => return Ok(offset + 1),
            0x00 => offset += 1 + usize::from(len),
            0xC0 => return Ok(offset + 2),
            bits => return Err(WireError::LabelType { bits, offset }),
        }
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
