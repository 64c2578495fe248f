//! The wire format on synthetic rows: layout, every output length, every
//! decode error, the printed forms. The same checks over tables the real
//! engine built in the simulator are in the driver package's
//! `tests/query.rs`.

use std::format;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use super::format::{JsonRow, JsonTable, Natvis, ReplyJson, ReplyText, TextRows, Title};
use super::*;
use crate::values::NtStatus;

fn row(index: u32, state: SlotState) -> Row {
    let online = u32::from(state == SlotState::Online);
    Row {
        index,
        number: ProcNumber::dense(index),
        state,
        starts: 1,
        completes: online,
        failures: u32::from(state == SlotState::Vacant),
        visits: u64::from(online) * u64::from(index + 1),
    }
}

/// `n` rows at indices 0, 2, 4, ... in every state in turn.
fn rows(n: u32) -> Vec<Row> {
    let states = [SlotState::Online, SlotState::Starting, SlotState::Vacant];
    (0..n).map(|k| row(2 * k, states[k as usize % 3])).collect()
}

fn summary(capacity: u32) -> Summary {
    Summary {
        capacity,
        reported_max: capacity + 1,
        allocated_slots: capacity,
        slot_bytes: capacity * 128,
        index_bytes: capacity * 8,
        notifications: 11,
        vetoes: 2,
        anomalies: 3,
    }
}

#[test]
fn constants_are_the_documented_values() {
    assert_eq!(IOCTL_PROCNOTIFY_QUERY, (0x22 << 16) | (1 << 14) | (0x800 << 2));
    assert_eq!(ctl_code(0x22, 0x801, 0, 0), 0x0022_2004);
    assert_eq!(MAGIC.to_le_bytes(), *b"PNQR");
    assert_eq!(GUID_DEVINTERFACE_PROCNOTIFY.to_string(), "{2d38cf3c-e842-45e3-93a0-6c5d9c1409e8}");
    assert_eq!(MAX_REPLY_SIZE, 65_600);
    assert_eq!(reply_size(3), 64 + 96);
    assert_eq!(reply_size(u32::MAX), u32::MAX);
}

#[test]
fn a_row_is_little_endian_at_its_documented_offsets() {
    let row = Row {
        index: 0x0102_0304,
        number: ProcNumber { group: 0x0506, number: 0x07 },
        state: SlotState::Starting,
        starts: 0x0809_0A0B,
        completes: 0x0C0D_0E0F,
        failures: 0x1011_1213,
        visits: 0x1415_1617_1819_1A1B,
    };
    let expected: [u8; ROW_SIZE] = [
        0x04, 0x03, 0x02, 0x01, 0x06, 0x05, 0x07, 0x01, 0x0B, 0x0A, 0x09, 0x08, 0x0F, 0x0E, 0x0D, 0x0C, 0x13, 0x12,
        0x11, 0x10, 0, 0, 0, 0, 0x1B, 0x1A, 0x19, 0x18, 0x17, 0x16, 0x15, 0x14,
    ];
    assert_eq!(row.to_bytes(), expected);
}

#[test]
fn the_header_is_little_endian_at_its_documented_offsets() {
    let mut out = [0xAA_u8; HEADER_SIZE + ROW_SIZE];
    let answer = encode(&mut out, &summary(16), rows(1));
    assert_eq!(answer, Encoded { status: NtStatus::SUCCESS, written: 96, reply_size: 96 });
    let words: Vec<u32> =
        out[..HEADER_SIZE].chunks_exact(4).map(|w| u32::from_le_bytes(w.try_into().unwrap())).collect();
    #[rustfmt::skip]
    let expected = [MAGIC, 1, 64, 32, 96, 1, 1, 1, 16, 17, 16, 11, 2, 3, 16 * 128, 16 * 8];
    assert_eq!(words, expected);
}

#[test]
fn every_output_length_gets_the_right_status_and_exactly_the_rows_that_fit() {
    for n in [0_u32, 1, 2, 4, 64] {
        let table = rows(n);
        let capacity = 2 * n + 1;
        let full = HEADER_SIZE + ROW_SIZE * n as usize;
        let mut reference = vec![0; full];
        encode(&mut reference, &summary(capacity), table.iter().copied());
        for len in 0..=full + 2 * ROW_SIZE + 1 {
            let mut out = vec![0xA5_u8; len];
            let answer = encode(&mut out, &summary(capacity), table.iter().copied());
            assert_eq!(answer.reply_size as usize, full, "n={n} len={len}");
            if len < HEADER_SIZE {
                assert_eq!((answer.status, answer.written), (NtStatus::BUFFER_TOO_SMALL, 0), "n={n} len={len}");
                assert!(out.iter().all(|&b| b == 0), "n={n} len={len}: not zeroed");
                continue;
            }
            let fit = ((len - HEADER_SIZE) / ROW_SIZE).min(n as usize);
            let status = if fit < n as usize { NtStatus::BUFFER_OVERFLOW } else { NtStatus::SUCCESS };
            assert_eq!((answer.status, answer.written), (status, HEADER_SIZE + fit * ROW_SIZE), "n={n} len={len}");
            assert!(out[answer.written..].iter().all(|&b| b == 0), "n={n} len={len}: bytes past the reply");
            assert_eq!(out[HEADER_SIZE..answer.written], reference[HEADER_SIZE..answer.written], "n={n} len={len}");
            let reply = decode(&out[..answer.written]).unwrap_or_else(|e| panic!("n={n} len={len}: {e}"));
            assert_eq!(reply.header.rows_written as usize, fit);
            assert_eq!(reply.header.rows_in_table, n);
            assert_eq!(reply.header.is_complete(), fit == n as usize);
            assert_eq!(reply.rows().collect::<Vec<_>>(), table[..fit], "n={n} len={len}");
        }
    }
}

#[test]
fn the_header_counts_every_row_even_those_that_do_not_fit() {
    let table = rows(9);
    let mut probe = [0; HEADER_SIZE];
    encode(&mut probe, &summary(32), table.iter().copied());
    let header = decode(&probe).unwrap().header;
    assert_eq!((header.rows_in_table, header.rows_written, header.present), (9, 0, 6));
    assert_eq!(header.summary, summary(32));
    assert_eq!(header.reply_size, reply_size(9));
}

#[test]
fn check_request_refuses_other_codes_and_any_input() {
    assert_eq!(check_request(IOCTL_PROCNOTIFY_QUERY, 0), Ok(()));
    assert_eq!(check_request(IOCTL_PROCNOTIFY_QUERY, 1), Err(NtStatus::INVALID_PARAMETER));
    assert_eq!(check_request(IOCTL_PROCNOTIFY_QUERY, usize::MAX), Err(NtStatus::INVALID_PARAMETER));
    for code in [0, IOCTL_PROCNOTIFY_QUERY + 4, IOCTL_PROCNOTIFY_QUERY | 3, ctl_code(0x22, 0x800, 0, 0)] {
        assert_eq!(check_request(code, 0), Err(NtStatus::INVALID_DEVICE_REQUEST), "{code:#x}");
        assert_eq!(check_request(code, 8), Err(NtStatus::INVALID_DEVICE_REQUEST), "{code:#x}");
    }
}

/// A complete reply of `rows(4)` in a table of 16, to be damaged.
fn good() -> Vec<u8> {
    let mut out = vec![0; reply_size(4) as usize];
    encode(&mut out, &summary(16), rows(4));
    out
}

fn set_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn decode_names_what_is_wrong() {
    let error = |bytes: &[u8]| decode(bytes).unwrap_err();
    assert_eq!(error(&[]), DecodeError::Short { len: 0, need: 64 });
    assert_eq!(error(&good()[..7]), DecodeError::Short { len: 7, need: 64 });
    assert_eq!(error(&good()[..63]), DecodeError::Short { len: 63, need: 64 });
    assert_eq!(error(&good()[..64 + 3 * 32 + 31]), DecodeError::Short { len: 191, need: 192 });

    let mut bytes = good();
    bytes[0] = b'X';
    assert!(matches!(error(&bytes), DecodeError::Magic(_)));

    let mut bytes = good();
    set_u32(&mut bytes, 4, 2);
    let mismatch = error(&bytes[..8]);
    assert_eq!(mismatch, DecodeError::Version { found: 2, expected: 1 });
    assert_eq!(mismatch.to_string(), "reply format version 2, but this build reads version 1");

    for (at, value) in [(8, 72), (12, 40)] {
        let mut bytes = good();
        set_u32(&mut bytes, at, value);
        assert!(matches!(error(&bytes), DecodeError::Sizes { .. }), "offset {at}");
    }
    for (at, value, rule) in [
        (32, 2049, "capacity is above 2048"),
        (32, 3, "rows_in_table is above capacity"),
        (24, 5, "rows_written is above rows_in_table"),
        (28, 5, "present is above rows_in_table"),
        (16, 64, "reply_size is not header_size + rows_in_table * row_size"),
        (28, 2, "present does not count the rows that are starting or online"),
    ] {
        let mut bytes = good();
        set_u32(&mut bytes, at, value);
        assert_eq!(error(&bytes), DecodeError::Counts { rule }, "offset {at} = {value}");
    }

    let row2 = 64 + 2 * 32;
    let mut bytes = good();
    bytes[row2 + 7] = 3;
    assert_eq!(error(&bytes), DecodeError::Row { position: 2, problem: RowProblem::UnknownState(3) });
    let mut bytes = good();
    set_u32(&mut bytes, row2 + 20, 1);
    assert_eq!(error(&bytes), DecodeError::Row { position: 2, problem: RowProblem::Reserved(1) });
    let mut bytes = good();
    set_u32(&mut bytes, row2, 2);
    let problem = RowProblem::NotAscending { index: 2, previous: 2 };
    assert_eq!(error(&bytes), DecodeError::Row { position: 2, problem });
    let mut bytes = good();
    set_u32(&mut bytes, 64 + 3 * 32, 16);
    let problem = RowProblem::PastCapacity { index: 16, capacity: 16 };
    assert_eq!(error(&bytes), DecodeError::Row { position: 3, problem });

    // Bytes after the rows the header announces are not part of the reply.
    let mut bytes = good();
    bytes.extend_from_slice(&[0xFF; 40]);
    assert_eq!(decode(&bytes).unwrap().rows().count(), 4);
}

#[test]
fn every_truncation_and_every_single_byte_change_is_decoded_or_refused_without_panicking() {
    let reference = good();
    for len in 0..reference.len() {
        let _ = decode(&reference[..len]);
    }
    for at in 0..reference.len() {
        for value in [0, 1, 2, 3, 0x7F, 0x80, 0xFF] {
            let mut bytes = reference.clone();
            bytes[at] = value;
            if let Ok(reply) = decode(&bytes) {
                assert_eq!(reply.rows().count(), reply.header.rows_written as usize);
            }
        }
    }
}

fn sample() -> (Summary, Vec<Row>) {
    let mut vacant = row(6, SlotState::Vacant);
    vacant.number = ProcNumber { group: 9, number: 9 };
    let table = vec![row(0, SlotState::Online), row(1, SlotState::Starting), vacant, row(12, SlotState::Online)];
    (
        Summary { capacity: 2048, allocated_slots: 16, slot_bytes: 2048, index_bytes: 16_384, ..Summary::default() },
        table,
    )
}

#[test]
fn the_text_table_has_the_simulators_layout() {
    let (summary, table) = sample();
    let title = Title { source: "IOCTL_PROCNOTIFY_QUERY", summary: &summary };
    let text = format!("{title}\n{}", TextRows { rows: table.iter().copied(), end: 2048 });
    let expected = "\
procnotify table (IOCTL_PROCNOTIFY_QUERY): capacity=2048 allocated_slots=16 (2048 bytes of slots + 16384 bytes of index)
    index      group  number  state     starts  completes  failures  visits
    [  0]          0       0  online         1          1         0       1
    [  1]          0       1  starting       1          0         0       0
    [2..5]         —       —  absent         —          —         —       —
    [  6]          —       —  vacant         1          0         1       0
    [7..11]        —       —  absent         —          —         —       —
    [ 12]          0      12  online         1          1         0      13
    [13..2047]      —       —  absent         —          —         —       —
";
    assert_eq!(text, expected);
    let empty = TextRows { rows: core::iter::empty(), end: 1 };
    assert_eq!(
        empty.to_string(),
        format!("{}\n    [  0]          —       —  absent         —          —         —       —\n", format::COLUMNS)
    );
}

#[test]
fn the_json_table_has_the_simulators_table_event_shape() {
    let (summary, table) = sample();
    let json = JsonTable { summary: &summary, rows: table.iter().copied(), end: 16 }.to_string();
    let expected = String::new()
        + r#"{"kind":"table","capacity":2048,"allocated_slots":16,"slot_bytes":2048,"index_bytes":16384,"rows":["#
        + r#"{"index":0,"state":"online","group":0,"number":0,"starts":1,"completes":1,"failures":0,"visits":1},"#
        + r#"{"index":1,"state":"starting","group":0,"number":1,"starts":1,"completes":0,"failures":0,"visits":0},"#
        + r#"{"index":6,"state":"vacant","group":null,"number":null,"starts":1,"completes":0,"failures":1,"visits":0},"#
        + r#"{"index":12,"state":"online","group":0,"number":12,"starts":1,"completes":1,"failures":0,"visits":13}"#
        + r#"],"absent":[{"first":2,"last":5},{"first":7,"last":11},{"first":13,"last":15}]}"#;
    assert_eq!(json, expected);
    assert_eq!(
        JsonRow(&table[2]).to_string(),
        expected[expected.find(r#"{"index":6"#).unwrap()..].split_once('}').unwrap().0.to_string() + "}"
    );
}

#[test]
fn the_natvis_form_matches_the_visualiser() {
    let (_, table) = sample();
    assert_eq!(
        Natvis(&table[0]).to_string(),
        "{ online index=0 group=0 number=0 starts=1 completes=1 failures=0 visits=1 }"
    );
    assert_eq!(Natvis(&table[2]).to_string(), "{ vacant index=6 starts=1 completes=0 failures=1 visits=0 }");
}

#[test]
fn an_incomplete_reply_shows_no_absent_runs_past_its_last_row() {
    let (summary, table) = sample();
    let mut out = vec![0; HEADER_SIZE + 2 * ROW_SIZE];
    assert_eq!(encode(&mut out, &summary, table.iter().copied()).status, NtStatus::BUFFER_OVERFLOW);
    let reply = decode(&out).unwrap();
    assert_eq!(reply.known_end(), 2);
    let mut full = vec![0; MAX_REPLY_SIZE];
    let written = encode(&mut full, &summary, table.iter().copied()).written;
    assert_eq!(decode(&full[..written]).unwrap().known_end(), 2048);
    let mut empty = [0; HEADER_SIZE];
    encode(&mut empty, &summary, table.iter().copied());
    assert_eq!(decode(&empty).unwrap().known_end(), 0);
}

#[test]
fn a_reply_prints_as_procnotify_ctl_table_and_counts_its_lines() {
    let (mut summary, table) = sample();
    summary.reported_max = 4096;
    summary.notifications = 9;
    summary.anomalies = 1;
    let mut full = vec![0; MAX_REPLY_SIZE];
    let written = encode(&mut full, &summary, table.iter().copied()).written;
    let reply = decode(&full[..written]).unwrap();
    let text = ReplyText(&reply).to_string();
    let (title, rest) = text.split_once('\n').unwrap();
    assert_eq!(
        title,
        "procnotify table (IOCTL_PROCNOTIFY_QUERY, reply format 1): capacity=2048 allocated_slots=16 \
         (2048 bytes of slots + 16384 bytes of index)"
    );
    let rows = TextRows { rows: table.iter().copied(), end: 2048 }.to_string();
    assert_eq!(rest, rows + "present=3 reported_max=4096 notifications=9 vetoes=0 anomalies=1\n");
    assert_eq!(ReplyText(&reply).lines(), text.lines().count() as u64);
    // Cut short: the rows that fit, no absent run past the last, and a
    // line saying so; the header alone.
    for (rows, lines) in [(2, 6), (0, 4)] {
        let mut out = vec![0; HEADER_SIZE + rows * ROW_SIZE];
        assert_eq!(encode(&mut out, &summary, table.iter().copied()).status, NtStatus::BUFFER_OVERFLOW);
        let reply = decode(&out).unwrap();
        let text = ReplyText(&reply).to_string();
        assert!(
            text.ends_with(&format!(
                "(this reply holds {rows} of the table's 4 rows; indices after the last one are not shown)\n"
            )),
            "{text}"
        );
        assert!(!text.contains("absent"), "{text}");
        assert_eq!((ReplyText(&reply).lines(), text.lines().count() as u64), (lines, lines));
    }
}

#[test]
fn a_reply_as_json_holds_the_table_object() {
    let (summary, table) = sample();
    let mut out = vec![0; HEADER_SIZE + 2 * ROW_SIZE];
    encode(&mut out, &summary, table.iter().copied());
    let reply = decode(&out).unwrap();
    let json = ReplyJson { reply: &reply, schema: None }.to_string();
    let table = JsonTable { summary: &summary, rows: table.iter().copied().take(2), end: 2 }.to_string();
    assert_eq!(
        json,
        format!(
            "{{\"reply_format\":1,\"present\":3,\"reported_max\":0,\"rows_in_table\":4,\"rows_written\":2,\
             \"stats\":{{\"notifications\":0,\"vetoes\":0,\"anomalies\":0}},\"table\":{table}}}"
        )
    );
    // The schema goes first, as a JSON string whatever it holds.
    let named = ReplyJson { reply: &reply, schema: Some("a\"b\\c\n/1") }.to_string();
    assert_eq!(named, format!("{{\"schema\":\"a\\\"b\\\\c\\u000a/1\",{}", &json[1..]));
}
