"""Start/stop/kill/restart a broker under test: gregor, or (GREGOR_COMPAT_TARGET=kafka) the
real Apache Kafka 4.1.1 broker from compat-tests/.jars, so every test can be validated
against the reference implementation.

Both targets get the same Kafka configuration keys; gregor takes them as `--override k=v`,
Kafka in its server.properties.
"""

import base64
import os
import re
import signal
import socket
import struct
import subprocess
import time
import uuid
from pathlib import Path

from .java import JARS_DIR, LOG4J_CONFIG, java_cmd
from .wire import read_frame

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
COMPAT_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = COMPAT_DIR.parent


def target() -> str:
    t = os.environ.get("GREGOR_COMPAT_TARGET", "gregor").strip().lower()
    if t not in ("gregor", "kafka"):
        raise ValueError(f"GREGOR_COMPAT_TARGET must be 'gregor' or 'kafka', not {t!r}")
    return t


def is_kafka() -> bool:
    return target() == "kafka"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_versions_v0(host: str, port: int, timeout: float = 2.0) -> dict:
    """One raw ApiVersions v0 round-trip. Returns {api_key: (min, max)}; raises on failure."""
    client_id = b"gregor-compat"
    body = struct.pack(">hhih", 18, 0, 0x0C0FFEE, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(body)) + body)
        resp = read_frame(s)
    corr, err, n = struct.unpack(">ihi", resp[:10])
    if corr != 0x0C0FFEE:
        raise ValueError(f"ApiVersions: correlation id {corr:#x}")
    if err != 0:
        raise ValueError(f"ApiVersions v0: error code {err}")
    apis = {}
    for i in range(n):
        k, lo, hi = struct.unpack(">hhh", resp[10 + 6 * i: 16 + 6 * i])
        apis[k] = (lo, hi)
    return apis


def _default_gregor_bin() -> str:
    return os.environ.get("GREGOR_BIN", str(REPO_DIR / "target" / "release" / "gregor"))


# Configuration both targets start with (Kafka's defaults, made explicit where a single-node
# test broker needs them). Tests add their own with Broker(overrides={...}).
COMMON_CONFIG = {
    "auto.create.topics.enable": "true",
    "num.partitions": "1",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "group.initial.rebalance.delay.ms": "0",
}

KAFKA_ONLY_CONFIG = {
    "process.roles": "broker,controller",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "offsets.topic.num.partitions": "3",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    # faster re-registration after kill -9 (defaults 2s/9s)
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "3000",
}


class BrokerError(AssertionError):
    pass


SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


def jaas_quote(s: str) -> str:
    """A JAAS option value in double quotes. No quotes or backslashes inside: the value also
    goes through a Java properties file, where a backslash is an escape."""
    if '"' in s or "\\" in s:
        raise ValueError(f"no quotes or backslashes in JAAS values: {s!r}")
    return f'"{s}"'


def sasl_config(mechanisms, plain_users, listeners=("SASL_PLAINTEXT",)) -> dict:
    """Kafka's keys for SASL listeners (both targets take exactly these): the enabled
    mechanisms, and for each listener PLAIN's users in its PlainLoginModule JAAS config and a
    ScramLoginModule for each SCRAM mechanism (SCRAM users are created at runtime with
    kafka-configs.sh, AlterUserScramCredentials)."""
    cfg = {"inter.broker.listener.name": "PLAINTEXT",
           "sasl.enabled.mechanisms": ",".join(mechanisms)}
    for listener in listeners:
        for m in mechanisms:
            key = f"listener.name.{listener.lower()}.{m.lower()}.sasl.jaas.config"
            if m == "PLAIN":
                users = "".join(f" user_{u}={jaas_quote(p)}" for u, p in plain_users.items())
                cfg[key] = (f"org.apache.kafka.common.security.plain.PlainLoginModule "
                            f"required{users};")
            elif m in SCRAM_MECHANISMS:
                cfg[key] = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            else:
                raise ValueError(f"no JAAS config known for SASL mechanism {m}")
    return cfg


TLS_PROTOCOLS = ("SSL", "SASL_SSL")


class Broker:
    """One broker process on 127.0.0.1:<port> with its data in <workdir>/data.

    stop() = SIGTERM + wait + assert clean exit; kill9() = SIGKILL; restart() = start again on
    the same port with the same data directory.
    """

    def __init__(self, workdir, overrides=None, target_name=None, start_timeout=None, limits=None,
                 listeners=None, sasl=None, tls=None, node_id=1, quorum=None):
        self.target = target_name or target()
        self.node_id = node_id
        # A node of a cluster (harness/cluster.py): {"voters": "1@host:port,...",
        # "controller_port": int, "cluster_id": str}. Both targets get Kafka's KRaft keys.
        self.quorum = dict(quorum) if quorum else None
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.log_path = self.workdir / "broker.log"
        self.port = free_port()
        if self.quorum:
            self.controller_port = self.quorum["controller_port"]
        else:
            self.controller_port = free_port() if self.target == "kafka" else None
        self.overrides = {k: str(v) for k, v in (overrides or {}).items()}
        # resource.RLIMIT_* -> limit, applied to the broker process (as `ulimit` would).
        self.limits = dict(limits or {})
        # More PLAINTEXT listeners: name -> (port, advertised host), beside PLAINTEXT on self.port.
        self.listeners = dict(listeners or {})
        # A SASL_PLAINTEXT listener beside PLAINTEXT: {"mechanisms": [...], "plain_users":
        # {user: password}} (see sasl_config()).
        self.sasl = None
        self.sasl_port = None
        if sasl is not None:
            self.sasl = {"mechanisms": list(sasl.get("mechanisms", ["PLAIN"])),
                         "plain_users": dict(sasl.get("plain_users", {}))}
            unknown = set(sasl) - {"mechanisms", "plain_users"}
            if unknown:
                raise ValueError(f"unknown sasl keys {sorted(unknown)}")
            self.sasl_port = free_port()
        # TLS listeners beside PLAINTEXT: {"SSL" or "SASL_SSL": {ssl.* keys}}, each listener named
        # after its protocol with its keys under its prefix (listener.name.ssl.ssl.keystore...);
        # SASL_SSL takes its mechanisms and users from `sasl` (see harness/certs.py for keys).
        self.tls = {name.upper(): dict(keys) for name, keys in (tls or {}).items()}
        unknown = set(self.tls) - set(TLS_PROTOCOLS)
        if unknown:
            raise ValueError(f"TLS listeners are {TLS_PROTOCOLS}, not {sorted(unknown)}")
        if "SASL_SSL" in self.tls and self.sasl is None:
            raise ValueError("a SASL_SSL listener needs sasl=...")
        self.tls_ports = {name: free_port() for name in self.tls}
        self.proc = None
        self.starts = 0
        self.exit_codes = []
        self.start_timeout = start_timeout or (90.0 if self.target == "kafka" else 30.0)
        self._log_fh = None
        if self.target == "kafka":
            self._prepare_kafka()

    # ---- public -----------------------------------------------------------------------
    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        if self.sasl_port is None:
            raise BrokerError("broker has no SASL_PLAINTEXT listener (start it with sasl=...)")
        return f"127.0.0.1:{self.sasl_port}"

    def tls_bootstrap(self, protocol) -> str:
        if protocol not in self.tls_ports:
            raise BrokerError(f"broker has no {protocol} listener (start it with tls=...)")
        return f"127.0.0.1:{self.tls_ports[protocol]}"

    @property
    def ssl_bootstrap(self) -> str:
        return self.tls_bootstrap("SSL")

    @property
    def sasl_ssl_bootstrap(self) -> str:
        return self.tls_bootstrap("SASL_SSL")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def config(self) -> dict:
        cfg = dict(COMMON_CONFIG)
        cfg.update(
            {
                "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
                "log.dirs": str(self.data_dir),
                "node.id": str(self.node_id),
            }
        )
        if self.quorum:
            cfg["listeners"] += f",CONTROLLER://127.0.0.1:{self.controller_port}"
            cfg.update({
                "process.roles": "broker,controller",
                "controller.listener.names": "CONTROLLER",
                "controller.quorum.voters": self.quorum["voters"],
                "inter.broker.listener.name": "PLAINTEXT",
            })
        for name, (port, host) in self.listeners.items():
            cfg["listeners"] += f",{name}://127.0.0.1:{port}"
            cfg["advertised.listeners"] += f",{name}://{host}:{port}"
        protocols = {n: "PLAINTEXT" for n in ["PLAINTEXT", *self.listeners]}
        if self.quorum:
            protocols["CONTROLLER"] = "PLAINTEXT"
        ports = dict(self.tls_ports)
        if self.sasl is not None:
            ports["SASL_PLAINTEXT"] = self.sasl_port
        for name, port in ports.items():
            cfg["listeners"] += f",{name}://127.0.0.1:{port}"
            cfg["advertised.listeners"] += f",{name}://127.0.0.1:{port}"
            protocols[name] = name
        for name, keys in self.tls.items():
            cfg.update({f"listener.name.{name.lower()}.{k}": v for k, v in keys.items()})
        if self.sasl is not None:
            cfg.update(sasl_config(self.sasl["mechanisms"], self.sasl["plain_users"],
                                   [n for n in ports if n.startswith("SASL_")]))
        if len(protocols) > 1:
            cfg["listener.security.protocol.map"] = ",".join(
                f"{n}:{p}" for n, p in protocols.items())
        cfg.update(self.overrides)
        return cfg

    def start(self):
        self.launch()
        try:
            self.wait_ready()
        except BaseException:
            self.kill9()
            raise
        return self

    def launch(self):
        """Starts the process without waiting for it to be ready (a cluster's nodes are all
        launched before any can be ready: each needs a quorum)."""
        if self.running:
            raise BrokerError("broker already running")
        self._log_fh = open(self.log_path, "ab", buffering=0)
        self._log_fh.write(f"\n===== start #{self.starts + 1} ({self.target}) =====\n".encode())
        cmd = self._command()
        env = dict(os.environ, NO_COLOR="1")  # plain log files
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(self.workdir),
            start_new_session=True,
            preexec_fn=self._apply_limits if self.limits else None,
        )
        self.starts += 1
        return self

    def wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        last_err = None
        # 1. the port accepts TCP and answers ApiVersions v0
        while True:
            self._check_alive()
            try:
                api_versions_v0("127.0.0.1", self.port, timeout=2.0)
                if self.sasl_port is not None:  # answered before authentication, as in Kafka
                    api_versions_v0("127.0.0.1", self.sasl_port, timeout=2.0)
                for port in self.tls_ports.values():  # bound (the handshake is the tests')
                    socket.create_connection(("127.0.0.1", port), timeout=2.0).close()
                break
            except (OSError, ValueError, struct.error) as e:
                last_err = e
            if time.monotonic() > deadline:
                raise BrokerError(f"broker did not answer ApiVersions in {self.start_timeout}s: "
                                  f"{last_err!r}\n{self.log_tail()}")
            time.sleep(0.1)
        # 2. a real client gets metadata naming this broker
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        while True:
            self._check_alive()
            try:
                md = admin.list_topics(timeout=3)
                if md.brokers and any(b.port == self.port for b in md.brokers.values()):
                    return
                last_err = f"metadata has brokers {md.brokers}"
            except Exception as e:  # KafkaException
                last_err = e
            if time.monotonic() > deadline:
                raise BrokerError(f"broker not ready in {self.start_timeout}s: {last_err!r}\n"
                                  f"{self.log_tail()}")
            time.sleep(0.2)

    def stop(self, timeout=60.0, expect_clean=True):
        """SIGTERM, wait, and (by default) assert the clean-shutdown exit code."""
        if not self.running:
            raise BrokerError(f"stop(): broker not running (exit code {self._rc()})\n{self.log_tail()}")
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill_group()
            raise BrokerError(f"broker did not exit within {timeout}s of SIGTERM\n{self.log_tail()}")
        self._closed(rc)
        if expect_clean:
            # gregor must exit 0. The JVM exits with 128+SIGTERM=143 after running Kafka's
            # shutdown hook (its controlled shutdown), which is Kafka's clean exit.
            ok = (0, 143) if self.target == "kafka" else (0,)
            if rc not in ok:
                raise BrokerError(f"broker exited with {rc} after SIGTERM, expected {ok}\n"
                                  f"{self.log_tail()}")
        return rc

    def kill9(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._kill_group()
        rc = self.proc.wait(timeout=30)
        self._closed(rc)
        return rc

    def restart(self):
        """Start again on the same port with the same data directory (after stop()/kill9();
        a running broker is stopped cleanly first)."""
        if self.running:
            self.stop()
        # The port may sit in TIME_WAIT; servers set SO_REUSEADDR, so just retry the start.
        return self.start()

    def close(self):
        """Finalizer: make sure nothing is left running."""
        if self.proc is not None and self.proc.poll() is None:
            self._kill_group()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if self._log_fh:
            self._log_fh.close()
            self._log_fh = None

    def log_tail(self, max_bytes=20000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "(no broker log)"
        tail = _ANSI.sub("", data[-max_bytes:].decode("utf-8", "replace"))
        return f"----- {self.log_path} (last {len(tail)} chars) -----\n{tail}"

    def __repr__(self):
        return f"Broker({self.target}, {self.bootstrap}, running={self.running})"

    # ---- internals --------------------------------------------------------------------
    def _rc(self):
        return None if self.proc is None else self.proc.poll()

    def _check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            rc = self.proc.returncode
            self._closed(rc)
            raise BrokerError(f"broker exited during startup with code {rc}\n{self.log_tail()}")

    def _kill_group(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _closed(self, rc):
        if len(self.exit_codes) < self.starts:
            self.exit_codes.append(rc)
        if self._log_fh:
            self._log_fh.write(f"\n===== exited with {rc} =====\n".encode())
            self._log_fh.close()
            self._log_fh = None

    def _apply_limits(self):
        import resource
        for which, limit in self.limits.items():
            resource.setrlimit(which, (limit, limit))

    def _command(self):
        if self.target == "gregor":
            binary = _default_gregor_bin()
            if not os.path.exists(binary):
                raise BrokerError(f"gregor binary not found at {binary} (build it with "
                                  f"`cargo build --release` or set GREGOR_BIN)")
            cmd = [binary]
            for k, v in self.config().items():
                cmd += ["--override", f"{k}={v}"]
            return cmd
        return java_cmd("kafka.Kafka", str(self.workdir / "server.properties"),
                        heap=["-Xmx1G", "-Xms1G"], extra_jvm=["-XX:+UseG1GC"])

    def _kafka_config(self) -> dict:
        cfg = dict(KAFKA_ONLY_CONFIG)
        cfg.update(self.config())
        if self.quorum:
            return cfg
        cfg["listeners"] += f",CONTROLLER://127.0.0.1:{self.controller_port}"
        if "CONTROLLER:" not in cfg["listener.security.protocol.map"]:
            cfg["listener.security.protocol.map"] += ",CONTROLLER:PLAINTEXT"
        cfg.setdefault("controller.quorum.bootstrap.servers",
                       f"127.0.0.1:{self.controller_port}")
        return cfg

    def _prepare_kafka(self):
        if not (JARS_DIR / "kafka_2.13-4.1.1.jar").exists():
            raise BrokerError(f"Kafka jars missing in {JARS_DIR}: run compat-tests/install.sh")
        props = self.workdir / "server.properties"
        props.write_text("".join(f"{k}={v}\n" for k, v in self._kafka_config().items()))
        if self.quorum:  # static voters (controller.quorum.voters), one id for every node
            cmd = java_cmd("kafka.tools.StorageTool", "format", "-t", self.quorum["cluster_id"],
                           "-c", str(props), heap=["-Xmx256M"])
        else:
            cmd = java_cmd("kafka.tools.StorageTool", "format", "--standalone", "-t",
                           new_kafka_cluster_id(), "-c", str(props), heap=["-Xmx256M"])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise BrokerError(f"StorageTool format failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")


def new_kafka_cluster_id() -> str:
    cluster_id = "-"
    while cluster_id.startswith("-"):  # StorageTool would take "-..." for an option
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    return cluster_id


__all__ = ["Broker", "BrokerError", "target", "is_kafka", "free_port", "api_versions_v0",
           "sasl_config", "SCRAM_MECHANISMS", "TLS_PROTOCOLS",
           "LOG4J_CONFIG", "COMPAT_DIR"]
