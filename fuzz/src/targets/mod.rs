//! The fuzz targets, one module each, with `run(input)`: libFuzzer drives them through
//! `fuzz_targets/`, and the main crate's `tests/fuzz_replay.rs` replays seeds and mutations of them
//! on every test run. `write_seeds` turns the frames captured from real clients
//! (`tests/golden/<client>/*.bin`) into each target's input format.

pub mod batch;
pub mod decode;
pub mod dispatch;
pub mod frame;

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use gregor::log::{Checkpoint, LogMetaStore, PartitionKey, PersistedLog, SegmentIndex};
use gregor::{codec, dispatch as router};
use kafka_protocol::messages::{ApiKey, ProduceRequest};

/// A meta store that accepts every write and remembers none: partitions opened on it recover from
/// their segment files alone.
pub struct NoMeta;

impl LogMetaStore for NoMeta {
    fn load_log(&self, _: PartitionKey) -> io::Result<PersistedLog> {
        Ok(PersistedLog::default())
    }
    fn save_log(
        &self,
        _: PartitionKey,
        _: &[(i64, &SegmentIndex)],
        _: &Checkpoint,
    ) -> io::Result<()> {
        Ok(())
    }
    fn remove_segment(&self, _: PartitionKey, _: i64) -> io::Result<()> {
        Ok(())
    }
    fn replace_segments(
        &self,
        _: PartitionKey,
        _: &[i64],
        _: &[(i64, &SegmentIndex)],
        _: Option<i64>,
        _: Option<i64>,
    ) -> io::Result<()> {
        Ok(())
    }
    fn save_cleaner_checkpoint(&self, _: PartitionKey, _: i64) -> io::Result<()> {
        Ok(())
    }
    fn remove_log(&self, _: PartitionKey) -> io::Result<()> {
        Ok(())
    }
}

/// A temporary directory on tmpfs when there is one (the targets write files on every input).
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().expect("a temporary directory")
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("corpus dir");
    std::fs::write(d.join(name), bytes).expect("seed");
}

/// Writes `<corpus>/<target>/<seed>` for every target from the golden frames under `golden`;
/// returns how many seeds it wrote.
pub fn write_seeds(golden: &Path, corpus: &Path) -> usize {
    let mut count = 0;
    for client in std::fs::read_dir(golden).expect("golden dir") {
        let client = client.expect("entry").path();
        let tag = client
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&client)
            .expect("client dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        let mut session = vec![255u8, 7];
        let mut dispatch_session = Vec::new();
        for f in &files {
            let frame = std::fs::read(f).expect("frame");
            let name = format!("{tag}-{}", f.file_name().expect("name").to_string_lossy());
            session.extend_from_slice(&(frame.len() as u32).to_be_bytes());
            session.extend_from_slice(&frame);
            dispatch_session.extend_from_slice(&(frame.len() as u16).to_be_bytes());
            dispatch_session.extend_from_slice(&frame);
            write(
                corpus,
                "dispatch",
                &name,
                &[&(frame.len() as u16).to_be_bytes()[..], &frame].concat(),
            );
            let Some((key, version, _)) = codec::peek_header(&frame) else {
                continue;
            };
            if let Some(i) = router::SUPPORTED.iter().position(|s| s.key as i16 == key) {
                let s = router::SUPPORTED[i];
                if (s.min..=s.max).contains(&version) {
                    let mut seed = vec![i as u8, (version - s.min) as u8];
                    seed.extend_from_slice(&frame[4..]);
                    write(corpus, "decode", &name, &seed);
                }
            }
            if key == ApiKey::Produce as i16 {
                let mut body = Bytes::from(frame.clone());
                let Ok((api, header)) = codec::decode_header(&mut body) else {
                    continue;
                };
                let Ok(req) = codec::decode_body::<ProduceRequest>(
                    api,
                    header.request_api_version,
                    &mut body,
                ) else {
                    continue;
                };
                for p in req.topic_data.iter().flat_map(|t| &t.partition_data) {
                    if let Some(records) = &p.records {
                        for (j, b) in gregor::log::batch::frames(records).enumerate() {
                            write(
                                corpus,
                                "batch",
                                &format!("{name}-{j}"),
                                &[&[0u8][..], b].concat(),
                            );
                            count += 1;
                        }
                    }
                }
            }
            count += 1;
        }
        write(corpus, "frame", &format!("{tag}-session"), &session);
        write(
            corpus,
            "dispatch",
            &format!("{tag}-session"),
            &dispatch_session,
        );
    }
    count
}
