#!/usr/bin/env python3
"""Captures the request frames real Kafka clients send, for golden tests and fuzz seeds.

Runs a TCP proxy in front of a broker, drives a client through a short scenario (create a topic,
produce with idempotence, fetch back), and writes every client->broker frame to
OUT_DIR/<client>/<seq>-<api_key>-v<version>.bin (the frame without its 4-byte length prefix).
Metadata responses are rewritten so the client keeps talking through the proxy.

usage: capture_frames.py BROKER_HOST:PORT OUT_DIR {confluent,kafka-python,java}
"""
import os
import socket
import struct
import subprocess
import sys
import threading

BROKER = sys.argv[1]
OUT = sys.argv[2]
CLIENT = sys.argv[3]
host, port = BROKER.rsplit(":", 1)
port = int(port)

lsock = socket.socket()
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", 0))
lsock.listen(16)
pport = lsock.getsockname()[1]
seq = [0]
lock = threading.Lock()
os.makedirs(os.path.join(OUT, CLIENT), exist_ok=True)


def read_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def pump_requests(c, b, pending):
    try:
        while True:
            (n,) = struct.unpack(">i", read_exact(c, 4))
            frame = read_exact(c, n)
            key, ver, corr = struct.unpack(">hhi", frame[:8])
            with lock:
                seq[0] += 1
                name = f"{seq[0]:03d}-{key}-v{ver}.bin"
                with open(os.path.join(OUT, CLIENT, name), "wb") as f:
                    f.write(frame)
                pending[corr] = (key, ver)
            b.sendall(struct.pack(">i", n) + frame)
    except (EOFError, OSError):
        pass


def rewrite_port(payload, want):
    # Replace the advertised broker port with the proxy's (same width, so lengths are unchanged).
    return payload.replace(struct.pack(">i", port), struct.pack(">i", pport)) if want else payload


def pump_responses(b, c, pending):
    try:
        while True:
            (n,) = struct.unpack(">i", read_exact(b, 4))
            frame = read_exact(b, n)
            (corr,) = struct.unpack(">i", frame[:4])
            key, _ = pending.pop(corr, (None, None))
            c.sendall(struct.pack(">i", n) + rewrite_port(frame, key in (3, 10, 60)))
    except (EOFError, OSError):
        pass


def serve():
    while True:
        c, _ = lsock.accept()
        b = socket.create_connection((host, port))
        pending = {}
        threading.Thread(target=pump_requests, args=(c, b, pending), daemon=True).start()
        threading.Thread(target=pump_responses, args=(b, c, pending), daemon=True).start()


threading.Thread(target=serve, daemon=True).start()
bs = f"127.0.0.1:{pport}"
topic = f"golden-{CLIENT}"

if CLIENT == "confluent":
    import confluent_kafka as ck
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bs})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result()
    p = ck.Producer({"bootstrap.servers": bs, "enable.idempotence": True, "compression.type": "lz4"})
    for i in range(3):
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"x")], partition=i % 2)
    p.flush(10)
    c = ck.Consumer({"bootstrap.servers": bs, "group.id": "g", "enable.auto.commit": False})
    c.assign([ck.TopicPartition(topic, 0, 0), ck.TopicPartition(topic, 1, 0)])
    got = 0
    while got < 3:
        m = c.poll(5)
        if m is None:
            break
        got += 0 if m.error() else 1
    c.close()
elif CLIENT == "kafka-python":
    from kafka import KafkaAdminClient, KafkaProducer, KafkaConsumer, TopicPartition
    from kafka.admin import NewTopic
    KafkaAdminClient(bootstrap_servers=bs).create_topics([NewTopic(topic, 2, 1)])
    p = KafkaProducer(bootstrap_servers=bs, compression_type="gzip")
    for i in range(3):
        p.send(topic, key=b"k%d" % i, value=b"v%d" % i, partition=i % 2)
    p.flush()
    c = KafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False)
    c.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    c.seek_to_beginning()
    c.poll(timeout_ms=3000)
    c.close()
elif CLIENT == "java":
    here = os.path.dirname(os.path.abspath(__file__))
    bin_dir = os.path.join(here, "..", "bin")
    subprocess.run([os.path.join(bin_dir, "kafka-topics.sh"), "--bootstrap-server", bs, "--create", "--topic", topic, "--partitions", "2"], check=True)
    subprocess.run([os.path.join(bin_dir, "kafka-console-producer.sh"), "--bootstrap-server", bs, "--topic", topic,
                    "--producer-property", "compression.type=zstd"], input=b"a\nb\nc\n", check=True)
    subprocess.run([os.path.join(bin_dir, "kafka-console-consumer.sh"), "--bootstrap-server", bs, "--topic", topic,
                    "--partition", "0", "--offset", "earliest", "--timeout-ms", "3000"], check=False)
print(f"captured {seq[0]} frames into {os.path.join(OUT, CLIENT)}")
