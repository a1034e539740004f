"""Thread-safe counters and latency windows of a running segmentation pipeline (no rclpy).

The node records events from its callback and worker threads; every diagnostics period it takes a
``report()``: totals since start plus rates and percentiles over the window since the last report, and
percentiles since start from fixed histograms (memory stays flat however long the node runs).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (linear interpolation) of ``values``, None when empty."""
    return float(np.percentile(values, q)) if values else None


class TimingHistogram:
    """Since-start distribution of a timing (ms) in fixed bins: ``bin_ms`` wide from 0 to ``max_ms``, plus one
    overflow bin (>= ``max_ms``, NaN); negative values count in the first bin. Memory: ``counts``, (bins + 1,) int64."""

    def __init__(self, bin_ms: float = 0.1, max_ms: float = 10_000.0) -> None:
        self.bin_ms = bin_ms
        self.max_ms = max_ms
        self.bins = round(max_ms / bin_ms)
        self._per_ms = 1.0 / bin_ms
        self.counts = np.zeros(self.bins + 1, np.int64)
        self.total = 0

    def add(self, ms: float) -> None:
        position = ms * self._per_ms
        self.counts[max(int(position), 0) if position < self.bins else self.bins] += 1  # NaN, inf: overflow
        self.total += 1

    def percentiles(self, *qs: float) -> list[float | None]:
        """The ``q``-th percentiles (None when empty): the value at rank ``q / 100 * total`` counted through the
        bins, linear within its bin (its samples spread evenly over its width); the overflow bin reads as
        ``max_ms``."""
        if not self.total:
            return [None] * len(qs)
        cumulative = np.cumsum(self.counts)
        values = []
        for q in qs:
            rank = q / 100 * self.total
            index = int(np.searchsorted(cumulative, rank, side="left" if rank > 0 else "right"))
            if index >= self.bins:
                values.append(self.max_ms)
                continue
            before = int(cumulative[index] - self.counts[index])
            values.append((index + (rank - before) / int(self.counts[index])) * self.bin_ms)
        return values


class PublisherSequences:
    """Gaps in each publisher's publication sequence numbers: the messages it sent, after the first one seen here,
    that never reached the subscription callback (overwritten in the input history, or lost by the middleware).

    Messages sent before the first one seen (before this node subscribed) are not counted. Called from the
    subscription callbacks of one executor thread.
    """

    def __init__(self) -> None:
        self._last: dict[bytes, int] = {}

    def skipped(self, publisher: bytes, sequence: int) -> int:
        """Messages of ``publisher`` skipped before ``sequence`` (0 for its first one, a repeat or a late one)."""
        last = self._last.get(publisher)
        if last is None or sequence > last:
            self._last[publisher] = sequence
        return 0 if last is None else max(sequence - last - 1, 0)


class PipelineStats:
    """Frame accounting: every received frame ends as published, dropped (newest-wins), bad or failed; an output
    of a published frame that could not be built is counted per output.

    ``clock``: seconds (monotonic) for the window rates.
    """

    STAGES = ("preprocess", "infer", "postprocess", "latency")
    """Timings (ms) every pipeline reports: the three pipeline stages and stamp -> publish latency; per window and
    since start. A task adds its own sub-stages of post-processing (``published(..., stages=)``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.totals: Counter[str] = Counter()
        self.bad_reasons: Counter[str] = Counter()
        self.output_failures: Counter[str] = Counter()
        self.output_messages: Counter[str] = Counter()
        self.batch_sizes: Counter[int] = Counter()
        self.queue_max = 0
        self._window: Counter[str] = Counter()
        self._timings: dict[str, list[float]] = {stage: [] for stage in self.STAGES}
        self.histograms = {stage: TimingHistogram() for stage in self.STAGES}
        self._window_start = clock()

    def count(self, event: str, n: int = 1) -> None:
        """Add ``n`` to counter ``event`` (received, published, dropped, failed, ...)."""
        with self._lock:
            self.totals[event] += n
            self._window[event] += n

    def bad_frame(self, reason: str) -> None:
        """A frame rejected as bad input, for ``reason`` (BadImageError.reason)."""
        with self._lock:
            self.totals["bad"] += 1
            self._window["bad"] += 1
            self.bad_reasons[reason] += 1

    def output_failed(self, output: str) -> None:
        """Output ``output`` (a topic name) of a frame could not be built; the frame's other outputs went out."""
        with self._lock:
            self.output_failures[output] += 1
            self._window["output_failed"] += 1

    def batch(self, size: int, preprocess_ms: float, infer_ms: float) -> None:
        """One model call over ``size`` frames."""
        with self._lock:
            self.batch_sizes[size] += 1
            self._timing("preprocess", preprocess_ms)
            self._timing("infer", infer_ms)

    def published(
        self,
        latency_ms: float,
        postprocess_ms: float,
        stages: dict[str, float] | None = None,
        outputs: Iterable[str] = (),
    ) -> None:
        """One frame's outputs published, ``latency_ms`` after its header stamp; ``stages``: {name: ms} of the
        task's own post-processing steps (e.g. the panoptic fusion), reported like the fixed stages; ``outputs``:
        the topics it was published on (counted per output)."""
        with self._lock:
            self.totals["published"] += 1
            self._window["published"] += 1
            self.output_messages.update(outputs)
            self._timing("latency", latency_ms)
            self._timing("postprocess", postprocess_ms)
            for stage, ms in (stages or {}).items():
                self._timing(stage, ms)

    def _timing(self, stage: str, ms: float) -> None:
        if stage not in self._timings:
            self._timings[stage], self.histograms[stage] = [], TimingHistogram()
        self._timings[stage].append(ms)
        self.histograms[stage].add(ms)

    def queue_depth(self, depth: int) -> None:
        """Observe the inference -> publish queue depth (the maximum is reported)."""
        with self._lock:
            self.queue_max = max(self.queue_max, depth)

    def report(self) -> dict[str, float | int | None]:
        """Totals, bad-frame reasons, batch sizes, window rates (fps_in, fps_out), p50/p99 of each timing over the
        window since the last report (``<stage>_ms_p50``, exact) and since start (``<stage>_ms_p50_total``, from
        its histogram, within 0.1 ms); None without samples. Starts a new window."""
        with self._lock:
            now = self._clock()
            seconds = max(now - self._window_start, 1e-9)
            values: dict[str, float | int | None] = {
                "frames_in": self.totals["received"],
                "frames_out": self.totals["published"],
                "dropped": self.totals["dropped"],
                "bad_frames": self.totals["bad"],
                "failed": self.totals["failed"],
                "fps_in": self._window["received"] / seconds,
                "fps_out": self._window["published"] / seconds,
                "window_dropped": self._window["dropped"],
                "window_bad": self._window["bad"],
                "window_failed": self._window["failed"],
                "window_output_failed": self._window["output_failed"],
                "middleware_lost": self.totals["middleware_lost"],
                "input_skipped": self.totals["input_skipped"],
                "window_lost": self._window["middleware_lost"] + self._window["input_skipped"],
                "queue_max": self.queue_max,
                "batches": sum(self.batch_sizes.values()),
                "batch_size_max": max(self.batch_sizes, default=0),
            }
            values.update({f"bad_{reason}": n for reason, n in sorted(self.bad_reasons.items())})
            values.update({f"failed_{name.replace('/', '_')}": n for name, n in sorted(self.output_failures.items())})
            values.update({f"sent_{name.replace('/', '_')}": n for name, n in sorted(self.output_messages.items())})
            values.update({f"batches_of_{size}": n for size, n in sorted(self.batch_sizes.items())})
            for stage, samples in self._timings.items():
                values[f"{stage}_ms_p50"] = percentile(samples, 50)
                values[f"{stage}_ms_p99"] = percentile(samples, 99)
                p50, p99 = self.histograms[stage].percentiles(50, 99)
                values[f"{stage}_ms_p50_total"], values[f"{stage}_ms_p99_total"] = p50, p99
                samples.clear()
            self._window.clear()
            self._window_start = now
            return values
