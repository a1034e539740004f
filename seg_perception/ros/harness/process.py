"""The node under test as a child process: ``NodeProcess`` starts ``segmentation_node`` from its console script with
params files (what ``ros2 launch`` does) and stops it with SIGINT."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

EXECUTABLE = "segmentation_node"
READY_MARK = "ready:"


def node_executable(name: str = EXECUTABLE) -> list[str]:
    """The console script ``name`` next to this Python (a venv or a ROS install), else the one on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (pip install . or colcon build)")
    return [found]


class NodeProcess:
    """``segmentation_node --ros-args --params-file PARAMS [-p name:=value ...]`` as a child process.

    ``params_file``: one params file or several (applied in order); ``params``: extra ``name: value`` overrides
    (values written in ROS YAML syntax); ``name``: the node name (``-r __node:=``), ``namespace`` its namespace
    (``-r __ns:=``, absolute, e.g. "/test_a": keeps its topics apart from other nodes'). ``command``: what to run in
    place of the console script (e.g. ``[python, "-c", code]`` for a fault-injection test); the ROS arguments are
    appended to it; ``label`` names the process in errors. Output lines (stdout and stderr) are kept in ``lines``;
    ``wait_ready`` waits for the node's "ready:" log line.
    """

    def __init__(
        self,
        params_file: Path | str | Sequence[Path | str],
        params: dict[str, str] | None = None,
        name: str | None = None,
        namespace: str | None = None,
        command: Sequence[str] | None = None,
    ):
        files = [params_file] if isinstance(params_file, (str, Path)) else list(params_file)
        self.label = " ".join(command) if command else EXECUTABLE
        command = [*(command or node_executable()), "--ros-args"]
        for file in files:
            command += ["--params-file", str(file)]
        for key, value in (params or {}).items():
            command += ["-p", f"{key}:={value}"]
        if name:
            command += ["-r", f"__node:={name}"]
        if namespace:
            command += ["-r", f"__ns:={namespace}"]
        self.command = command
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "RCUTILS_COLORIZED_OUTPUT": "0"},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until the node logged that it is ready; RuntimeError with its output if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(READY_MARK in line for line in self.lines):
                return
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                raise RuntimeError(f"{self.label} exited with {self.process.returncode}:\n{self.output}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.label} not ready after {timeout} s:\n{self.output}")

    def wait_exit(self, timeout: float = 60.0) -> int:
        """Wait for the process to end on its own; returns its exit code."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def rss_mb(self) -> float:
        """Resident memory of the node process in MB (Linux /proc)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the node process has used so far, in seconds (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGINT (so Fast DDS releases its shared memory), then wait; kill after ``timeout``. Returns the code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        return self.process.returncode

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
