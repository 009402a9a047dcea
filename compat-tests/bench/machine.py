"""The machine and the processes the benchmark runs on it: brokers (Kafka from its jars, gregor
from its binary), clients in their own process groups, and readings from /proc."""

import base64
import os
import platform
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
COMPAT = BENCH.parent
REPO = COMPAT.parent
JARS = COMPAT / ".jars"
LOG4J = COMPAT / "harness" / "log4j2.properties"
WORK = BENCH / ".work"
LOADGEN = WORK / "loadgen"
LOGDIR = WORK / "logs"  # client logs, one folder per broker start
CLK_TCK = os.sysconf("SC_CLK_TCK")
JAVA = os.environ.get("JAVA", "java")

# Given to both brokers (Kafka: server.properties, gregor: --override). Kafka's default 3 s
# delay before the first rebalance of a new group would only add a constant to (c').
SHARED_CONFIG = {"group.initial.rebalance.delay.ms": "0"}

CHILDREN = set()  # pids of process groups we started; killed on exit
MY_DIRS = []  # broker directories this run created (only these are cleaned up)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def kill_children():
    for pid in list(CHILDREN):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        CHILDREN.discard(pid)


def on_signal(signum, _frame):
    kill_children()
    sys.exit(128 + signum)


# ---- /proc helpers -------------------------------------------------------------------------

def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the ")" field 3 (state) is index 0: utime is field 14 -> index 11, stime 15 -> 12
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def reset_hwm(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def machine_busy():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


def machine_description():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return (f"{model}, nproc={nproc}, {mem_kib / 1024 / 1024:.1f} GiB RAM, "
            f"{platform.system()} {platform.release()}")


# ---- raw ApiVersions v0 --------------------------------------------------------------------

def api_versions_v0(port, timeout=1.0):
    cid = b"gregor-bench"
    body = struct.pack(">hhih", 18, 0, 0x0BE7C4, len(cid)) + cid
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(body)) + body)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
    corr, err = struct.unpack(">ih", buf[4:10])
    if corr != 0x0BE7C4 or err != 0:
        raise ValueError(f"ApiVersions v0: corr={corr:#x} err={err}")
    (n,) = struct.unpack(">i", buf[10:14])
    return {struct.unpack(">h", buf[14 + 6 * i:16 + 6 * i])[0] for i in range(n)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- TLS -----------------------------------------------------------------------------------

CIPHER_SUITE = "TLS_AES_256_GCM_SHA384"  # TLS 1.3

class Certs:
    """Made once per run with the openssl CLI: a CA and a server certificate it signs (P-256, SAN
    DNS:localhost, IP:127.0.0.1). `ca`: the clients' trust (PEM); `config`: the ssl.* keys both
    brokers get: a PEM key store = unencrypted PKCS#8 key + chain (Kafka 4.1.1 reads it without
    ssl.key.password; on JDK 17 it cannot decrypt the PBES2 keys `openssl pkcs8 -v2` writes:
    "PBES2 SecretKeyFactory not available"), and the cipher suite."""

    def __init__(self, d):
        d.mkdir(parents=True, exist_ok=True)

        def openssl(*args):
            r = subprocess.run(["openssl", *map(str, args)], cwd=d, capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise WorkloadError(f"openssl {' '.join(map(str, args))}: {r.stderr}")

        for name in ("ca", "server"):
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key")
        openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=gregor-bench-ca", "-days", "7",
                "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.pem")
        openssl("req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "server.csr")
        (d / "server.ext").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                      "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "7", "-sha256", "-extfile", "server.ext", "-out", "server.pem")
        store = d / "keystore.pem"
        store.write_text("".join((d / f).read_text() for f in ("server.key", "server.pem", "ca.pem")))
        self.ca = d / "ca.pem"
        # One cipher suite for both: left alone, Kafka (JDK: the server's order) picks AES-256-GCM
        # and gregor (rustls: the client's order; Go prefers AES-128) AES-128-GCM.
        self.config = {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(store),
                       "ssl.cipher.suites": CIPHER_SUITE}


# ---- child processes -----------------------------------------------------------------------

class ClientRun:
    def __init__(self, rc, out, err, wall, cpu):
        self.rc, self.out, self.err, self.wall, self.cpu = rc, out, err, wall, cpu

    @property
    def cpu_pct(self):
        return 100.0 * self.cpu / self.wall if self.wall > 0 else 0.0


def run_client(cmd, logfile, timeout):
    """Run a client to completion in its own process group; CPU from wait4's rusage."""
    out_path, err_path = Path(str(logfile) + ".out"), Path(str(logfile) + ".err")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "wb") as o, open(err_path, "wb") as e:
        t0 = time.monotonic()
        p = subprocess.Popen([str(c) for c in cmd], stdout=o, stderr=e, stdin=subprocess.DEVNULL,
                             start_new_session=True, cwd=str(WORK))
        CHILDREN.add(p.pid)
        ru = None
        status = None
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid != 0:
                break
            if time.monotonic() - t0 > timeout:
                os.killpg(p.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(p.pid, 0)
                status = None
                break
            time.sleep(0.02)
        wall = time.monotonic() - t0
        p.returncode = 0  # reaped by wait4 ourselves; keep Popen from trying again
        CHILDREN.discard(p.pid)
    rc = "timeout" if status is None else os.waitstatus_to_exitcode(status)
    return ClientRun(rc, out_path.read_text(errors="replace"), err_path.read_text(errors="replace"),
                     wall, ru.ru_utime + ru.ru_stime)


def java_cmd(main, *args, heap="-Xmx512M"):
    return [JAVA, heap, f"-Dlog4j2.configurationFile={LOG4J}", "-cp", f"{JARS}/*", main, *args]


class WorkloadError(Exception):
    pass


# ---- brokers -------------------------------------------------------------------------------

class Broker:
    """One broker process. With `certs` (a Certs) it also has an SSL listener (`ssl_bootstrap`)
    beside the PLAINTEXT one, with certs.config's ssl.* keys."""

    def __init__(self, kind, name, overrides, gregor_bin, certs=None):
        self.kind, self.overrides, self.gregor_bin, self.certs = kind, dict(overrides), gregor_bin, certs
        self.tls_config = certs.config if certs else {}
        self.dir = WORK / name
        self.logdir = LOGDIR / name
        MY_DIRS.append(self.dir)
        if self.dir.exists():
            shutil.rmtree(self.dir)
        (self.dir / "data").mkdir(parents=True)
        self.port = free_port()
        self.ssl_port = free_port() if certs else None
        self.proc = None
        self.startup_ms = None
        self.idle_rss_mib = None
        self.api_keys = set()

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    @property
    def ssl_bootstrap(self):
        return f"127.0.0.1:{self.ssl_port}"

    @property
    def listeners(self):
        """the client listeners (Kafka's CONTROLLER listener aside)"""
        return f"PLAINTEXT://{self.bootstrap}" + (f",SSL://{self.ssl_bootstrap}" if self.certs else "")

    def _kafka_props(self):
        cport = free_port()
        cfg = {
            # the minimum a single KRaft combined node needs; everything else is Kafka's default
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{cport}",
            "listeners": f"{self.listeners},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": self.listeners,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
                                              + (",SSL:SSL" if self.certs else ""),
            "log.dirs": str(self.dir / "data"),
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
        }
        cfg.update(SHARED_CONFIG)
        cfg.update(self.tls_config)
        cfg.update(self.overrides)
        props = self.dir / "server.properties"
        props.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
        cluster = "-"
        while cluster.startswith("-"):  # argparse would take a leading '-' for an option
            cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        r = subprocess.run(java_cmd("kafka.tools.StorageTool", "format", "--standalone", "-t", cluster,
                                    "-c", str(props), heap="-Xmx256M"),
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            raise WorkloadError(f"StorageTool format failed: {r.stdout}\n{r.stderr}")
        return props

    def start(self, timeout):
        if self.kind == "kafka":
            props = self._kafka_props()
            cmd = [JAVA, "-Xmx1G", "-Xms1G", "-XX:+UseG1GC", f"-Dlog4j2.configurationFile={LOG4J}",
                   "-cp", f"{JARS}/*", "kafka.Kafka", str(props)]
        else:
            cmd = [str(self.gregor_bin), "--override", f"listeners={self.listeners}",
                   "--override", f"log.dirs={self.dir / 'data'}"]
            for k, v in {**SHARED_CONFIG, **self.tls_config, **self.overrides}.items():
                cmd += ["--override", f"{k}={v}"]
        self.logf = open(self.dir / "broker.log", "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     cwd=str(self.dir), env=dict(os.environ, NO_COLOR="1"))
        CHILDREN.add(self.proc.pid)
        while True:
            if self.proc.poll() is not None:
                raise WorkloadError(f"{self.kind} exited during start-up with {self.proc.returncode}; "
                                    f"log tail:\n{self.log_tail()}")
            try:
                self.api_keys = api_versions_v0(self.port, timeout=1.0)
                break
            except (OSError, ValueError, struct.error):
                pass
            if time.monotonic() - t0 > timeout:
                raise WorkloadError(f"{self.kind} did not answer ApiVersions within {timeout}s; "
                                    f"log tail:\n{self.log_tail()}")
            time.sleep(0.01)
        self.startup_ms = (time.monotonic() - t0) * 1000
        time.sleep(3)  # settle (Kafka finishes registering with its controller), then idle RSS
        self.check_alive()
        self.idle_rss_mib = proc_status_kib(self.proc.pid, "VmRSS") / 1024
        return self

    def check_alive(self):
        if self.proc.poll() is not None:
            raise WorkloadError(f"{self.kind} died (exit {self.proc.returncode}); log tail:\n"
                                f"{self.log_tail()}")

    def log_tail(self, n=3000):
        try:
            return (self.dir / "broker.log").read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return "(no log)"

    def stop(self):
        """SIGTERM and wait; returns a warning string if the exit was not clean."""
        if self.proc is None:
            return None
        warn = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                warn = f"{self.kind} did not exit within 60s of SIGTERM (killed)"
        rc = self.proc.returncode
        ok = (0, 143) if self.kind == "kafka" else (0,)
        if warn is None and rc not in ok:
            warn = f"{self.kind} exited with {rc} after SIGTERM"
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        CHILDREN.discard(self.proc.pid)
        self.logf.close()
        return warn

    def cleanup_data(self):
        shutil.rmtree(self.dir / "data", ignore_errors=True)

