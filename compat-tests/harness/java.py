"""Run Apache Kafka's Java tools (and broker) from compat-tests/.jars."""

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

COMPAT_DIR = Path(__file__).resolve().parent.parent
JARS_DIR = COMPAT_DIR / ".jars"
BIN_DIR = COMPAT_DIR / "bin"
LOG4J_CONFIG = COMPAT_DIR / "harness" / "log4j2.properties"


def java_exe() -> str:
    return os.environ.get("JAVA", "java")


def java_cmd(main_class, *args, heap=None, extra_jvm=None):
    return ([java_exe()] + list(heap or ["-Xmx512M"]) + list(extra_jvm or [])
            + [f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", "-cp", f"{JARS_DIR}/*", main_class]
            + [str(a) for a in args])


@dataclass
class ToolResult:
    args: list
    returncode: int
    stdout: str
    stderr: str

    def check(self):
        if self.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, self.args))} exited {self.returncode}\n"
                                 f"--- stdout ---\n{self.stdout[-5000:]}\n"
                                 f"--- stderr ---\n{self.stderr[-5000:]}")
        return self


def _run(cmd, timeout, input=None, raw_stdout=False):
    """Run in its own process group; on timeout kill the whole group and raise. With `raw_stdout`
    the stdout stays bytes (for byte-exact comparisons)."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        raise AssertionError(f"{' '.join(map(str, cmd))} timed out after {timeout}s\n"
                             f"--- stdout ---\n{out[-3000:]!r}\n--- stderr ---\n{err[-5000:]!r}")
    except BaseException:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        raise
    if not raw_stdout:
        out = out.decode("utf-8", "replace")
    return ToolResult(cmd, p.returncode, out, err.decode("utf-8", "replace"))


def java_tool(main_class, *args, timeout=120, input=None, heap=None) -> ToolResult:
    """`java -cp 'compat-tests/.jars/*' <main_class> args...` -> ToolResult(stdout, stderr, rc)."""
    if isinstance(input, str):
        input = input.encode("utf-8")
    return _run(java_cmd(main_class, *args, heap=heap), timeout, input)


def kafka_script(name, *args, timeout=120, input=None) -> ToolResult:
    """Run one of compat-tests/bin/kafka-*.sh exactly as a Kafka user would."""
    if isinstance(input, str):
        input = input.encode("utf-8")
    return _run([str(BIN_DIR / name)] + [str(a) for a in args], timeout, input)


def kafka_script_bytes(name, *args, timeout=120, input=None):
    """Like kafka_script but returns raw stdout bytes (for byte-exact comparisons)."""
    return _run([str(BIN_DIR / name)] + [str(a) for a in args], timeout, input, raw_stdout=True)
