//! Replays sessions recorded from real servers (PostgreSQL 13 and 18: startup,
//! IDENTIFY_SYSTEM, SHOW, a failing TIMELINE_HISTORY, START_REPLICATION with XLogData
//! and keepalives, the stop; recorded by `tests/it/live/transcripts.rs`) through the
//! message decoders, without a server: the same messages come out, in order, with no
//! byte left; every truncation asks for more input instead of failing or panicking; a
//! length limit below a message's size is an error.

use std::path::PathBuf;

use bytes::BytesMut;

use barman_protocol::message::backend::BackendMessage;
use barman_protocol::message::copy_data::ReplicationMessage;

fn transcript(major: u32) -> (Vec<u8>, Vec<String>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/transcripts");
    let bytes = std::fs::read(dir.join(format!("pg{major}_replication_session.bin"))).unwrap();
    let names =
        std::fs::read_to_string(dir.join(format!("pg{major}_replication_session.messages")))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
    (bytes, names)
}

/// Decode everything; message names with runs collapsed, as recorded.
fn decode(bytes: &[u8], max_len: usize) -> Result<(Vec<String>, usize), barman_protocol::Error> {
    let mut buf = BytesMut::from(bytes);
    let mut names: Vec<String> = Vec::new();
    while let Some(message) = BackendMessage::parse(&mut buf, max_len)? {
        let name = match &message {
            BackendMessage::CopyData(payload) => match ReplicationMessage::parse(payload)? {
                ReplicationMessage::XLogData(x) => {
                    assert_eq!(
                        x.data_end().unwrap().as_u64() - x.wal_start().as_u64(),
                        x.data().len() as u64
                    );
                    "CopyData(XLogData)".to_string()
                }
                ReplicationMessage::PrimaryKeepalive(_) => "CopyData(PrimaryKeepalive)".to_string(),
                other => format!("CopyData({other:?})"),
            },
            other => other.name().to_string(),
        };
        if names.last() != Some(&name) {
            names.push(name);
        }
    }
    Ok((names, buf.len()))
}

#[test]
fn recorded_sessions_decode_into_the_recorded_messages() {
    for major in [13, 18] {
        let (bytes, expected) = transcript(major);
        let (names, left) = decode(&bytes, 1 << 30).unwrap();
        assert_eq!(names, expected, "PostgreSQL {major}");
        assert_eq!(left, 0, "PostgreSQL {major}: bytes left over");
    }
}

#[test]
fn every_truncation_of_a_session_asks_for_more_input() {
    for major in [13, 18] {
        let (bytes, expected) = transcript(major);
        // Cut at many points (every byte of the first 4 kB, then every 997th):
        // decoding what is there never fails, and what is decoded is a prefix.
        let cuts = (0..bytes.len().min(4096)).chain((4096..bytes.len()).step_by(997));
        for cut in cuts {
            let (names, _) = decode(&bytes[..cut], 1 << 30)
                .unwrap_or_else(|e| panic!("PostgreSQL {major}, cut at {cut}: {e}"));
            assert!(
                names.len() <= expected.len()
                    && names[..names.len().saturating_sub(1)]
                        == expected[..names.len().saturating_sub(1)],
                "PostgreSQL {major}, cut at {cut}: {names:?}"
            );
        }
    }
}

#[test]
fn a_message_larger_than_the_limit_is_an_error() {
    let (bytes, _) = transcript(18);
    // The XLogData messages are far larger than 1 kB.
    assert!(decode(&bytes, 1024).is_err());
}
