use super::*;

/// `dig web.example A` as sent by a client (id 0x1234, RD, one question,
/// plus an EDNS OPT record that the parser must ignore).
fn dig_query() -> Vec<u8> {
    let mut msg = vec![0x12, 0x34, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1];
    msg.extend_from_slice(b"\x03WeB\x07example\x00");
    msg.extend_from_slice(&[0, 1, 0, 1]);
    msg.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    msg
}

#[test]
fn a_query_is_parsed_with_its_case_kept() {
    let query = parse_query(&dig_query()).unwrap();
    assert_eq!(query.id, 0x1234);
    assert_eq!(query.opcode(), 0);
    assert_eq!(query.question.name(), "WeB.example");
    assert_eq!(query.question.qtype, TYPE_A);
    assert_eq!(query.question.qclass, CLASS_IN);
}

#[test]
fn build_query_round_trips() {
    let msg = build_query(7, "db.corp.test.", TYPE_AAAA);
    let query = parse_query(&msg).unwrap();
    assert_eq!(query.id, 7);
    assert_eq!(query.question.name(), "db.corp.test");
    assert_eq!(query.question.qtype, TYPE_AAAA);
}

#[test]
fn compression_pointers_in_the_question_are_followed() {
    // In a query the only bytes before the question are the header, so a
    // pointer there can only reach into it; the name reader is general.
    let mut msg = vec![0; 12];
    msg.extend_from_slice(b"\x01a\x03com\x00"); // 12..19: a.com
    msg.extend_from_slice(b"\x01b\xC0\x0E"); // 19: b, then pointer to 14 (com)
    let (labels, end) = read_name(&msg, 19).unwrap();
    assert_eq!(labels, vec![b"b".to_vec(), b"com".to_vec()]);
    assert_eq!(end, 23, "the name ends after the pointer, not at its target");

    // A whole query whose question points into the header: nscount and
    // arcount spell "\x01x\x00".
    let mut msg = vec![0, 9, 0, 0, 0, 1, 0, 0, 1, b'x', 0, 0];
    msg.extend_from_slice(b"\x01b\xC0\x08");
    msg.extend_from_slice(&[0, 1, 0, 1]);
    let query = parse_query(&msg).unwrap();
    assert_eq!(query.question.name(), "b.x");
    assert_eq!(query.question.qtype, TYPE_A);
}

#[test]
fn pointer_loops_and_forward_pointers_are_rejected() {
    let mut msg = vec![0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]); // points at itself
    assert_eq!(parse_query(&msg), Err(WireError::PointerForward { offset: 12 }));
    let mut msg = vec![0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&[0xC0, 40, 0, 1, 0, 1]);
    assert_eq!(parse_query(&msg), Err(WireError::PointerForward { offset: 12 }));
}

#[test]
fn malformed_queries_are_rejected() {
    assert_eq!(parse_query(&[0; 5]), Err(WireError::Short { len: 5 }));
    let mut two = build_query(1, "a", TYPE_A);
    two[5] = 2;
    assert_eq!(parse_query(&two), Err(WireError::QuestionCount { count: 2 }));
    let mut reply = build_query(1, "a", TYPE_A);
    reply[2] |= 0x80;
    assert_eq!(parse_query(&reply), Err(WireError::NotQuery));
    let cut = build_query(1, "abc", TYPE_A);
    assert!(matches!(parse_query(&cut[..14]), Err(WireError::Truncated { .. })));
    assert!(matches!(
        parse_query(&cut[..cut.len() - 1]),
        Err(WireError::Truncated { .. })
    ));
    let mut reserved = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 1, 0, 1];
    assert!(matches!(parse_query(&reserved), Err(WireError::LabelType { .. })));
    reserved.truncate(12);
    for _ in 0..5 {
        reserved.push(63);
        reserved.extend_from_slice(&[b'x'; 63]);
    }
    reserved.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(parse_query(&reserved), Err(WireError::NameTooLong));
}

#[test]
fn a_answers_point_back_at_the_question() {
    let query = parse_query(&dig_query()).unwrap();
    let answers = [
        Record::A(Ipv4Addr::new(10, 0, 0, 2)),
        Record::A(Ipv4Addr::new(10, 0, 0, 3)),
    ];
    let reply = response(&query, Rcode::NoError, true, &answers, 0, UDP_LIMIT);
    assert_eq!(&reply[..2], &[0x12, 0x34]);
    let flags = u16::from_be_bytes([reply[2], reply[3]]);
    assert_eq!(flags & FLAG_QR, FLAG_QR);
    assert_eq!(flags & FLAG_AA, FLAG_AA);
    assert_eq!(flags & FLAG_RD, FLAG_RD, "RD is copied");
    assert_eq!(flags & FLAG_RA, FLAG_RA);
    assert_eq!(flags & FLAG_TC, 0);
    // The question is echoed byte for byte, case included.
    assert_eq!(&reply[12..29], b"\x03WeB\x07example\x00\x00\x01\x00\x01");
    assert_eq!(&reply[29..31], &[0xC0, 12]);
    let (rcode, addresses) = parse_a_answers(&reply).unwrap();
    assert_eq!(rcode, Rcode::NoError);
    assert_eq!(addresses, vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)]);
}

#[test]
fn error_rcodes_and_nodata_have_no_answers() {
    let query = parse_query(&build_query(5, "nope", TYPE_A)).unwrap();
    for rcode in [Rcode::NxDomain, Rcode::ServFail, Rcode::Refused, Rcode::NoError] {
        let reply = response(&query, rcode, false, &[], 0, UDP_LIMIT);
        assert_eq!(parse_a_answers(&reply).unwrap(), (rcode, vec![]));
        assert_eq!(reply[3] & 0x0F, rcode as u8);
        assert_eq!(&reply[6..8], &[0, 0]);
    }
}

#[test]
fn ptr_answers_carry_the_name() {
    let query = parse_query(&build_query(5, "2.0.0.10.in-addr.arpa", TYPE_PTR)).unwrap();
    let reply = response(
        &query,
        Rcode::NoError,
        true,
        &[Record::Ptr("app-web-1".into())],
        0,
        UDP_LIMIT,
    );
    let tail = &reply[reply.len() - 11..];
    assert_eq!(tail, b"\x09app-web-1\x00");
    assert_eq!(&reply[6..8], &[0, 1]);
}

#[test]
fn too_many_answers_are_cut_and_marked_truncated() {
    let query = parse_query(&build_query(5, "web", TYPE_A)).unwrap();
    let answers: Vec<Record> = (0..100).map(|i| Record::A(Ipv4Addr::new(10, 0, 0, i))).collect();
    let reply = response(&query, Rcode::NoError, true, &answers, 0, UDP_LIMIT);
    assert!(reply.len() <= UDP_LIMIT);
    let flags = u16::from_be_bytes([reply[2], reply[3]]);
    assert_eq!(flags & FLAG_TC, FLAG_TC);
    let (_, addresses) = parse_a_answers(&reply).unwrap();
    assert_eq!(addresses.len(), (UDP_LIMIT - 12 - 9) / 16);
    let whole = response(&query, Rcode::NoError, true, &answers, 0, usize::from(u16::MAX));
    assert_eq!(parse_a_answers(&whole).unwrap().1.len(), 100);
}

#[test]
fn an_unreadable_question_gets_a_formerr_header() {
    let mut msg = build_query(0xBEEF, "a", TYPE_A);
    msg[5] = 3;
    let reply = error_response(&msg, Rcode::FormErr).unwrap();
    assert_eq!(reply.len(), HEADER_LEN);
    assert_eq!(&reply[..2], &[0xBE, 0xEF]);
    assert_eq!(reply[3] & 0x0F, Rcode::FormErr as u8);
    assert!(error_response(&[1, 2, 3], Rcode::FormErr).is_none());
}
