"""A cluster of broker processes on 127.0.0.1: gregor nodes, or (GREGOR_COMPAT_TARGET=kafka) real
Apache Kafka 4.1.1 nodes, all in combined mode (process.roles=broker,controller) with static voters
(controller.quorum.voters). Both targets get the same Kafka keys; Kafka's nodes are formatted with
one cluster id first (kafka-storage.sh format), gregor's agree on theirs through the quorum."""

import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from .broker import Broker, BrokerError, free_port, new_kafka_cluster_id, target

# Faster sessions than Kafka's defaults (2 s / 9 s) so that tests see fencing in seconds.
CLUSTER_CONFIG = {
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "3000",
}


class Cluster:
    def __init__(self, workdir, size=3, overrides=None, target_name=None):
        self.target = target_name or target()
        workdir = Path(workdir)
        controller_ports = {i: free_port() for i in range(1, size + 1)}
        voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in controller_ports.items())
        cluster_id = new_kafka_cluster_id()
        cfg = dict(CLUSTER_CONFIG)
        cfg.update(overrides or {})
        # gregor's /metrics, one port per node (Kafka has no such key).
        self.metrics_ports = {i: free_port() for i in controller_ports} \
            if self.target == "gregor" else {}
        self.nodes = {
            i: Broker(workdir / f"node{i}", target_name=self.target, node_id=i,
                      overrides=dict(cfg, **({"metrics.address": f"127.0.0.1:{self.metrics_ports[i]}"}
                                             if i in self.metrics_ports else {})),
                      quorum={"voters": voters, "controller_port": p, "cluster_id": cluster_id})
            for i, p in controller_ports.items()
        }

    def start(self):
        for n in self.nodes.values():
            n.launch()
        try:
            for n in self.nodes.values():
                n.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values())

    def running(self):
        return {i: n for i, n in self.nodes.items() if n.running}

    def brokers_seen_by(self, node_id, timeout=5):
        """(cluster id, controller id, {broker id: port}) in a Metadata answer from one node."""
        admin = AdminClient({"bootstrap.servers": self.nodes[node_id].bootstrap, "log_level": 0})
        md = admin.list_topics(timeout=timeout)
        return md.cluster_id, md.controller_id, {b.id: b.port for b in md.brokers.values()}

    def wait_brokers(self, expected, timeout=60):
        """Waits until every running node shows exactly the brokers `expected` (ids)."""
        deadline = time.monotonic() + timeout
        want = {i: self.nodes[i].port for i in expected}
        while True:
            seen = {}
            for i in self.running():
                try:
                    seen[i] = self.brokers_seen_by(i)[2]
                except Exception as e:  # KafkaException while a node is elected or fenced
                    seen[i] = repr(e)
            if all(s == want for s in seen.values()):
                return time.monotonic() - (deadline - timeout)
            if time.monotonic() > deadline:
                raise BrokerError(f"brokers {sorted(expected)} not seen within {timeout}s: {seen}\n"
                                  + "\n".join(n.log_tail(4000) for n in self.nodes.values()))
            time.sleep(0.2)

    def close(self):
        for n in self.nodes.values():
            n.close()
