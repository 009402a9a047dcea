"""Generates src/config/broker_configs.rs: every broker config Apache Kafka 4.1.1 defines, as its
broker answers DescribeConfigs for itself (name, type, default, sensitivity, read-only flag,
documentation).

    compat-tests/.venv/bin/python compat-tests/tools/gen_broker_configs.py [--json dump.json]

starts the real Kafka 4.1.1 broker from compat-tests/.jars (KRaft combined mode, as the suite
does), runs DumpBrokerConfigs.java against it (KafkaConfig's ConfigDef plus DescribeConfigs with
synonyms and documentation), and writes the Rust table. With --json it reads an earlier dump
instead of starting a broker.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
COMPAT = TOOLS.parent
REPO = COMPAT.parent
sys.path.insert(0, str(COMPAT))

OUT = REPO / "src" / "config" / "broker_configs.rs"
# The names Kafka's broker lists (`kafka-configs.sh --describe --all`), for test_admin_configs.py.
NAMES_OUT = COMPAT / "tests" / "kafka_4_1_1_broker_config_names.txt"

# Set on the reference broker so the dump shows how Kafka answers for set / sensitive keys.
PROBE_CONFIG = {
    "num.partitions": "2",
    "min.insync.replicas": "1",
    "default.replication.factor": "1",
    "ssl.keystore.password": "hunter2",
    "log.retention.hours": "100",
    "log.initial.task.delay.ms": "1000",  # an internal key: listed only when set
    "no.such.config.probe": "x",  # a key Kafka does not define: listed, UNKNOWN, sensitive
}


def dump():
    from harness.broker import Broker
    from harness.java import JARS_DIR

    with tempfile.TemporaryDirectory() as d:
        b = Broker(Path(d), overrides=PROBE_CONFIG, target_name="kafka")
        try:
            b.start()
            r = subprocess.run(["java", "-cp", f"{JARS_DIR}/*", str(TOOLS / "DumpBrokerConfigs.java"),
                                b.bootstrap, "1"], capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                raise SystemExit(f"DumpBrokerConfigs failed:\n{r.stderr}")
            data = json.loads(r.stdout)
            data["probe"] = b._kafka_config()
            return data
        finally:
            b.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="read this dump instead of starting Kafka")
    ap.add_argument("--dump-only", help="write the dump here and stop")
    a = ap.parse_args()
    data = json.loads(Path(a.json).read_text()) if a.json else dump()
    if a.dump_only:
        Path(a.dump_only).write_text(json.dumps(data, indent=1))
        return
    OUT.write_text(generate(data))
    NAMES_OUT.write_text("".join(f"{k['name']}\n" for k in data["configdef"] if not k["internal"]))
    print(f"wrote {OUT} and {NAMES_OUT}")


TYPES = {"BOOLEAN": "Boolean", "STRING": "String", "INT": "Int", "SHORT": "Short", "LONG": "Long",
         "DOUBLE": "Double", "LIST": "List", "CLASS": "Class", "PASSWORD": "Password"}


def rust_str(s):
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u{%x}" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def generate(data):
    described = {e["name"]: e for e in data["describe"]}
    rows = []
    for k in data["configdef"]:
        name = k["name"]
        e = described.get(name)
        if e is None and not k["internal"]:
            raise SystemExit(f"{name}: defined, not internal, yet not described by the broker")
        if e is not None and e["type"] != k["type"]:
            raise SystemExit(f"{name}: ConfigDef type {k['type']}, described as {e['type']}")
        if e is not None and e["sensitive"] != (k["type"] == "PASSWORD"):
            raise SystemExit(f"{name}: sensitive={e['sensitive']} but type {k['type']}")
        # Internal keys are described only when set (the probe sets one); they are all static.
        read_only = e["read_only"] if e is not None else True
        default = "None" if k["default"] is None else f"Some({rust_str(k['default'])})"
        flags = ("RO" if read_only else "RW") + ("_INTERNAL" if k["internal"] else "")
        rows.append(f"    c!({rust_str(name)}, {TYPES[k['type']]}, {default}, {flags}, "
                    f"{rust_str(k['doc'] or '')}),")
    listed = sum(1 for k in data["configdef"] if not k["internal"])
    return HEADER.format(n=len(rows), listed=listed) + "\n".join(rows) + "\n];\n"


HEADER = """//! Every broker config Apache Kafka 4.1.1 defines (KafkaConfig's ConfigDef, {n} keys, {listed} of
//! them not internal), as its broker describes them: type, default, whether DescribeConfigs marks
//! it read-only (not dynamically updatable), whether it is internal (listed only when set), and
//! its documentation. Sensitive configs are those of type PASSWORD.
//!
//! GENERATED by compat-tests/tools/gen_broker_configs.py, which starts the real Kafka 4.1.1 broker
//! from compat-tests/.jars and runs compat-tests/tools/DumpBrokerConfigs.java against it. Do not
//! edit by hand; regenerate.

use super::topic::ConfigType;

pub struct BrokerConfigDef {{
    pub name: &'static str,
    pub ty: ConfigType,
    /// Kafka's default (`None`: null, or no default).
    pub default: Option<&'static str>,
    pub read_only: bool,
    /// Internal keys are described only when set.
    pub internal: bool,
    pub doc: &'static str,
}}

const RO: (bool, bool) = (true, false);
const RW: (bool, bool) = (false, false);
const RO_INTERNAL: (bool, bool) = (true, true);
#[allow(dead_code)] // no internal key is dynamically updatable in 4.1.1
const RW_INTERNAL: (bool, bool) = (false, true);

macro_rules! c {{
    ($name:expr, $ty:ident, $default:expr, $flags:expr, $doc:expr) => {{
        BrokerConfigDef {{
            name: $name,
            ty: ConfigType::$ty,
            default: $default,
            read_only: $flags.0,
            internal: $flags.1,
            doc: $doc,
        }}
    }};
}}

/// Sorted by name.
pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
"""


if __name__ == "__main__":
    main()
