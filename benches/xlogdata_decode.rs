//! Decoding throughput of the WAL stream: a buffer of CopyData messages carrying
//! XLogData (as the server sends during START_REPLICATION) is framed by
//! `BackendMessage::parse` and decoded by `ReplicationMessage::parse`, in bytes of WAL
//! per second. The payload is shared, not copied (`Bytes::slice`), so the figure is the
//! framing cost. Run with `cargo bench --bench xlogdata_decode`.

use bytes::{BufMut, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use barman_protocol::message::backend::BackendMessage;
use barman_protocol::message::copy_data::ReplicationMessage;

/// `count` CopyData messages with `payload` bytes of WAL each, as the server frames
/// them ('d', length, 'w', start, end, send time, WAL).
fn stream(count: usize, payload: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(count * (payload + 30));
    let mut lsn = 0x1_0000_0000u64;
    for i in 0..count {
        buf.put_u8(b'd');
        buf.put_i32((4 + 1 + 24 + payload) as i32);
        buf.put_u8(b'w');
        buf.put_u64(lsn);
        buf.put_u64(lsn + payload as u64);
        buf.put_i64(i as i64);
        buf.put_bytes((i % 251) as u8, payload);
        lsn += payload as u64;
    }
    buf
}

fn decode_all(mut buf: BytesMut) -> u64 {
    let mut wal = 0u64;
    while let Ok(Some(message)) = BackendMessage::parse(&mut buf, 1 << 30) {
        if let BackendMessage::CopyData(payload) = message {
            if let Ok(ReplicationMessage::XLogData(x)) = ReplicationMessage::parse(&payload) {
                wal += x.data().len() as u64;
            }
        }
    }
    wal
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("xlogdata_decode");
    // The server sends at most XLOG_BLCKSZ-sized chunks when catching up on old WAL,
    // and up to 128 kB (MAX_SEND_SIZE) from the WAL buffers.
    for payload in [8192usize, 131_072] {
        let count = (64 << 20) / payload;
        let input = stream(count, payload);
        group.throughput(Throughput::Bytes((count * payload) as u64));
        group.bench_function(format!("{}k_messages_64mb", payload / 1024), |b| {
            b.iter_batched(
                || input.clone(),
                |buf| assert_eq!(decode_all(buf), (count * payload) as u64),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
