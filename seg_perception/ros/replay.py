"""Replaying a bag's camera frames into a running node with the bag's timing, as ``ros2 bag play`` would, and
recording what comes back (the measuring half of ``seg-replay-bench``).

The frames are held in memory as recorded (CDR bytes). Each is published at ``start + (stamp - first stamp) /
rate`` (absolute deadlines, so the pace does not drift), with its header stamp rewritten in the CDR bytes to the
publishing time, so the node's own stamp -> publish latency is meaningful; the bag stamp is kept for the ground
truth. Outputs are recorded by stamp on arrival; the node's CPU time and RSS are sampled every second.
"""

from __future__ import annotations

import os
import queue
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from seg_perception.ros.harness import NodeClient, NodeProcess, next_diagnostics, settled, spin_until_time

SAMPLE_PERIOD_S = 1.0
WORKER_NICENESS = 19
_CDR_STAMP = struct.Struct("<iI")
"""Header.stamp (int32 sec, uint32 nanosec) right after the 4-byte CDR encapsulation header, little-endian."""
_CDR_STAMP_BE = struct.Struct(">iI")


def restamped(raw: bytes, stamp_ns: int) -> bytes:
    """A CDR-serialised message that starts with a std_msgs/Header (Image, CompressedImage, ...) with its stamp set
    to ``stamp_ns``; ValueError for bytes that are not such a message."""
    if len(raw) < 12 or raw[0] != 0 or raw[1] not in (0, 1):
        raise ValueError("not a CDR-serialised message (no encapsulation header)")
    layout = _CDR_STAMP if raw[1] == 1 else _CDR_STAMP_BE
    return raw[:4] + layout.pack(*divmod(stamp_ns, 1_000_000_000)) + raw[12:]


@dataclass(frozen=True)
class ReplayFrame:
    """One frame to publish: its CDR bytes (an Image), its bag stamp (ns) and its index in the bag."""

    raw: bytes
    bag_stamp_ns: int
    index: int


@dataclass
class ReplayRun:
    """One pass over the frames at ``rate`` x the bag's timing.

    ``published``: [(publish time ns, stamp ns, frame index)] in order (the stamp is the publish time);
    ``arrivals``: {output topic: {stamp ns: arrival ns}}; ``samples``: [(seconds since start, node CPU seconds,
    node RSS MB)]; ``diagnostics``: the node's statuses from the last one before the run on.
    """

    rate: float
    published: list[tuple[int, int, int]] = field(default_factory=list)
    arrivals: dict[str, dict[int, int]] = field(default_factory=dict)
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    diagnostics: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def replay(
    client: NodeClient,
    process: NodeProcess,
    frames: Sequence[ReplayFrame],
    rate: float,
    outputs: Sequence[str],
    quiet_s: float = 3.0,
    progress: Callable[[int], object] | None = None,
    on_output: Callable[[int, str, object], None] | None = None,
) -> ReplayRun:
    """Publish ``frames`` (bag order) on the client's camera '' at ``rate`` x the bag's timing, then wait until
    every output of every frame arrived or nothing came for ``quiet_s``; ``progress(n)`` is told of each frame and
    ``on_output(frame index, output, message)`` of each output message after it arrived, on a worker thread in
    arrival order (so slow work there, e.g. scoring, delays neither a publish nor the timing of an arrival)."""
    run = ReplayRun(rate, arrivals={output: {} for output in outputs})
    index_of: dict[int, int] = {}
    handler = _OutputHandler(on_output)

    def on_arrival(camera: str, output: str, stamp: int, arrival_ns: int) -> None:
        if camera == "" and output in run.arrivals and stamp in index_of:
            run.arrivals[output][stamp] = arrival_ns
            handler.put(index_of[stamp], output, client.received[(camera, output)][stamp])

    first = next_diagnostics(client)
    client.listeners.append(on_arrival)
    start = time.monotonic()
    next_sample = start

    def sample() -> None:
        nonlocal next_sample
        if time.monotonic() >= next_sample:
            try:
                run.samples.append((time.monotonic() - start, process.cpu_seconds(), process.rss_mb()))
            except (OSError, RuntimeError, IndexError):  # the node is gone: its diagnostics will say so
                pass
            next_sample += SAMPLE_PERIOD_S

    try:
        origin = frames[0].bag_stamp_ns if frames else 0
        for frame in frames:
            deadline = start + (frame.bag_stamp_ns - origin) / 1e9 / rate
            spin_until_time(client, deadline, sample)
            stamp = client.now_ns()
            index_of[stamp] = frame.index
            client.publish_msg("", restamped(frame.raw, stamp))
            run.published.append((stamp, stamp, frame.index))
            if progress is not None:
                progress(1)
        stamps = {stamp for _, stamp, _ in run.published}
        expected = len(stamps) * len(outputs)
        last_change, last_count = time.monotonic(), 0
        while time.monotonic() - last_change < quiet_s:
            count = sum(len(stamps & set(arrived)) for arrived in run.arrivals.values())
            if count >= expected:
                break
            if count != last_count:
                last_change, last_count = time.monotonic(), count
            client.executor.spin_once(timeout_sec=0.02)
            sample()
        run.seconds = time.monotonic() - start
        sample()
        try:  # a status that accounts for every frame the node received
            client.diagnostics_where(settled, timeout=quiet_s + 10.0)
        except TimeoutError:
            pass
    finally:
        client.listeners.remove(on_arrival)
        handler.finish()
    run.diagnostics = client.diagnostics[first:]
    return run


class _OutputHandler:
    """Calls ``on_output(*item)`` for every ``put`` item, in order, on its own low-priority thread (Linux: nice
    ``WORKER_NICENESS``); ``finish`` waits for the last and re-raises the first exception one raised (later items are
    then skipped). No ``on_output``: does nothing."""

    def __init__(self, on_output: Callable[[int, str, object], None] | None):
        self._on_output = on_output
        self._items: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = None
        if on_output is not None:
            self._thread = threading.Thread(target=self._work, name="replay_outputs", daemon=True)
            self._thread.start()

    def put(self, index: int, output: str, message: object) -> None:
        if self._thread is not None:
            self._items.put((index, output, message))

    def _work(self) -> None:
        try:  # idle CPU only: on a small machine scoring beside the node would slow the node being measured
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
        except (AttributeError, OSError):  # not Linux: same priority as the rest
            pass
        while (item := self._items.get()) is not None:
            if self._error is None:
                try:
                    self._on_output(*item)
                except BaseException as error:  # handed to the caller by finish()
                    self._error = error

    def finish(self) -> None:
        if self._thread is None:
            return
        self._items.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
