"""kafka-consumer-groups.sh (ConsumerGroupCommand): --list, --describe (offsets, members,
state) with an active librdkafka member, then with the group inactive --reset-offsets
(--to-earliest, --to-offset), --delete-offsets, --delete, and the refusals: resetting or
deleting a group with an active member. Output tables are parsed and asserted exactly.

ConsumerGroupCommand exits 0 even when it prints an error, so the text is what is asserted.
"""


from confluent_kafka import ConsumerGroupState, TopicPartition

from harness import clients as C
from harness.groups import ck_group_consumer, wait_for
from harness.java import kafka_script

OFFSETS_HEADER = ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                  "CONSUMER-ID", "HOST", "CLIENT-ID"]
MEMBERS_HEADER = ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "CURRENT-EPOCH",
                  "CURRENT-ASSIGNMENT", "TARGET-EPOCH", "TARGET-ASSIGNMENT"]
STATE_HEADER = ["GROUP", "COORDINATOR", "(ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"]
RESET_HEADER = ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]
NO_MEMBERS = "Consumer group '{}' has no active members."

# records per partition: p0 15, p1 15, p2 0 (an empty partition)
PER_PART = {0: 15, 1: 15, 2: 0}


def cgc(bootstrap, *args):
    r = kafka_script("kafka-consumer-groups.sh", "--bootstrap-server", bootstrap, *args,
                     timeout=90)
    assert r.returncode == 0, f"{args}: rc {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    return r


def table(stdout, header):
    """Rows (lists of fields) of the one table in stdout whose header is `header`, sorted
    (the tool prints an active member's partitions in its assignment's order)."""
    lines = [ln.split() for ln in stdout.splitlines() if ln.strip()]
    assert header in lines, f"no table with header {header} in:\n{stdout}"
    i = lines.index(header)
    return sorted(lines[i + 1:])


def state(bootstrap, group):
    adm = C.admin(bootstrap)
    d = adm.describe_consumer_groups([group], request_timeout=30)[group].result(timeout=30)
    return d.state


def test_consumer_groups_command(broker, topic):
    b = broker.bootstrap
    t = topic(3)
    C.ck_produce(b, t, [C.Rec(None, b"%d" % i, (), p) for p, n in PER_PART.items()
                        for i in range(n)])
    group = C.unique_name("cg")
    other = C.unique_name("cg-other")

    # an unrelated group with committed offsets only (no member ever joined)
    oc = ck_group_consumer(b, other)
    oc.commit(offsets=[TopicPartition(t, 0, 1)], asynchronous=False)
    oc.close()

    c = ck_group_consumer(b, group, **{"client.id": "cli-member"})
    try:
        c.subscribe([t])
        wait_for(lambda: (c.poll(0.2), len(c.assignment()) == 3)[1], 60, "the assignment")
        c.commit(offsets=[TopicPartition(t, 0, 5), TopicPartition(t, 1, 12)], asynchronous=False)
        member = c.memberid()
        assert member.startswith("cli-member-"), member

        listed = cgc(b, "--list").stdout.split()
        assert group in listed and other in listed, listed

        r = cgc(b, "--describe", "--group", group)
        assert table(r.stdout, OFFSETS_HEADER) == [
            [group, t, "0", "5", "15", "10", member, "/127.0.0.1", "cli-member"],
            [group, t, "1", "12", "15", "3", member, "/127.0.0.1", "cli-member"],
            # assigned, never committed: no offset, no lag
            [group, t, "2", "-", "0", "-", member, "/127.0.0.1", "cli-member"],
        ], r.stdout

        r = cgc(b, "--describe", "--group", group, "--members", "--verbose")
        rows = table(r.stdout, MEMBERS_HEADER)
        assert len(rows) == 1 and len(rows[0]) == 9, r.stdout
        topic_name, _, parts = rows[0][6].partition(":")
        rows[0][6] = (topic_name, sorted(int(p) for p in parts.split(",")))
        assert rows == [[group, member, "/127.0.0.1", "cli-member", "3", "-", (t, [0, 1, 2]),
                         "-", "-"]], r.stdout

        r = cgc(b, "--describe", "--group", group, "--state")
        rows = table(r.stdout, STATE_HEADER)
        assert rows == [[group, b, "(1)", "range", "Stable", "1"]], r.stdout

        # refusals while the member is there
        r = cgc(b, "--reset-offsets", "--group", group, "--topic", t, "--to-earliest",
                "--execute")
        assert (f"Error: Assignments can only be reset if the group '{group}' is inactive, "
                f"but the current state is Stable.") in r.stdout, r.stdout
        assert table(r.stdout, RESET_HEADER) == []
        r = cgc(b, "--delete", "--group", group)
        assert ("Error: Deletion of some consumer groups failed:\n"
                f"* Group '{group}' could not be deleted due to: "
                "org.apache.kafka.common.errors.GroupNotEmptyException: The group is not empty."
                ) in r.stdout, r.stdout
    finally:
        c.close()  # leaves the group

    wait_for(lambda: state(b, group) == ConsumerGroupState.EMPTY, 30, "the group to be empty")

    r = cgc(b, "--describe", "--group", group)
    assert table(r.stdout, OFFSETS_HEADER) == [
        [group, t, "0", "5", "15", "10", "-", "-", "-"],
        [group, t, "1", "12", "15", "3", "-", "-", "-"],
    ], r.stdout
    assert NO_MEMBERS.format(group) in r.stderr, r.stderr

    r = cgc(b, "--describe", "--group", group, "--state")
    assert table(r.stdout, STATE_HEADER) == [[group, b, "(1)", "-", "Empty", "0"]], r.stdout

    # --reset-offsets: all partitions of the topic to the earliest offset (0 each)
    r = cgc(b, "--reset-offsets", "--group", group, "--topic", t, "--to-earliest", "--execute")
    assert table(r.stdout, RESET_HEADER) == [[group, t, str(p), "0"] for p in range(3)], r.stdout

    r = cgc(b, "--reset-offsets", "--group", group, "--topic", f"{t}:1", "--to-offset", "7",
            "--execute")
    assert table(r.stdout, RESET_HEADER) == [[group, t, "1", "7"]], r.stdout

    r = cgc(b, "--describe", "--group", group, "--offsets")
    assert table(r.stdout, OFFSETS_HEADER) == [
        [group, t, "0", "0", "15", "15", "-", "-", "-"],
        [group, t, "1", "7", "15", "8", "-", "-", "-"],
        [group, t, "2", "0", "0", "0", "-", "-", "-"],
    ], r.stdout
    assert committed(b, group, t) == {0: 0, 1: 7, 2: 0}

    r = cgc(b, "--delete-offsets", "--group", group, "--topic", f"{t}:0")
    assert f"Request succeeded for deleting offsets from group {group}." in r.stdout, r.stdout
    assert table(r.stdout, ["TOPIC", "PARTITION", "STATUS"]) == [[t, "0", "Successful"]]
    r = cgc(b, "--describe", "--group", group, "--offsets")
    assert table(r.stdout, OFFSETS_HEADER) == [
        [group, t, "1", "7", "15", "8", "-", "-", "-"],
        [group, t, "2", "0", "0", "0", "-", "-", "-"],
    ], r.stdout
    assert committed(b, group, t) == {0: -1001, 1: 7, 2: 0}  # -1001: no committed offset

    r = cgc(b, "--delete", "--group", group)
    assert f"Deletion of requested consumer groups ('{group}') was successful." in r.stdout, \
        r.stdout
    listed = cgc(b, "--list").stdout.split()
    assert group not in listed and other in listed, listed
    assert committed(b, group, t) == {0: -1001, 1: -1001, 2: -1001}

    r = cgc(b, "--delete", "--group", group)
    assert ("Error: Deletion of some consumer groups failed:\n"
            f"* Group '{group}' could not be deleted due to: "
            "org.apache.kafka.common.errors.GroupIdNotFoundException: The group id does not exist."
            ) in r.stdout, r.stdout


def committed(bootstrap, group, t):
    c = ck_group_consumer(bootstrap, group)
    try:
        tps = c.committed([TopicPartition(t, p) for p in range(3)], timeout=30)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()
