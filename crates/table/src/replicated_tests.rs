//! Replicated tables on three in-process nodes over the in-memory network.

use std::time::Duration;

use hangar_cluster::testing::{wait_until, MemoryCluster};
use hangar_cluster::NodeId;
use hangar_db::Db;
use hangar_net::memory::LinkState;
use hangar_util::Hash;

use crate::test_items::{item_in, Item, Items, Others};
use crate::{Replication, Replicator, Table, WriteBatch};

fn item(name: &str, ts: u64, v: u32) -> Item {
    item_in("g", name, ts, v)
}

fn g() -> Hash {
    Hash::of(b"g")
}

const LATENCY: Duration = Duration::from_millis(10);

struct Cluster {
    inner: MemoryCluster,
    ids: Vec<NodeId>,
    replicators: Vec<Replicator>,
    tables: Vec<Table<Items>>,
    others: Vec<Table<Others>>,
}

impl Cluster {
    /// Three storage nodes in three zones, replication factor 3; on each, the
    /// sharded table `items` and the fully replicated table `others`.
    async fn start() -> Cluster {
        let inner = MemoryCluster::start(3, 3, LATENCY).await;
        let replicators: Vec<Replicator> = inner
            .systems
            .iter()
            .map(|s| Replicator::new(s.clone()))
            .collect();
        let dbs: Vec<Db> = (0..3).map(|_| Db::open_in_memory().expect("db")).collect();
        let tables = (0..3)
            .map(|i| {
                Table::replicated(Items, dbs[i].clone(), &replicators[i], Replication::Sharded)
            })
            .collect();
        let others = (0..3)
            .map(|i| Table::replicated(Others, dbs[i].clone(), &replicators[i], Replication::Full))
            .collect();
        Cluster {
            ids: inner.ids.clone(),
            inner,
            replicators,
            tables,
            others,
        }
    }

    fn set_state(&self, node: usize, state: LinkState) {
        self.inner.set_state(node, state);
    }

    /// What node `i` holds itself.
    fn local(&self, i: usize, name: &str) -> Option<u32> {
        self.tables[i]
            .get(&g(), name.as_bytes())
            .expect("local get")
            .map(|e| *e.value.get())
    }
}

#[tokio::test]
async fn a_write_through_one_node_is_read_through_any_other() {
    let c = Cluster::start().await;
    c.tables[0].insert(item("a", 1, 10)).await.expect("write");
    for t in &c.tables {
        let got = t.read(&g(), b"a").await.expect("read").expect("present");
        assert_eq!(*got.value.get(), 10);
    }
    // The write reached every replica, not only the quorum.
    wait_until("all copies", || (0..3).all(|i| c.local(i, "a") == Some(10))).await;
}

#[tokio::test]
async fn a_silent_replica_costs_neither_writes_nor_reads_and_is_repaired_on_read() {
    let c = Cluster::start().await;
    c.tables[0].insert(item("a", 1, 10)).await.expect("write");
    wait_until("all copies", || (0..3).all(|i| c.local(i, "a") == Some(10))).await;

    c.set_state(2, LinkState::Silent);
    let started = tokio::time::Instant::now();
    c.tables[0]
        .insert(item("a", 2, 20))
        .await
        .expect("write without node 2");
    let got = c.tables[1]
        .read(&g(), b"a")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(*got.value.get(), 20);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(c.local(2, "a"), Some(10), "node 2 missed the write");

    // Healed: a read through node 2 merges the quorum's answers, returns the
    // newest value and writes it back to node 2's copy.
    c.set_state(2, LinkState::Up);
    let got = c.tables[2]
        .read(&g(), b"a")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(*got.value.get(), 20);
    wait_until("node 2 repaired", || c.local(2, "a") == Some(20)).await;
}

#[tokio::test]
async fn listings_merge_replies_before_filtering() {
    let c = Cluster::start().await;
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        c.tables[0]
            .insert(item(name, 1, i as u32 + 1))
            .await
            .expect("write");
    }
    wait_until("all copies", || (0..3).all(|i| c.local(i, "c") == Some(3))).await;

    // "b" is deleted while node 2 hears nothing.
    c.set_state(2, LinkState::Silent);
    c.tables[0].insert(item("b", 2, 0)).await.expect("delete");
    c.set_state(2, LinkState::Up);
    assert_eq!(c.local(2, "b"), Some(2));

    // Through node 2, whose own copy still has "b": the merged answer shows the
    // deletion, so a caller filtering deleted entries never lists it.
    let listed = c.tables[2].read_range(&g(), b"", 100).await.expect("list");
    let live: Vec<_> = listed
        .iter()
        .filter(|e| *e.value.get() != 0)
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(live, ["a", "c"]);
    wait_until("node 2 repaired", || c.local(2, "b") == Some(0)).await;
}

#[tokio::test]
async fn paging_through_a_stale_replica_lists_what_it_lacks() {
    let c = Cluster::start().await;
    // Node 2 misses "b" and "d"; pages of two through it still list them.
    c.tables[0].insert(item("a", 1, 1)).await.expect("write");
    c.tables[0].insert(item("c", 1, 3)).await.expect("write");
    wait_until("all copies", || (0..3).all(|i| c.local(i, "c") == Some(3))).await;
    c.set_state(2, LinkState::Silent);
    c.tables[0].insert(item("b", 1, 2)).await.expect("write");
    c.tables[0].insert(item("d", 1, 4)).await.expect("write");
    c.set_state(2, LinkState::Up);

    let names = |v: Vec<Item>| v.into_iter().map(|e| e.name).collect::<Vec<_>>();
    let first = c.tables[2].read_range(&g(), b"", 2).await.expect("list");
    assert_eq!(names(first), ["a", "b"]);
    let next = c.tables[2].read_range(&g(), b"c", 2).await.expect("list");
    let bounded = c.tables[2]
        .read_range_until(&g(), b"", Some(b"b"), 10)
        .await
        .expect("list");
    assert_eq!(names(bounded), ["a"], "nothing at or past the end is read");
    let empty = c.tables[2]
        .read_range_until(&g(), b"c", Some(b"b"), 10)
        .await
        .expect("list");
    assert!(empty.is_empty());
    assert_eq!(names(next), ["c", "d"]);
}

#[tokio::test]
async fn without_a_quorum_writes_fail_rather_than_pretend() {
    let c = Cluster::start().await;
    c.set_state(1, LinkState::Down);
    c.set_state(2, LinkState::Down);
    let err = c.tables[0]
        .insert(item("a", 1, 1))
        .await
        .expect_err("one node of three");
    assert!(matches!(err, crate::Error::Quorum(_)), "{err}");
}

#[tokio::test]
async fn anti_entropy_converges_replicas_and_costs_one_round_trip_when_equal() {
    let c = Cluster::start().await;
    let partition = hangar_cluster::Partition::of(&g());
    c.tables[0].insert(item("a", 1, 1)).await.expect("write");
    wait_until("all copies", || (0..3).all(|i| c.local(i, "a") == Some(1))).await;
    let roots = |c: &Cluster| -> Vec<[u8; 32]> {
        c.tables
            .iter()
            .map(|t| t.summary_root(partition).expect("root"))
            .collect()
    };
    assert!(
        roots(&c).iter().all(|r| *r == roots(&c)[0]),
        "equal replicas, equal roots"
    );
    let report = c.tables[0]
        .sync_partition(partition, c.ids[2])
        .await
        .expect("sync");
    assert_eq!(
        (report.round_trips, report.received, report.sent),
        (1, 0, 0)
    );

    // Node 2 misses 50 writes and an update.
    c.set_state(2, LinkState::Silent);
    for i in 0..50 {
        c.tables[0]
            .insert(item(&format!("k{i:02}"), 1, i + 1))
            .await
            .expect("write");
    }
    c.tables[0].insert(item("a", 2, 100)).await.expect("update");
    c.set_state(2, LinkState::Up);
    // Written straight into node 2's copy only: node 0 lacks it.
    let only_on_2 = item("z", 1, 7);
    let t2 = c.tables[2].clone();
    c.tables[2]
        .db()
        .transaction(move |tx| t2.insert_in(tx, &only_on_2).map(|_| ()))
        .await
        .expect("local write");
    assert_ne!(roots(&c)[0], roots(&c)[2]);
    // What operators compare (`GetTableRoots`): every partition each node
    // holds (3 nodes, rf 3: all of them), differing only in this one.
    let held: Vec<_> = c
        .tables
        .iter()
        .map(|t| t.held_roots().expect("roots"))
        .collect();
    assert!(held
        .iter()
        .all(|h| h.len() == hangar_cluster::PARTITION_COUNT));
    let differing: Vec<_> = held[0]
        .iter()
        .zip(&held[2])
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0)
        .collect();
    assert_eq!(differing, vec![partition]);

    let report = c.tables[0]
        .sync_partition(partition, c.ids[2])
        .await
        .expect("sync");
    assert!(report.sent >= 51, "{report:?}");
    assert!(report.received >= 1, "{report:?}");
    assert_eq!(roots(&c)[0], roots(&c)[2]);
    assert_eq!(c.local(2, "a"), Some(100));
    assert_eq!(c.local(2, "k49"), Some(50));
    assert_eq!(c.local(0, "z"), Some(7));
    let again = c.tables[0]
        .sync_partition(partition, c.ids[2])
        .await
        .expect("sync");
    assert_eq!(again.round_trips, 1);
}

#[tokio::test]
async fn a_batch_writes_several_tables_at_quorum_and_fails_without_one() {
    let c = Cluster::start().await;
    c.set_state(2, LinkState::Silent);
    let mut batch = WriteBatch::new(&c.replicators[0]);
    batch.add(&c.tables[0], &item("a", 1, 1)).expect("add");
    batch.add(&c.tables[0], &item("b", 1, 2)).expect("add");
    batch.add(&c.others[0], &item("x", 1, 3)).expect("add");
    batch.commit().await.expect("commit without node 2");
    for i in 0..2 {
        assert_eq!(c.local(i, "a"), Some(1));
        assert_eq!(c.local(i, "b"), Some(2));
        let other = c.others[i]
            .get(&g(), b"x")
            .expect("get")
            .map(|e| *e.value.get());
        assert_eq!(other, Some(3));
    }
    assert_eq!(c.local(2, "a"), None);

    c.set_state(1, LinkState::Down);
    c.set_state(2, LinkState::Down);
    let mut batch = WriteBatch::new(&c.replicators[0]);
    batch.add(&c.tables[0], &item("c", 1, 1)).expect("add");
    let err = batch.commit().await.expect_err("one node of three");
    assert!(matches!(err, crate::Error::Quorum(_)), "{err}");

    // A table that is not replicated cannot join a batch.
    let local = Table::new(
        Items,
        Db::open_in_memory().expect("db"),
        hangar_cluster::Layout::single_node(c.ids[0]),
        c.ids[0],
    );
    let mut batch = WriteBatch::new(&c.replicators[0]);
    assert!(batch.add(&local, &item("d", 1, 1)).is_err());
}

#[tokio::test]
async fn during_a_layout_change_writes_reach_both_versions_until_the_old_retires() {
    use hangar_cluster::history::Tracker;
    let cluster = MemoryCluster::start(4, 3, LATENCY).await;
    let replicators: Vec<Replicator> = cluster
        .systems
        .iter()
        .map(|s| Replicator::new(s.clone()))
        .collect();
    let tables: Vec<Table<Items>> = replicators
        .iter()
        .map(|r| {
            Table::replicated(
                Items,
                Db::open_in_memory().expect("db"),
                r,
                Replication::Sharded,
            )
        })
        .collect();
    // Node 3 leaves the layout: version 2.
    let leaving = cluster.ids[3];
    cluster.systems[0]
        .layout()
        .update(|h, ts| h.stage_remove(leaving, ts))
        .expect("stage");
    cluster.systems[0]
        .layout()
        .update(|h, ts| h.apply(Some(2), ts))
        .expect("apply");
    wait_until("version 2 everywhere", || {
        cluster
            .systems
            .iter()
            .all(|s| s.layout().snapshot().current().version == 2)
    })
    .await;
    let routing = replicators[0].routing();
    assert_eq!(routing.writes.len(), 2, "both versions live");
    assert_eq!(
        routing.read.layout_version(),
        1,
        "reads on the synced version"
    );

    // The write lands on a quorum of the partition's nodes in each version.
    tables[0].insert(item("a", 1, 1)).await.expect("write");
    let held = |t: &Table<Items>| t.get(&g(), b"a").expect("get").is_some();
    for layout in &routing.writes {
        let holders = layout
            .nodes_of(&g())
            .iter()
            .filter(|n| {
                let i = cluster.ids.iter().position(|id| id == *n).expect("known");
                held(&tables[i])
            })
            .count();
        assert!(
            holders >= 2,
            "version {}: {holders} copies",
            layout.layout_version()
        );
    }
    // Reads through the leaving node still find it.
    let got = tables[3]
        .read(&g(), b"a")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(*got.value.get(), 1);

    // Every node synced and knows it: version 1 retires, node 3 is out.
    cluster.systems[0]
        .layout()
        .update(|h, _| {
            for node in h.tracked_nodes() {
                for t in [Tracker::Ack, Tracker::Sync, Tracker::SyncAck] {
                    h.raise_tracker(t, node, 2);
                }
            }
            Ok(())
        })
        .expect("trackers");
    wait_until("version 1 retired everywhere", || {
        replicators.iter().all(|r| r.routing().writes.len() == 1)
    })
    .await;
    assert_eq!(replicators[1].routing().read.layout_version(), 2);
}

#[tokio::test]
async fn tombstones_go_once_every_replica_has_them_and_not_before() {
    let c = Cluster::start().await;
    c.tables[0].insert(item("a", 1, 7)).await.expect("write");
    wait_until("all copies", || (0..3).all(|i| c.local(i, "a") == Some(7))).await;
    // Deleted while node 2 hears nothing: it keeps the live entry.
    c.set_state(2, LinkState::Silent);
    c.tables[0].insert(item("a", 2, 0)).await.expect("delete");
    let r = c.tables[0]
        .collect_tombstones(10, 0)
        .await
        .expect("collect");
    assert_eq!(
        (r.removed, r.deferred),
        (0, 1),
        "node 2 holds the removal back"
    );
    assert_eq!(c.local(0, "a"), Some(0));
    c.set_state(2, LinkState::Up);
    // Node 2 gets the tombstone first, then every copy goes.
    let mut removed = 0;
    for _ in 0..50 {
        removed += c.tables[0]
            .collect_tombstones(10, 0)
            .await
            .expect("collect")
            .removed;
        if removed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(removed, 1);
    for i in 0..3 {
        assert_eq!(c.local(i, "a"), None, "gone from node {i}");
    }
    // Nothing comes back through anti-entropy, and a later write still lands.
    for t in &c.tables {
        t.sync_all().await;
    }
    assert_eq!(c.local(1, "a"), None);
    c.tables[1]
        .insert(item("a", 3, 9))
        .await
        .expect("write again");
    assert_eq!(c.local(1, "a"), Some(9));
}

#[tokio::test]
async fn concurrent_writes_through_write_queues_land_everywhere_and_a_bad_entry_fails_alone() {
    let c = Cluster::start().await;
    // Many writes at once through node 0: they reach nodes 1 and 2 through
    // their write queues, batched, and each is stored everywhere.
    let writes = (0..200).map(|i| c.tables[0].insert(item(&format!("c{i:03}"), 1, i)));
    for r in futures::future::join_all(writes).await {
        r.expect("write");
    }
    wait_until("all copies", || {
        (0..3).all(|n| (0..200).all(|i| c.local(n, &format!("c{i:03}")) == Some(i)))
    })
    .await;

    // A batch with an entry of an unknown table and a good one: the good one
    // is merged, the other fails with its reason.
    use crate::TableSchema as _;
    use hangar_util::encoding::Versioned as _;
    let good = serde_bytes::ByteBuf::from(item("solo", 1, 9).encode().expect("encode"));
    let reply = c.replicators[0]
        .system()
        .rpc()
        .call(
            c.ids[1],
            &crate::coalesce::MergeRequest {
                entries: vec![
                    ("no_such_table".to_string(), good.clone()),
                    (Items::TREE.0.to_string(), good),
                ],
            },
        )
        .await
        .expect("call");
    assert!(
        matches!(&reply[0], Err(e) if e.contains("no table")),
        "{reply:?}"
    );
    assert!(matches!(reply[1], Ok(None)), "{reply:?}");
    assert_eq!(c.local(1, "solo"), Some(9));
}

#[tokio::test]
async fn writes_lost_on_a_silent_link_do_not_hold_back_the_next_ones() {
    let c = Cluster::start().await;
    // Node 2 goes silent: the writes queued for it are sent and never
    // answered (more of them than the batches a queue keeps in flight), while
    // nodes 0 and 1 make the quorum.
    c.set_state(2, LinkState::Silent);
    for i in 0..4 {
        c.tables[0]
            .insert(item(&format!("lost{i}"), 1, i))
            .await
            .expect("write with node 2 silent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Node 2 answers again and node 1 goes down: a new write needs node 2,
    // and gets it long before the lost batches' calls time out (30 s).
    c.set_state(2, LinkState::Up);
    c.set_state(1, LinkState::Down);
    let write = c.tables[0].insert(item("next", 1, 7));
    tokio::time::timeout(Duration::from_secs(10), write)
        .await
        .expect("the write waited for the lost batches")
        .expect("write through nodes 0 and 2");
    assert_eq!(c.local(2, "next"), Some(7));
}
