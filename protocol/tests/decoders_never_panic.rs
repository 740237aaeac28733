//! Property tests: arbitrary bytes and text, in arbitrary chunkings, never make a
//! decoder panic. Every decoder that reads the network or disk is covered: backend
//! messages, CopyData sub-messages (WAL streaming and BASE_BACKUP), the WAL segment
//! validator, page and record headers, timeline history files, WAL file names, segment
//! summaries, connection strings and server versions. Valid WAL with random damage is
//! covered too, since pure noise rarely gets past the first page header.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use barman_protocol::message::backend::BackendMessage;
use barman_protocol::message::copy_data::{BaseBackupMessage, ReplicationMessage};
use barman_protocol::wal::page::XLogPageHeader;
use barman_protocol::wal::record::XLogRecordHeader;
use barman_protocol::wal::testkit::WalBuilder;
use barman_protocol::wal::{
    SegmentSummary, SegmentValidator, TimelineHistory, ValidatorOptions, WalFileName,
};
use barman_protocol::{ConnInfo, ServerVersion, TimelineId, WalSegNo, WalSegmentSize};

fn small_segment() -> WalSegmentSize {
    WalSegmentSize::new(1 << 20).expect("1 MiB is a valid segment size")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn backend_messages(bytes in proptest::collection::vec(any::<u8>(), 0..2048), max in 0usize..4096) {
        let mut buf = BytesMut::from(&bytes[..]);
        // Keep parsing until it needs more input or reports an error.
        for _ in 0..64 {
            match BackendMessage::parse(&mut buf, max) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    }

    #[test]
    fn copy_data_sub_messages(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let payload = Bytes::from(bytes);
        let _ = ReplicationMessage::parse(&payload);
        let _ = BaseBackupMessage::parse(&payload);
    }

    #[test]
    fn page_and_record_headers(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = XLogPageHeader::decode(&bytes);
        let _ = XLogRecordHeader::decode(&bytes);
    }

    #[test]
    fn validator_on_noise(bytes in proptest::collection::vec(any::<u8>(), 0..40_000), chunk in 1usize..5000, partial in any::<bool>()) {
        let size = small_segment();
        let name = if partial { "000000010000000000000002.partial" } else { "000000010000000000000002" };
        let options = ValidatorOptions::for_file_name(name, size).unwrap();
        let mut v = SegmentValidator::new(options).unwrap();
        for piece in bytes.chunks(chunk) {
            if v.feed(piece).is_err() {
                break;
            }
        }
        let _ = v.finish();
    }

    #[test]
    fn validator_on_damaged_wal(offset in 0usize..(1 << 20), bits in 1u8..=255, chunk in 1usize..70_000) {
        let size = small_segment();
        let mut b = WalBuilder::new(16, size, 2);
        b.commit(700, 1_000);
        b.restore_point("p", 2_000);
        b.fill_segment(300);
        let mut bytes = b.segment(2);
        bytes[offset] ^= bits;
        let options = ValidatorOptions::new(TimelineId::new(1).unwrap(), WalSegNo::new(2), size);
        let mut v = SegmentValidator::new(options).unwrap();
        let mut failed = false;
        for piece in bytes.chunks(chunk) {
            if v.feed(piece).is_err() {
                failed = true;
                break;
            }
        }
        // Damage is either detected, or fell in bytes no check covers (padding after
        // the last record of a page); it never panics, finishing the segment included.
        if !failed {
            let _ = v.finish();
        }
    }

    #[test]
    fn text_decoders(text in ".{0,300}") {
        let _ = TimelineHistory::parse(TimelineId::new(2).unwrap(), &text);
        let _ = WalFileName::parse(&text, small_segment());
        let _ = SegmentSummary::parse_line(&text);
        let _ = text.parse::<barman_protocol::Lsn>();
        let _ = ServerVersion::parse(&text);
        let _ = ConnInfo::parse(&text);
    }

    #[test]
    fn conninfo_shaped_text(pairs in proptest::collection::vec(("[a-z_]{1,12}", "[ -~]{0,20}"), 0..6)) {
        let text: String = pairs.iter().map(|(k, v)| format!("{k}='{}' ", v.replace('\\', "\\\\").replace('\'', "\\'"))).collect();
        let _ = ConnInfo::parse(&text);
        let _ = ConnInfo::parse(&format!("postgresql://{}", text.replace(' ', "&")));
    }
}
