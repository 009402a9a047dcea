//! Start-up never destroys what it did not create: directories in a log dir that are not gregor's
//! survive, a lost meta store rebuilds topics from their partition directories (each names its
//! topic id in Kafka's `partition.metadata`) instead of deleting them, and a topic delete cut
//! short is either undone or finished, never half-applied.

mod common;

use common::*;

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
    // Cut after the record went: the renamed copy of a topic that no longer exists (its
    // partition.metadata names the id in its name, as every copy gregor makes does).
    let gone_id = uuid::Uuid::from_u128(9);
    let gone = format!("gone-0.{}-delete", gone_id.simple());
    std::fs::create_dir_all(root.join(&gone)).unwrap();
    std::fs::write(root.join(&gone).join("00000000000000000000.log"), b"x").unwrap();
    let encoded = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(gone_id.as_bytes())
    };
    std::fs::write(
        root.join(&gone).join("partition.metadata"),
        format!("version: 0\ntopic_id: {encoded}\n"),
    )
    .unwrap();

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

#[tokio::test]
async fn a_meta_store_that_is_not_this_datas_is_refused_not_applied() {
    // Two brokers' data dirs, each with an `orders` topic of its own id.
    let x = TestBroker::start(&[]).await;
    let mut c = x.client().await;
    create_topic(&mut c, "orders", 1).await;
    let kept = fill(&mut c, "orders", 1, 30).await;
    drop(c);
    let x_dir = x.stop().await;
    let y = TestBroker::start(&[]).await;
    let mut c = y.client().await;
    create_topic(&mut c, "orders", 1).await;
    fill(&mut c, "orders", 1, 3).await;
    drop(c);
    let y_dir = y.stop().await;
    let log = std::fs::read(x_dir.path().join("orders-0/00000000000000000000.log")).unwrap();
    // X's data with Y's meta store: refused, nothing truncated or rewritten.
    let x_meta = x_dir.path().join("meta");
    std::fs::rename(&x_meta, x_dir.path().join("meta.x")).unwrap();
    copy_tree(&y_dir.path().join("meta"), &x_meta);
    let root = x_dir.path().to_path_buf();
    let mut raw = std::collections::BTreeMap::new();
    raw.insert("log.dirs".to_string(), root.display().to_string());
    let config = gregor::Config::from_map(raw).unwrap();
    let err = match tokio::task::spawn_blocking(move || gregor::Broker::open(config))
        .await
        .unwrap()
    {
        Ok(_) => panic!("opened data with another broker's meta store"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("belongs to topic id"), "{err}");
    let after = std::fs::read(root.join("orders-0/00000000000000000000.log")).unwrap();
    assert_eq!(after, log);
    // Its own meta store back: everything is there.
    std::fs::remove_dir_all(&x_meta).unwrap();
    std::fs::rename(root.join("meta.x"), &x_meta).unwrap();
    let b = TestBroker::start_in(x_dir, &[]).await;
    let mut c = b.client().await;
    assert_eq!(read_all(&mut c, "orders", 0).await, kept[0]);
    drop(c);
    b.stop().await;
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[tokio::test]
async fn creating_a_topic_never_takes_over_a_directory_in_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join("orders-1")).unwrap();
    std::fs::write(
        root.join("orders-1/00000000000000000000.log"),
        b"my own bytes",
    )
    .unwrap();
    std::fs::write(root.join("orders-1/readme.txt"), b"mine").unwrap();
    // Named like gregor's copy of a deleted partition, but not one.
    let fake = format!("userstuff.{}-delete", uuid::Uuid::from_u128(5).simple());
    std::fs::create_dir_all(root.join(&fake)).unwrap();
    std::fs::write(root.join(&fake).join("keep.txt"), b"keep").unwrap();

    let b = TestBroker::start_in(dir, &[]).await;
    let mut c = b.client().await;
    let mut t = kafka_protocol::messages::create_topics_request::CreatableTopic::default();
    t.name = name("orders");
    t.num_partitions = 2;
    t.replication_factor = 1;
    let mut req = kafka_protocol::messages::CreateTopicsRequest::default();
    req.topics = vec![t];
    let r: kafka_protocol::messages::CreateTopicsResponse = c
        .request(kafka_protocol::messages::ApiKey::CreateTopics, 7, &req)
        .await;
    assert_eq!(
        r.topics[0].error_code, 56,
        "{:?}",
        r.topics[0].error_message
    );
    assert!(b.broker.topics.get("orders").is_none());
    drop(c);
    let dir = b.stop().await;
    assert_eq!(
        std::fs::read(root.join("orders-1/00000000000000000000.log")).unwrap(),
        b"my own bytes"
    );
    assert_eq!(
        std::fs::read(root.join("orders-1/readme.txt")).unwrap(),
        b"mine"
    );
    assert!(
        !root.join("orders-0").exists(),
        "a partial create was left behind"
    );
    // A restart leaves the look-alike copy alone.
    let b = TestBroker::start_in(dir, &[]).await;
    let _dir = b.stop().await;
    assert_eq!(
        std::fs::read(root.join(&fake).join("keep.txt")).unwrap(),
        b"keep"
    );
}

#[tokio::test]
async fn a_rebuild_never_joins_two_topics_directories() {
    let x = TestBroker::start(&[]).await;
    let mut c = x.client().await;
    create_topic(&mut c, "dup", 1).await;
    let mine = fill(&mut c, "dup", 1, 5).await;
    let id = x.broker.topics.get("dup").unwrap().id;
    drop(c);
    let x_dir = x.stop().await;
    let y = TestBroker::start(&[]).await;
    let mut c = y.client().await;
    create_topic(&mut c, "dup", 2).await;
    fill(&mut c, "dup", 2, 2).await;
    drop(c);
    let y_dir = y.stop().await;
    // Another broker's dup-1 lands next to this one's dup-0, and the meta store is lost.
    copy_tree(&y_dir.path().join("dup-1"), &x_dir.path().join("dup-1"));
    let theirs = std::fs::read(x_dir.path().join("dup-1/partition.metadata")).unwrap();
    std::fs::remove_dir_all(x_dir.path().join("meta")).unwrap();
    let root = x_dir.path().to_path_buf();
    let b = TestBroker::start_in(x_dir, &[]).await;
    let topic = b.broker.topics.get("dup").unwrap();
    assert_eq!((topic.id, topic.partitions.len()), (id, 1));
    drop(topic);
    let mut c = b.client().await;
    assert_eq!(read_all(&mut c, "dup", 0).await, mine[0]);
    drop(c);
    let _dir = b.stop().await;
    assert_eq!(
        std::fs::read(root.join("dup-1/partition.metadata")).unwrap(),
        theirs
    );
}
