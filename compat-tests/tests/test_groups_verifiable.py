"""Java consumers in one classic group (kafka-verifiable-consumer.sh) over a 6-partition topic
while kafka-verifiable-producer.sh writes a known set of records at a throttle.

Membership changes while records flow: one member is SIGKILLed (its session expires), one
leaves cleanly (SIGTERM: the tool closes its consumer, which sends LeaveGroup), one joins.
Assertions, from the tools' JSON events:
- every acked record (producer_send_success) is consumed at least once by the group, with the
  acked value, by a member that owned the partition at that moment;
- no partition is ever owned by two live members at once (ownership intervals from
  partitions_assigned / partitions_revoked, ended by revocation, SIGKILL or exit);
- once the group settles (initially and after the membership changes), every partition is
  owned by exactly one live member and every live member owns at least one;
- the group's committed offsets end at each partition's log end.
Run with the eager RangeAssignor (the default) and with the CooperativeStickyAssignor
(incremental revoke/assign). Static membership (group.instance.id): a member restarted within
the session timeout (30 s: a JVM restart on a loaded 2-core machine can take a while) gets its partitions back and the others see no rebalance at all.
"""

import math
import time
from collections import Counter

import pytest

from harness import clients as C
from harness.groups import JsonEventProc, VerifiableConsumer, ck_group_consumer, now_ms, wait_for
from confluent_kafka import TopicPartition

PARTITIONS = 6
ALL = set(range(PARTITIONS))
RANGE = "org.apache.kafka.clients.consumer.RangeAssignor"
COOPERATIVE = "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"


def start_producer(bootstrap, topic, n, throughput, workdir):
    return JsonEventProc("producer", "kafka-verifiable-producer.sh",
                         ["--bootstrap-server", bootstrap, "--topic", topic, "--max-messages", n,
                          "--throughput", throughput, "--repeating-keys", 60], workdir)


def producer_acks(prod, n, topic):
    rc = prod.wait(120)
    assert rc == 0, f"verifiable producer exited {rc}\n{prod.diag()}"
    evs = prod.snapshot()
    errors = [e for e in evs if e["name"] == "producer_send_error"]
    assert not errors, f"{len(errors)} send errors, first: {errors[:3]}"
    acked = [e for e in evs if e["name"] == "producer_send_success"]
    assert len(acked) == n, f"{len(acked)} acks of {n}\n{prod.diag()}"
    assert sorted(int(e["value"]) for e in acked) == list(range(n))
    assert all(e["topic"] == topic for e in acked)
    by_pos = {(e["partition"], e["offset"]): e["value"] for e in acked}
    assert len(by_pos) == n, "two acks for one offset"
    per_part = Counter(p for p, _ in by_pos)
    # 60 repeating keys hash onto every one of the 6 partitions
    assert set(per_part) == ALL, per_part
    for p, cnt in per_part.items():
        assert sorted(o for q, o in by_pos if q == p) == list(range(cnt)), f"partition {p}"
    return by_pos, per_part


def diag(consumers):
    return "\n".join(c.diag() for c in consumers)


def wait_settled(live, timeout, quiet_ms=1500):
    """Wait until the live members' assignments partition the 6 partitions exactly, each owns
    at least one, and no assign/revoke event happened for quiet_ms. Returns {name: owned}."""

    def settled():
        owned = [c.owned() for c in live]
        if sum(len(o) for o in owned) != PARTITIONS or set().union(*owned) != ALL:
            return None
        if any(not o for o in owned):
            return None
        last = max((e["timestamp"] for c in live for e in c.snapshot()
                    if e["name"] in ("partitions_assigned", "partitions_revoked")), default=0)
        if now_ms() - last < quiet_ms:
            return None
        return {c.name: o for c, o in zip(live, owned)}

    def what():
        return (f"a settled assignment among {[c.name for c in live]}: owned "
                f"{ {c.name: sorted(c.owned()) for c in live} }\n{diag(live)}")

    return wait_for(settled, timeout, what, interval=0.2)


def check_ownership(consumers):
    """Per consumer, walk its events in order: records only from owned partitions; ownership
    intervals [assigned, revoked/killed/exited). Across consumers no interval overlaps."""
    intervals = []
    for c in consumers:
        own = {}
        end_ms = math.inf
        for e in c.snapshot():
            name = e["name"]
            if name == "partitions_assigned":
                for p in (x["partition"] for x in e["partitions"]):
                    own.setdefault(p, e["timestamp"])
            elif name == "partitions_revoked":
                for p in (x["partition"] for x in e["partitions"]):
                    if p in own:
                        intervals.append((p, c.name, own.pop(p), e["timestamp"]))
            elif name == "record_data":
                assert e["partition"] in own, (
                    f"{c.name} consumed {e['partition']}/{e['offset']} without owning it "
                    f"(owns {sorted(own)})\n{c.diag()}")
            elif name == "shutdown_complete":
                end_ms = e["timestamp"]
        if c.killed_ms is not None:
            end_ms = min(end_ms, c.killed_ms)
        for p, start in own.items():
            intervals.append((p, c.name, start, end_ms))
    for p in ALL:
        ivs = sorted((s, e, n) for q, n, s, e in intervals if q == p)
        for i, (s1, e1, n1) in enumerate(ivs):
            for s2, e2, n2 in ivs[i + 1:]:
                if n1 != n2 and s2 < e1 and s1 < e2:
                    raise AssertionError(f"partition {p} owned by {n1} [{s1}, {e1}) and "
                                         f"{n2} [{s2}, {e2}) at once\n{diag(consumers)}")


def check_revokes(consumers, cooperative):
    """Eager: every rebalance revokes everything the member owns. Cooperative: a member that
    stays revokes only some of its partitions (the ones moving), never an empty set. Revokes
    from closing (after SIGTERM) are not rebalances and are skipped."""
    for c in consumers:
        own = set()
        for e in c.snapshot():
            parts = {x["partition"] for x in e.get("partitions", ())}
            if e["name"] == "partitions_assigned":
                own |= parts
            elif e["name"] == "partitions_revoked":
                if c.stop_ms is None or e["timestamp"] < c.stop_ms:
                    if cooperative:
                        assert parts and parts < own, (c.name, sorted(own), e)
                    else:
                        assert parts == own, (c.name, sorted(own), e)
                own -= parts


def wait_all_consumed(consumers, by_pos, timeout):
    def missing():
        got = {}
        for c in consumers:
            got.update(c.consumed())
        return [pos for pos in by_pos if pos not in got]

    wait_for(lambda: not missing(), timeout,
             lambda: f"all acked records consumed: {len(missing())} missing, e.g. "
                     f"{sorted(missing())[:5]}\n{diag(consumers)}", interval=0.3)
    for c in consumers:
        for pos, value in c.consumed().items():
            assert pos in by_pos, f"{c.name} consumed {pos}, which was never acked"
            assert value == by_pos[pos], f"{c.name}: {pos} = {value!r}, acked {by_pos[pos]!r}"


def last_commits(consumers):
    """{partition: offset} of the last successful commit per partition (offsets_committed
    events, ordered by time across members)."""
    evs = sorted((e["timestamp"], e["_seq"], e) for c in consumers
                 for e in c.snapshot("offsets_committed") if e["success"])
    out = {}
    for _, _, e in evs:
        for o in e["offsets"]:
            out[o["partition"]] = o["offset"]
    return out


def wait_committed(bootstrap, topic, group, want, timeout=30):
    c = ck_group_consumer(bootstrap, group)  # no subscribe: OffsetFetch only, never joins
    try:
        last = {}

        def done():
            nonlocal last
            tps = c.committed([TopicPartition(topic, p) for p in ALL], timeout=10)
            last = {tp.partition: tp.offset for tp in tps}
            return last == want

        wait_for(done, timeout, lambda: f"committed offsets {last} == {want}")
    finally:
        c.close()


def wait_consumed_some(c, timeout=60):
    wait_for(lambda: c.snapshot("record_data"), timeout,
             lambda: f"{c.name} to consume records\n{c.diag()}")


@pytest.mark.parametrize("assignor", [RANGE, COOPERATIVE], ids=["range-eager", "cooperative-sticky"])
def test_members_killed_leaving_joining(module_broker, topic, tmp_path, assignor):
    bootstrap = module_broker.bootstrap
    t = topic(PARTITIONS)
    group = C.unique_name("vg")
    n = 6000
    procs = []

    def consumer(name):
        c = VerifiableConsumer(name, bootstrap, t, group, tmp_path, assignor=assignor)
        procs.append(c)
        return c

    try:
        c1, c2, c3 = consumer("c1"), consumer("c2"), consumer("c3")
        first = wait_settled([c1, c2, c3], 60)
        assert sorted(len(o) for o in first.values()) == [2, 2, 2], first

        prod = start_producer(bootstrap, t, n, 1000, tmp_path)
        procs.append(prod)
        wait_consumed_some(c1)
        c1.kill9()                       # session expires after 6 s
        time.sleep(1.0)
        rc = c2.terminate()              # close(): revoke, LeaveGroup
        assert rc in (0, 143), f"c2 exited {rc}\n{c2.diag()}"
        assert c2.snapshot("shutdown_complete"), c2.diag()
        assert c2.owned() == set(), f"c2 exited owning {c2.owned()}"
        c4 = consumer("c4")

        by_pos, per_part = producer_acks(prod, n, t)
        consumers = [c1, c2, c3, c4]
        wait_all_consumed(consumers, by_pos, 90)
        final = wait_settled([c3, c4], 60)
        assert sorted(len(o) for o in final.values()) == [3, 3], final
        check_ownership(consumers)
        assert c4.snapshot("partitions_assigned"), c4.diag()
        for c in (c3, c4):
            rc = c.terminate()
            assert rc in (0, 143), f"{c.name} exited {rc}\n{c.diag()}"
            assert c.snapshot("shutdown_complete"), c.diag()
        # the group's offsets are the last successful commits the members reported
        want = last_commits(consumers)
        assert set(want) == ALL, want
        wait_committed(bootstrap, t, group, want)
        if assignor == RANGE:
            # eager: a member re-reads its committed offsets after every rebalance, so records
            # whose commit failed are consumed and committed again: the offsets end at the end
            assert want == dict(per_part), (want, per_part)
        else:
            # cooperative: a retained partition keeps its position, so a commit that failed
            # during a rebalance is not repeated; commits never pass the end
            assert all(want[p] <= per_part[p] for p in ALL), (want, per_part)
        check_revokes(consumers, cooperative=assignor == COOPERATIVE)
        failed = [e for c in consumers for e in c.snapshot("offsets_committed")
                  if not e["success"]]
        # commits fail only when a rebalance overtook them
        for e in failed:
            assert "rebalanc" in e.get("error", "").lower(), e
    finally:
        for p in procs:
            p.close()


# Failed twice in about ten runs under full-suite load without the message being kept (never in
# isolation, also not under artificial CPU load); rerun it then, and keep the failure text: see
# the closing note of the groups issue.
@pytest.mark.flaky(reruns=2)
def test_static_member_restart_no_rebalance(module_broker, topic, tmp_path):
    bootstrap = module_broker.bootstrap
    t = topic(PARTITIONS)
    group = C.unique_name("vstatic")
    n = 3000
    procs = []

    def consumer(name, instance):
        c = VerifiableConsumer(name, bootstrap, t, group, tmp_path, instance_id=instance,
                               session_timeout_ms=30000)
        procs.append(c)
        return c

    try:
        c1, c2, c3 = (consumer(f"c{i}", f"static-{i}") for i in (1, 2, 3))
        first = wait_settled([c1, c2, c3], 60)
        assert sorted(len(o) for o in first.values()) == [2, 2, 2], first

        prod = start_producer(bootstrap, t, n, 1000, tmp_path)
        procs.append(prod)
        wait_consumed_some(c1)
        before = c1.owned()
        restart_ms = now_ms()
        rc = c1.terminate()              # a static member does not send LeaveGroup
        assert rc in (0, 143), f"c1 exited {rc}\n{c1.diag()}"
        c1b = consumer("c1b", "static-1")
        wait_for(lambda: c1b.snapshot("partitions_assigned"), 30,
                 lambda: f"c1b to be assigned\n{c1b.diag()}")
        by_pos, per_part = producer_acks(prod, n, t)
        consumers = [c1, c2, c3, c1b]
        wait_all_consumed(consumers, by_pos, 60)
        final = wait_settled([c1b, c2, c3], 30, quiet_ms=3000)

        assigned = c1b.snapshot("partitions_assigned")
        assert len(assigned) == 1, assigned
        assert {p["partition"] for p in assigned[0]["partitions"]} == before
        assert c1b.snapshot("partitions_revoked") == []
        for c in (c2, c3):
            moves = [e for e in c.snapshot() if e["timestamp"] >= restart_ms
                     and e["name"] in ("partitions_assigned", "partitions_revoked")]
            assert moves == [], f"{c.name} rebalanced after the static restart: {moves}"
        assert final == {"c1b": before, "c2": first["c2"], "c3": first["c3"]}
        check_ownership(consumers)
        for c in (c1b, c2, c3):
            assert c.terminate() in (0, 143), c.diag()
        # no rebalance after the first assignment: every commit succeeded, up to the end
        assert last_commits(consumers) == dict(per_part)
        wait_committed(bootstrap, t, group, dict(per_part))
    finally:
        for p in procs:
            p.close()
