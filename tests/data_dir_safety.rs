//! Start-up never destroys what it did not create: directories in a log dir that are not gregor's
//! survive, a lost meta store rebuilds topics from their partition directories (each names its
//! topic id in Kafka's `partition.metadata`) instead of deleting them, and a topic delete cut
//! short is either undone or finished, never half-applied.

mod common;

use bytes::Bytes;
use common::store::decode;
use common::*;

/// Every (offset, value) of a partition from offset 0.
async fn read_all(c: &mut Client, topic: &str, partition: i32) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut next = 0;
    loop {
        let p = fetch(c, topic, partition, next).await;
        assert_eq!(p.error_code, 0, "fetch {topic}-{partition}@{next}");
        let recs = decode(p.records.as_ref().unwrap_or(&Bytes::new()));
        if recs.is_empty() {
            return out;
        }
        for r in recs {
            if r.0 >= next {
                out.push((r.0, r.2.unwrap()));
                next = r.0 + 1;
            }
        }
    }
}

/// Produces `n` one-record batches to each partition; returns what each holds.
async fn fill(c: &mut Client, topic: &str, partitions: i32, n: usize) -> Vec<Vec<(i64, Vec<u8>)>> {
    let mut want = vec![Vec::new(); partitions as usize];
    for i in 0..n {
        for p in 0..partitions {
            let v = format!("{topic}-{p}-{i}").into_bytes();
            let (err, base) = produce(c, topic, p, batch(&[&v], None)).await;
            assert_eq!(err, 0);
            want[p as usize].push((base, v));
        }
    }
    want
}

#[tokio::test]
async fn directories_that_are_not_gregors_survive_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join("photos")).unwrap();
    std::fs::write(root.join("photos/cat.txt"), "meow").unwrap();
    std::fs::create_dir_all(root.join("lost+found")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    // Named like a partition, but without gregor's partition.metadata: not gregor's either.
    std::fs::create_dir_all(root.join("orders-0")).unwrap();
    std::fs::write(root.join("orders-0/notes.txt"), "mine").unwrap();

    let b = TestBroker::start_in(dir, &[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "t", 1).await;
    fill(&mut c, "t", 1, 3).await;
    drop(c);
    let dir = b.stop().await;
    let b = TestBroker::start_in(dir, &[]).await;
    assert!(b.broker.topics.get("orders").is_none());
    let dir = b.stop().await;
    assert_eq!(
        std::fs::read_to_string(root.join("photos/cat.txt")).unwrap(),
        "meow"
    );
    assert!(root.join("lost+found").is_dir());
    assert_eq!(
        std::fs::read_to_string(root.join(".git/HEAD")).unwrap(),
        "ref: refs/heads/main\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("orders-0/notes.txt")).unwrap(),
        "mine"
    );
    drop(dir);
}

#[tokio::test]
async fn a_lost_meta_store_rebuilds_topics_from_their_directories() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "orders", 3).await;
    create_topic(&mut c, "audit.log", 1).await;
    let orders = fill(&mut c, "orders", 3, 40).await;
    let audit = fill(&mut c, "audit.log", 1, 5).await;
    let id = b.broker.topics.get("orders").unwrap().id;
    drop(c);
    let dir = b.stop().await;
    std::fs::remove_dir_all(dir.path().join("meta")).unwrap();

    let b = TestBroker::start_in(dir, &[]).await;
    let topic = b.broker.topics.get("orders").expect("orders rebuilt");
    assert_eq!((topic.id, topic.partitions.len()), (id, 3));
    drop(topic);
    let mut c = b.client().await;
    for p in 0..3 {
        assert_eq!(read_all(&mut c, "orders", p).await, orders[p as usize]);
    }
    assert_eq!(read_all(&mut c, "audit.log", 0).await, audit[0]);
    // Offsets go on from where they were: none is handed out again.
    let (err, base) = produce(&mut c, "orders", 1, batch(&[b"next"], None)).await;
    assert_eq!((err, base), (0, 40));
    // The rebuilt record is durable: a second restart needs no rebuilding.
    drop(c);
    let dir = b.stop().await;
    let b = TestBroker::start_in(dir, &[]).await;
    assert_eq!(b.broker.topics.get("orders").unwrap().id, id);
    b.stop().await;
}

#[tokio::test]
async fn a_topic_delete_cut_short_is_undone_or_finished() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "kept", 1).await;
    let kept = fill(&mut c, "kept", 1, 4).await;
    let id = b.broker.topics.get("kept").unwrap().id;
    drop(c);
    let dir = b.stop().await;
    let root = dir.path().to_path_buf();
    // Cut after the rename aside, before the record went: the delete did not happen.
    std::fs::rename(
        root.join("kept-0"),
        root.join(format!("kept-0.{}-delete", id.simple())),
    )
    .unwrap();
    // Cut after the record went: the renamed copy of a topic that no longer exists.
    let gone = format!("gone-0.{}-delete", uuid::Uuid::from_u128(9).simple());
    std::fs::create_dir_all(root.join(&gone)).unwrap();
    std::fs::write(root.join(&gone).join("00000000000000000000.log"), b"x").unwrap();

    let b = TestBroker::start_in(dir, &[]).await;
    let mut c = b.client().await;
    assert_eq!(read_all(&mut c, "kept", 0).await, kept[0]);
    assert!(!root.join(&gone).exists());
    assert!(!root.join(format!("kept-0.{}-delete", id.simple())).exists());

    // A completed delete leaves nothing that a restart could bring back.
    let topic = b.broker.topics.get("kept").unwrap();
    b.broker.topics.delete(&topic).await.unwrap();
    drop((c, topic));
    let dir = b.stop().await;
    let b = TestBroker::start_in(dir, &[]).await;
    assert!(b.broker.topics.get("kept").is_none());
    b.stop().await;
}
