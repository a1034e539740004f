"""Frame intake of the segmentation node: newest frame wins per camera, matching stamps batch together.

ROS-free and torch-free (stdlib only). Subscription callbacks call ``FrameScheduler.put()`` (never waits on
the worker: one lock held for microseconds); one inference worker calls ``take()`` and gets every camera's
frame whose stamp matches within ``sync_slop`` as one batch, i.e. one model call for all cameras.

Each camera has a slot of one pending frame; a new frame replaces the pending one, which is dropped and
counted. So the queue depth is bounded by the number of cameras and a slow model never builds up latency.
For every camera at any time: received == dropped + taken + (1 if a frame is pending else 0).

``take()`` waits (at most ``sync_timeout``) only for *live* cameras: those whose last ``put()`` lies less than
``stale_after`` seconds back. A camera that never delivered a frame, or went silent for ``stale_after`` or
longer (unplugged, driver crashed), is not waited for, so the live cameras' frames come out at once instead of
each being held for ``sync_timeout`` (which at 30 fps would drop about every other frame). Its frames are
batched again as soon as it delivers again: from that ``put()`` on it is live.
"""

from __future__ import annotations

import math
import operator
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PendingFrame:
    """One camera frame waiting in (or refused by) a FrameScheduler."""

    camera: str
    """One of the scheduler's cameras."""
    stamp_ns: int
    """Header stamp in nanoseconds."""
    payload: object
    """Whatever the caller passed (the node passes the decoded image and its header)."""
    arrival: float
    """Scheduler clock time of ``put()``, in seconds."""


@dataclass(frozen=True)
class FrameStats:
    """A snapshot of a FrameScheduler's counters; every per-camera dict has one key per camera."""

    received: dict[str, int]
    """``put()`` calls per camera."""
    dropped: dict[str, int]
    """Frames replaced by a newer one, or refused after ``close()``, per camera."""
    taken: dict[str, int]
    """Frames handed out by ``take()`` per camera."""
    batches_by_size: dict[int, int]
    """Batch size (1..number of cameras) -> number of batches ``take()`` returned."""
    max_pending: int
    """The largest ``pending()`` seen after a ``put()``; never above the number of cameras."""


class FrameScheduler:
    """Newest-wins slots of one frame per camera; ``take()`` returns the frames whose stamps match as one batch.

    Thread-safe: any number of threads may ``put()``, one worker thread is meant to ``take()``.
    ``sync_slop`` (s): the largest stamp difference of frames batched together. ``sync_timeout`` (s): how long
    ``take()`` holds a pending frame back waiting for a live camera that has no frame yet. ``stale_after`` (s,
    > 0; None: ``max(1.0, 10 * sync_timeout)``): a camera is live while its last ``put()`` is less than this
    long ago; cameras that are not live (never delivered, or silent for ``stale_after`` or longer) are not
    waited for. ``clock`` (s): the time source of arrivals, ``sync_timeout`` and ``stale_after``, injectable
    for tests.
    """

    def __init__(
        self,
        cameras: Sequence[str],
        sync_slop: float = 0.01,
        sync_timeout: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        stale_after: float | None = None,
    ) -> None:
        if isinstance(cameras, (str, bytes)):
            raise ValueError(f"cameras must be a sequence of camera names, not the single string {cameras!r}")
        cameras = tuple(cameras)
        if not cameras:
            raise ValueError("cameras must name at least one camera")
        for camera in cameras:
            if not isinstance(camera, str):
                raise ValueError(f"camera names must be strings, got {camera!r}")
        duplicates = sorted({camera for camera in cameras if cameras.count(camera) > 1})
        if duplicates:
            raise ValueError(f"camera names must be unique, repeated: {duplicates}")
        self.sync_slop = _seconds("sync_slop", sync_slop)
        self.sync_timeout = _seconds("sync_timeout", sync_timeout)
        self.stale_after: float = (
            max(1.0, 10 * self.sync_timeout)
            if stale_after is None
            else _seconds("stale_after", stale_after, positive=True)
        )
        """Seconds of silence after its last ``put()`` from which on a camera is not waited for."""
        self.cameras: tuple[str, ...] = cameras
        self.capacity: int = len(cameras)
        """The bound of ``pending()``: one slot per camera."""
        self._slop_ns = round(self.sync_slop * 1e9)
        self._clock = clock
        self._cond = threading.Condition()
        self._closed = False
        self._slots: dict[str, PendingFrame | None] = dict.fromkeys(cameras)
        self._filled_since: dict[str, float] = dict.fromkeys(cameras, 0.0)
        self._last_put: dict[str, float | None] = dict.fromkeys(cameras)
        self._pending = 0
        self._received = dict.fromkeys(cameras, 0)
        self._dropped = dict.fromkeys(cameras, 0)
        self._taken = dict.fromkeys(cameras, 0)
        self._batches_by_size = dict.fromkeys(range(1, len(cameras) + 1), 0)
        self._max_pending = 0

    def put(self, camera: str, stamp_ns: int, payload: object) -> PendingFrame | None:
        """Store a frame as ``camera``'s pending frame; returns the frame it replaced (dropped) or None.

        Never waits on the worker. After ``close()`` the frame is not stored: it is returned itself and counted
        as dropped. KeyError naming the known cameras for an unknown ``camera``.
        """
        stamp_ns = operator.index(stamp_ns)
        with self._cond:
            if camera not in self._slots:
                raise KeyError(f"unknown camera {camera!r}; known cameras: {list(self.cameras)}")
            frame = PendingFrame(camera, stamp_ns, payload, self._clock())
            self._received[camera] += 1
            self._last_put[camera] = frame.arrival
            if self._closed:
                self._dropped[camera] += 1
                return frame
            replaced = self._slots[camera]
            self._slots[camera] = frame
            if replaced is None:
                self._pending += 1
                self._filled_since[camera] = frame.arrival
                self._max_pending = max(self._max_pending, self._pending)
            else:
                self._dropped[camera] += 1
            self._cond.notify_all()
            return replaced

    def take(self, timeout: float | None = None) -> list[PendingFrame]:
        """The next batch: frames of distinct cameras in the order of ``cameras``; [] on timeout or close.

        Blocks until a batch is ready, ``timeout`` seconds of real time pass (None: no limit, 0: just look)
        or ``close()`` is called. The anchor is the pending frame with the smallest stamp (ties: order of
        ``cameras``); the batch is the anchor plus every other camera's pending frame within ``sync_slop`` of
        it. While some live camera (last ``put()`` less than ``stale_after`` ago) has no pending frame at all,
        the batch is held back until such a frame arrives, ``sync_timeout`` after the anchor's slot was filled,
        or every such camera has gone stale, whichever comes first. A camera whose pending frame lies outside
        the slop, one that never delivered a frame and one silent for ``stale_after`` or longer are not waited
        for. Replacing the anchor's frame does not restart that wait, so a camera that stops publishing delays
        the others by at most ``sync_timeout`` per frame, and not at all once it is ``stale_after`` silent.
        Taken frames leave their slots.
        """
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                batch, wait = self._try_batch()
                if batch:
                    return batch
                if end is not None:
                    left = end - time.monotonic()
                    if left <= 0:
                        return []
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)
            return []

    def close(self) -> None:
        """Wake every waiting ``take()`` (it returns []) and refuse further frames; idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def pending(self) -> int:
        """Number of frames waiting (0..capacity): the queue depth."""
        with self._cond:
            return self._pending

    def stats(self) -> FrameStats:
        """A consistent copy of the counters."""
        with self._cond:
            return FrameStats(
                received=dict(self._received),
                dropped=dict(self._dropped),
                taken=dict(self._taken),
                batches_by_size=dict(self._batches_by_size),
                max_pending=self._max_pending,
            )

    def _try_batch(self) -> tuple[list[PendingFrame], float | None]:
        """With the lock held: (the batch, removed from the slots, None) when one is ready, else ([], seconds
        to wait for the sync deadline, or None to wait for a frame)."""
        now = self._clock()
        anchor = None
        stale_at = None  # while a live camera has no pending frame: when the last of them goes stale
        for camera, frame in self._slots.items():
            if frame is None:
                last_put = self._last_put[camera]
                if last_put is not None and now < last_put + self.stale_after:  # live: wait for it
                    until = last_put + self.stale_after
                    stale_at = until if stale_at is None else max(stale_at, until)
            elif anchor is None or frame.stamp_ns < anchor.stamp_ns:
                anchor = frame
        if anchor is None:
            return [], None
        if stale_at is not None:
            left = min(self._filled_since[anchor.camera] + self.sync_timeout, stale_at) - now
            if left > 0:
                return [], left
        batch = [
            frame
            for frame in self._slots.values()
            if frame is not None and abs(frame.stamp_ns - anchor.stamp_ns) <= self._slop_ns
        ]
        for frame in batch:
            self._slots[frame.camera] = None
            self._taken[frame.camera] += 1
        self._pending -= len(batch)
        self._batches_by_size[len(batch)] += 1
        return batch, None


def _seconds(name: str, value: float, *, positive: bool = False) -> float:
    """``value`` as a finite float >= 0 (> 0 if ``positive``); ValueError naming ``name`` otherwise."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None
    if not (math.isfinite(seconds) and (seconds > 0 if positive else seconds >= 0)):
        raise ValueError(f"{name} must be a finite number of seconds {'>' if positive else '>='} 0, got {value!r}")
    return seconds
