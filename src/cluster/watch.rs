//! The quorum as operators see it: a log line when the active controller changes and Kafka's
//! controller gauges (`kafka_controller_kafkacontroller_*`, as the JMX exporter names them).

use std::sync::Arc;

use openraft::error::Fatal;

use super::Cluster;

pub const ACTIVE_CONTROLLER_COUNT: &str = "kafka_controller_kafkacontroller_activecontrollercount";
pub const ACTIVE_BROKER_COUNT: &str = "kafka_controller_kafkacontroller_activebrokercount";
pub const FENCED_BROKER_COUNT: &str = "kafka_controller_kafkacontroller_fencedbrokercount";
pub const LEADER_CHANGES: &str = "gregor_controller_leader_changes_total";

/// Describes and registers the gauges at zero.
pub fn register_metrics() {
    metrics::describe_gauge!(
        ACTIVE_CONTROLLER_COUNT,
        "1 on the active controller (the metadata quorum's leader), else 0"
    );
    metrics::describe_gauge!(
        ACTIVE_BROKER_COUNT,
        "Registered, unfenced brokers (reported by the active controller)"
    );
    metrics::describe_gauge!(
        FENCED_BROKER_COUNT,
        "Registered, fenced brokers (reported by the active controller)"
    );
    metrics::describe_counter!(
        LEADER_CHANGES,
        "Times this node saw the active controller change"
    );
    metrics::describe_counter!(
        super::service::CLOSED_TOTAL,
        "Controller listener connections closed for a bad, refused or slow frame"
    );
    metrics::describe_counter!(
        super::service::REFUSED_TOTAL,
        "Controller listener connections refused: every slot was taken"
    );
    for g in [
        ACTIVE_CONTROLLER_COUNT,
        ACTIVE_BROKER_COUNT,
        FENCED_BROKER_COUNT,
    ] {
        metrics::gauge!(g).set(0.0);
    }
    for c in [
        LEADER_CHANGES,
        super::service::CLOSED_TOTAL,
        super::service::REFUSED_TOTAL,
    ] {
        metrics::counter!(c).increment(0);
    }
}

/// A single node is its own quorum: the active controller and its one live broker.
pub fn single_node() {
    register_metrics();
    metrics::gauge!(ACTIVE_CONTROLLER_COUNT).set(1.0);
    metrics::gauge!(ACTIVE_BROKER_COUNT).set(1.0);
}

/// Follows the quorum until the cluster stops.
pub async fn run(cluster: Arc<Cluster>) {
    let mut raft = cluster.raft.metrics();
    let mut image = cluster.image.clone();
    let mut stop = cluster.stop.subscribe();
    let mut leader = None;
    loop {
        let (now_leader, term) = {
            let m = raft.borrow_and_update();
            match &m.running_state {
                Ok(()) | Err(Fatal::Stopped) => {}
                Err(fatal) => {
                    // Raft stopped on an error it cannot go on from (a storage failure, a broken
                    // invariant): the metadata as it stood would be served stale forever. Exit
                    // as a crash does; what is stored stays, and a restart recovers from it.
                    tracing::error!(error = %fatal, "the metadata quorum stopped on a fatal error; exiting");
                    std::process::exit(70);
                }
            }
            if let (Some(replication), Some(last)) = (&m.replication, m.last_log_index) {
                for (id, matched) in replication {
                    if matched.is_some_and(|l| l.index >= last) {
                        cluster.caught_up(*id);
                    }
                }
            }
            (m.current_leader, m.current_term)
        };
        if now_leader != leader {
            match now_leader {
                Some(id) => tracing::info!(controller = id, term, "active controller"),
                None => tracing::warn!(term, "no active controller: electing one"),
            }
            if leader.is_some() || now_leader.is_some() {
                metrics::counter!(LEADER_CHANGES).increment(1);
            }
            leader = now_leader;
        }
        let active = now_leader == Some(cluster.node_id as u64);
        metrics::gauge!(ACTIVE_CONTROLLER_COUNT).set(if active { 1.0 } else { 0.0 });
        let (live, fenced) = {
            let i = image.borrow_and_update();
            let live = i.live_brokers().count();
            (live, i.brokers.len() - live)
        };
        let (live, fenced) = if active { (live, fenced) } else { (0, 0) };
        metrics::gauge!(ACTIVE_BROKER_COUNT).set(live as f64);
        metrics::gauge!(FENCED_BROKER_COUNT).set(fenced as f64);
        tokio::select! {
            r = raft.changed() => if r.is_err() { return },
            r = image.changed() => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
