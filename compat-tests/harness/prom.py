"""Prometheus helpers for tests/test_monitoring.py: scrape and parse gregor's /metrics (text
exposition format), run a real Prometheus server, query its HTTP API, and expand Grafana
dashboard variables in panel queries."""

import json
import math
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .broker import REPO_DIR, free_port

DASHBOARD_DIR = REPO_DIR / "grafana" / "dashboards"
PROMETHEUS_YML = REPO_DIR / "docker" / "prometheus.yml"

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def http_get(url, timeout=10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def parse_text(text: str) -> dict:
    """Prometheus text format -> {(name, frozenset(labels.items())): float}."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"unparsable metrics line: {line!r}")
        name, labels, value = m.groups()
        lab = {k: bytes(v, "utf-8").decode("unicode_escape") for k, v in _LABEL.findall(labels or "")}
        out[(name, frozenset(lab.items()))] = float(value)
    return out


class Scrape:
    """One scrape of a /metrics endpoint."""

    def __init__(self, url):
        self.url = url
        self.text = http_get(url)
        self.samples = parse_text(self.text)

    def series(self, name, **labels):
        """{frozenset(all labels): value} of `name` series whose labels include `labels`."""
        want = {k: str(v) for k, v in labels.items()}
        return {lab: v for (n, lab), v in self.samples.items()
                if n == name and want.items() <= dict(lab).items()}

    def value(self, name, **labels):
        """The value of the single series of `name` matching `labels`; None if there is none."""
        s = self.series(name, **labels)
        if not s:
            return None
        assert len(s) == 1, f"{name}{labels}: {len(s)} series match: {s}"
        return next(iter(s.values()))


# ---- a real Prometheus server ------------------------------------------------------------

def prometheus_binary():
    return shutil.which("prometheus")


def config_for_target(target: str, src: Path = PROMETHEUS_YML) -> str:
    """docker/prometheus.yml with every static target of job `gregor` replaced by `target`.

    Returned as JSON (valid YAML). Uses PyYAML when importable, else a textual rewrite."""
    text = src.read_text()
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        cfg = yaml.safe_load(text)
        jobs = [j for j in cfg["scrape_configs"] if j["job_name"] == "gregor"]
        assert jobs, "docker/prometheus.yml has no job 'gregor'"
        for j in jobs:
            for sc in j["static_configs"]:
                sc["targets"] = [target]
        return json.dumps(cfg, indent=2)
    new, n = re.subn(r'"gregor:9308"|\bgregor:9308\b', f'"{target}"', text)
    assert n, "docker/prometheus.yml has no target gregor:9308"
    return new


class Prometheus:
    """`prometheus` on 127.0.0.1:<free port> with its TSDB in `workdir`."""

    def __init__(self, workdir: Path, config_text: str):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = self.workdir / "prometheus.yml"
        self.config.write_text(config_text)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "prometheus.log"
        self.proc = None

    def start(self, timeout=30.0):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [prometheus_binary(), f"--config.file={self.config}",
             f"--storage.tsdb.path={self.workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=str(self.workdir), start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if "Ready" in http_get(f"{self.url}/-/ready", timeout=2):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus not ready in {timeout}s:\n{self.log_tail()}")
            time.sleep(0.2)

    def query(self, expr: str, at=None) -> list:
        """Instant query -> result list (vector/matrix) or [scalar] for scalar results."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode(params)
        try:
            body = json.loads(http_get(url))
        except urllib.error.HTTPError as e:
            raise AssertionError(f"query {expr!r}: HTTP {e.code}: {e.read().decode(errors='replace')}") from None
        assert body["status"] == "success", f"{expr}: {body}"
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [data["result"]]
        return data["result"]

    def log_tail(self, n=40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()


# ---- Grafana dashboards --------------------------------------------------------------------

def dashboards():
    """[(file name, dashboard dict)] of grafana/dashboards/*.json."""
    return [(p.name, json.loads(p.read_text())) for p in sorted(DASHBOARD_DIR.glob("*.json"))]


def panel_targets(dashboard):
    """Yields (panel title, refId, expr) for every query target of every panel (rows included)."""
    def walk(panels):
        for p in panels:
            yield from walk(p.get("panels", []))
            for t in p.get("targets", []):
                if "expr" in t:
                    yield p.get("title", "?"), t.get("refId", "?"), t["expr"]
    yield from walk(dashboard.get("panels", []))


_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


def expand(expr: str, values: dict) -> str:
    """Grafana's substitution of $var, ${var}, ${var:fmt} and [[var]] from `values`;
    a variable not in `values` raises KeyError."""
    def sub(m):
        name = m.group(1) or m.group(2) or m.group(3)
        return values[name]
    return _VAR.sub(sub, expr)


def is_nan(v) -> bool:
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return False
