"""50 librdkafka consumers (threads of one process) subscribe to a 64-partition topic in one
group with the roundrobin assignor. The group converges: every member gets partitions (14 get
two, 36 get one), every partition is assigned exactly once, the coordinator's view
(DescribeGroups) matches what the members hold, and records produced afterwards are each
consumed exactly once, by the owner of their partition."""

import threading
import time
from collections import Counter

import pytest
from confluent_kafka import ConsumerGroupState, KafkaError

from harness import clients as C
from harness.groups import ck_group_consumer, wait_for

MEMBERS = 50
PARTITIONS = 64
PER_PARTITION = 3


# Once in about eight full-suite runs this test stalled with every consumer still inside
# librdkafka's close() after the group had emptied (not reproduced in isolation); rerun it then.
@pytest.mark.flaky(reruns=2)
def test_fifty_members_converge(broker, topic):
    b = broker.bootstrap
    t = topic(PARTITIONS)
    group = C.unique_name("large")
    stop = threading.Event()
    lock = threading.Lock()
    assignment = {}   # member index -> frozenset of partitions (after its last poll)
    member_ids = {}
    consumed = []     # (member index, partition, offset, value)
    errors = []

    def run(i):
        c = ck_group_consumer(b, group, **{"partition.assignment.strategy": "roundrobin",
                                           "client.id": f"m{i:02d}"})
        try:
            c.subscribe([t])
            while not stop.is_set():
                msgs = c.consume(num_messages=100, timeout=0.2)
                with lock:
                    for m in msgs:
                        if m.error():
                            if m.error().code() != KafkaError._PARTITION_EOF:
                                errors.append((i, str(m.error())))
                        else:
                            consumed.append((i, m.partition(), m.offset(), m.value()))
                    assignment[i] = frozenset(tp.partition for tp in c.assignment())
                    member_ids[i] = c.memberid()
        except Exception as e:
            errors.append((i, repr(e)))
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(MEMBERS)]
    for th in threads:
        th.start()
    try:
        stable_since = [None, None]

        def converged():
            with lock:
                snap = dict(assignment)
            ok = (len(snap) == MEMBERS and all(snap.values())
                  and sum(len(a) for a in snap.values()) == PARTITIONS
                  and frozenset().union(*snap.values()) == frozenset(range(PARTITIONS)))
            if not ok:
                stable_since[:] = [None, None]
                return False
            if stable_since[1] != snap:
                stable_since[:] = [time.monotonic(), snap]
                return False
            return time.monotonic() - stable_since[0] >= 2.0

        def why():
            with lock:
                snap = dict(assignment)
            sizes = Counter(len(a) for a in snap.values())
            return (f"convergence: {len(snap)} members reporting, sizes {dict(sizes)}, "
                    f"errors {errors[:3]}")

        wait_for(converged, 120, why, interval=0.2)
        assert not errors, errors[:5]
        with lock:
            snap = dict(assignment)
            ids = dict(member_ids)
        assert sorted(len(a) for a in snap.values()) == [1] * 36 + [2] * 14
        owner = {p: i for i, a in snap.items() for p in a}
        assert len(owner) == PARTITIONS

        # the coordinator's view
        adm = C.admin(b)
        d = adm.describe_consumer_groups([group], request_timeout=30)[group].result(timeout=30)
        assert d.state == ConsumerGroupState.STABLE
        assert d.partition_assignor == "roundrobin"
        assert len(d.members) == MEMBERS
        by_id = {m.member_id: m for m in d.members}
        assert set(by_id) == set(ids.values())
        for i, mid in ids.items():
            m = by_id[mid]
            assert m.client_id == f"m{i:02d}"
            assert {tp.partition for tp in m.assignment.topic_partitions
                    if tp.topic == t} == set(snap[i]), (i, mid)

        # records produced now are consumed exactly once, by their partition's owner
        recs = [C.Rec(None, b"%d-%d" % (p, k), (), p)
                for k in range(PER_PARTITION) for p in range(PARTITIONS)]
        C.ck_produce(b, t, recs)
        want = {(p, k): b"%d-%d" % (p, k) for p in range(PARTITIONS) for k in range(PER_PARTITION)}

        def all_consumed():
            with lock:
                return len(consumed) >= len(want)

        wait_for(all_consumed, 60, lambda: f"{len(consumed)} of {len(want)} records consumed")
        time.sleep(0.5)  # let duplicates, if any, arrive
        with lock:
            got = list(consumed)
            final = dict(assignment)
        assert final == snap, "assignment changed after convergence"
        assert len(got) == len(want), f"{len(got)} records consumed, {len(want)} produced"
        assert {(p, o): v for _, p, o, v in got} == want
        for i, p, o, _ in got:
            assert owner[p] == i, f"partition {p} record {o} consumed by m{i}, owner m{owner[p]}"
    finally:
        stop.set()
        # One deadline for all closes: a client stuck closing must fail the test, not hang it.
        deadline = time.monotonic() + 60
        for th in threads:
            th.join(max(0.1, deadline - time.monotonic()))
    assert not any(th.is_alive() for th in threads)
    assert not errors, errors[:5]
