"""FrameScheduler: newest frame wins per camera, stamps within the slop batch together, take() waits and wakes.

take() waits only for live cameras (a put() less than stale_after ago): where a test needs a camera to be waited
for, that camera first delivers a frame which is taken (``make_live``).

Timing goes through a fake clock; real threads with short Event/join timeouts only where blocking is the point.
"""

from __future__ import annotations

import random
import threading

import pytest

from seg_perception.pipeline.frame_sync import FrameScheduler, FrameStats, PendingFrame

MS = 1_000_000  # ns


class FakeClock:
    """A settable clock; ``polled`` is set once a thread other than the test's own reads it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.polled = threading.Event()

    def __call__(self) -> float:
        if threading.current_thread() is not threading.main_thread():
            self.polled.set()
        return self.now


def check_invariant(scheduler: FrameScheduler) -> FrameStats:
    stats = scheduler.stats()
    pending = 0
    for camera in scheduler.cameras:
        is_pending = scheduler._slots[camera] is not None
        pending += is_pending
        assert stats.received[camera] == stats.dropped[camera] + stats.taken[camera] + is_pending, camera
    assert scheduler.pending() == pending <= scheduler.capacity
    assert stats.max_pending <= scheduler.capacity
    return stats


def make_live(scheduler: FrameScheduler, camera: str, stamp_ns: int = 0) -> None:
    """``camera`` delivers a frame that is taken at once (nothing else pending), so it is live and its slot empty."""
    assert scheduler.pending() == 0
    scheduler.put(camera, stamp_ns, f"{camera} warm-up")
    assert [f.camera for f in scheduler.take(timeout=0)] == [camera]


def start_taker(scheduler: FrameScheduler, timeout: float | None = None) -> tuple[threading.Thread, list]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(scheduler.take(timeout)), daemon=True)
    thread.start()
    return thread, result


def test_newest_frame_wins_and_the_replaced_one_is_returned_and_counted():
    clock = FakeClock()
    scheduler = FrameScheduler(["front"], clock=clock)
    assert scheduler.put("front", 1 * MS, "first") is None
    clock.now = 0.5
    replaced = scheduler.put("front", 2 * MS, "second")
    assert replaced == PendingFrame("front", 1 * MS, "first", 0.0)
    assert scheduler.pending() == 1
    assert scheduler.take(timeout=0) == [PendingFrame("front", 2 * MS, "second", 0.5)]
    assert scheduler.pending() == 0
    stats = check_invariant(scheduler)
    assert (stats.received, stats.dropped, stats.taken) == ({"front": 2}, {"front": 1}, {"front": 1})
    assert stats.batches_by_size == {1: 1}
    assert stats.max_pending == 1


def test_one_camera_never_waits():
    scheduler = FrameScheduler(["front"], sync_timeout=100.0, clock=FakeClock())
    scheduler.put("front", 5, "image")
    assert [frame.payload for frame in scheduler.take(timeout=0)] == ["image"]


def test_invariant_holds_after_a_random_sequence_of_puts_and_takes():
    rng = random.Random(1234)
    clock = FakeClock()
    cameras = ["left", "right", "rear"]
    scheduler = FrameScheduler(cameras, sync_slop=0.01, sync_timeout=0.05, clock=clock)
    last_put: dict[str, int] = {}
    batches = 0
    for step in range(2000):
        clock.now += rng.uniform(0.0, 0.03)
        if rng.random() < 0.6:
            camera = rng.choice(cameras)
            stamp = round(clock.now * 1e9) + rng.randint(-20 * MS, 20 * MS)
            scheduler.put(camera, stamp, step)
            last_put[camera] = step
        else:
            batch = scheduler.take(timeout=0)
            if batch:
                batches += 1
                order = [cameras.index(frame.camera) for frame in batch]
                assert order == sorted(set(order))  # distinct cameras, in the order of `cameras`
                assert all(frame.payload == last_put[frame.camera] for frame in batch)  # each camera's newest
                stamps = [frame.stamp_ns for frame in batch]
                assert max(stamps) - min(stamps) <= 10 * MS
        check_invariant(scheduler)
    stats = scheduler.stats()
    assert sum(stats.batches_by_size.values()) == batches > 100
    assert sum(size * count for size, count in stats.batches_by_size.items()) == sum(stats.taken.values())
    assert sum(stats.dropped.values()) > 0
    assert stats.max_pending == scheduler.capacity == 3


def test_stamps_within_the_slop_come_out_as_one_batch_in_camera_order():
    scheduler = FrameScheduler(["left", "right"], sync_slop=0.01, clock=FakeClock())
    scheduler.put("right", 100 * MS, "r")
    scheduler.put("left", 110 * MS, "l")  # exactly the slop apart: still one batch
    assert [(f.camera, f.payload) for f in scheduler.take(timeout=0)] == [("left", "l"), ("right", "r")]
    assert scheduler.pending() == 0
    assert scheduler.stats().batches_by_size == {1: 0, 2: 1}


def test_stamps_outside_the_slop_come_out_as_two_batches_in_stamp_order():
    clock = FakeClock()
    scheduler = FrameScheduler(["left", "right"], sync_slop=0.01, sync_timeout=0.05, clock=clock)
    scheduler.put("left", 110 * MS + 1, "l")
    scheduler.put("right", 100 * MS, "r")
    clock.now = 0.05  # once "right" is taken, "left" has no partner pending: let its sync wait be over
    assert [f.payload for f in scheduler.take(timeout=0)] == ["r"]
    assert [f.payload for f in scheduler.take(timeout=0)] == ["l"]
    assert scheduler.take(timeout=0) == []
    assert scheduler.stats().batches_by_size == {1: 2, 2: 0}


def test_equal_stamps_anchor_on_the_first_camera():
    scheduler = FrameScheduler(["a", "b", "c"], sync_slop=0.0, sync_timeout=0.0, clock=FakeClock())
    scheduler.put("c", 7, "c")
    scheduler.put("b", 7, "b")
    scheduler.put("a", 9, "a")
    assert [f.camera for f in scheduler.take(timeout=0)] == ["b", "c"]
    assert [f.camera for f in scheduler.take(timeout=0)] == ["a"]


def test_take_waits_for_a_missing_camera_until_its_frame_arrives():
    clock = FakeClock()  # frozen: the sync deadline never passes on its own
    scheduler = FrameScheduler(["left", "right"], sync_slop=0.01, sync_timeout=100.0, clock=clock)
    make_live(scheduler, "right")
    scheduler.put("left", 100 * MS, "l")
    taker, result = start_taker(scheduler, timeout=2.0)
    assert clock.polled.wait(2.0)  # the taker evaluated under the lock; put() below waits until it sleeps
    scheduler.put("right", 105 * MS, "r")
    taker.join(2.0)
    assert not taker.is_alive()
    assert [[f.payload for f in batch] for batch in result] == [["l", "r"]]


def test_take_holds_a_frame_back_until_the_sync_deadline():
    clock = FakeClock()
    scheduler = FrameScheduler(["left", "right"], sync_timeout=0.05, clock=clock)
    make_live(scheduler, "right")
    scheduler.put("left", 100 * MS, "l")
    clock.now = 0.049
    assert scheduler.take(timeout=0) == []  # still waiting for "right"
    assert scheduler.pending() == 1
    clock.now = 0.05  # deadline reached: the single frame comes out at once
    assert [f.payload for f in scheduler.take(timeout=0)] == ["l"]
    check_invariant(scheduler)


def test_replacing_the_anchor_frame_does_not_restart_the_sync_wait():
    """A camera that stops publishing must not starve the others when they publish faster than sync_timeout."""
    clock = FakeClock()
    scheduler = FrameScheduler(["left", "right"], sync_timeout=0.05, stale_after=1.0, clock=clock)
    make_live(scheduler, "right")  # at 0.0, then silent, but live until 1.0
    for step in range(4):  # 30 Hz
        clock.now = step * 0.033
        scheduler.put("left", step * 33 * MS, step)
    assert [f.payload for f in scheduler.take(timeout=0)] == [3]  # slot filled at 0.0, deadline 0.05 passed
    clock.now = 0.12
    scheduler.put("left", 120 * MS, 4)
    assert scheduler.take(timeout=0) == []  # a fresh slot waits again, from its own arrival
    clock.now = 0.17
    assert [f.payload for f in scheduler.take(timeout=0)] == [4]


def test_a_camera_with_a_frame_outside_the_slop_is_not_waited_for():
    scheduler = FrameScheduler(["left", "right"], sync_slop=0.01, sync_timeout=100.0, clock=FakeClock())
    scheduler.put("left", 100 * MS, "l")
    scheduler.put("right", 200 * MS, "r")
    assert [f.payload for f in scheduler.take(timeout=0)] == ["l"]
    # now "right" is the anchor and "left" has no frame: wait for it
    assert scheduler.take(timeout=0) == []
    scheduler.put("left", 195 * MS, "l2")
    assert [f.payload for f in scheduler.take(timeout=0)] == ["l2", "r"]


def test_a_missing_camera_is_still_waited_for_beside_one_outside_the_slop():
    scheduler = FrameScheduler(["a", "b", "c"], sync_slop=0.01, sync_timeout=100.0, clock=FakeClock())
    make_live(scheduler, "c")
    scheduler.put("a", 100 * MS, "a")
    scheduler.put("b", 300 * MS, "b")
    assert scheduler.take(timeout=0) == []
    scheduler.put("c", 101 * MS, "c")
    assert [f.payload for f in scheduler.take(timeout=0)] == ["a", "c"]


def test_take_returns_nothing_on_timeout():
    scheduler = FrameScheduler(["left", "right"])
    assert scheduler.take(timeout=0) == []
    assert scheduler.take(timeout=0.05) == []
    with pytest.raises(ValueError, match="timeout"):
        scheduler.take(timeout=-1)


def test_close_wakes_a_take_waiting_for_a_frame():
    scheduler = FrameScheduler(["front"])
    taker, result = start_taker(scheduler)  # no timeout: only close() can end it
    scheduler.close()
    taker.join(2.0)
    assert not taker.is_alive()
    assert result == [[]]


def test_close_wakes_a_take_waiting_for_a_missing_camera():
    clock = FakeClock()
    scheduler = FrameScheduler(["left", "right"], sync_timeout=100.0, clock=clock)
    make_live(scheduler, "right")
    scheduler.put("left", 1, "l")
    taker, result = start_taker(scheduler)
    assert clock.polled.wait(2.0)
    scheduler.close()
    scheduler.close()  # idempotent
    taker.join(2.0)
    assert not taker.is_alive()
    assert result == [[]]
    assert scheduler.closed


def test_put_after_close_returns_the_frame_and_counts_it_dropped():
    clock = FakeClock()
    scheduler = FrameScheduler(["front"], clock=clock)
    scheduler.put("front", 1, "kept")
    assert not scheduler.closed
    scheduler.close()
    refused = scheduler.put("front", 2, "late")
    assert refused == PendingFrame("front", 2, "late", 0.0)
    assert scheduler.pending() == 1
    assert scheduler.take(timeout=0) == []
    stats = check_invariant(scheduler)
    assert (stats.received, stats.dropped, stats.taken) == ({"front": 2}, {"front": 1}, {"front": 0})


def test_unknown_camera_raises_key_error_naming_the_known_ones():
    scheduler = FrameScheduler(["left", ""])
    with pytest.raises(KeyError, match=r"'rear'.*\['left', ''\]"):
        scheduler.put("rear", 1, None)
    assert scheduler.put("", 1, None) is None  # the empty name is a camera like any other
    assert scheduler.stats().received == {"left": 0, "": 1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cameras": []}, "at least one camera"),
        ({"cameras": ["a", "b", "a"]}, r"unique.*\['a'\]"),
        ({"cameras": "front"}, "single string"),
        ({"cameras": ["a", 1]}, "strings"),
        ({"cameras": ["a"], "sync_slop": -0.001}, "sync_slop"),
        ({"cameras": ["a"], "sync_slop": float("nan")}, "sync_slop"),
        ({"cameras": ["a"], "sync_slop": "x"}, "sync_slop"),
        ({"cameras": ["a"], "sync_timeout": -1}, "sync_timeout"),
        ({"cameras": ["a"], "sync_timeout": float("inf")}, "sync_timeout"),
        ({"cameras": ["a"], "stale_after": 0}, r"stale_after.*> 0"),
        ({"cameras": ["a"], "stale_after": -1.0}, "stale_after"),
        ({"cameras": ["a"], "stale_after": float("nan")}, "stale_after"),
        ({"cameras": ["a"], "stale_after": float("inf")}, "stale_after"),
        ({"cameras": ["a"], "stale_after": "x"}, "stale_after"),
    ],
)
def test_bad_constructor_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FrameScheduler(**kwargs)


def test_zero_slop_and_timeout_are_valid():
    scheduler = FrameScheduler([""], sync_slop=0, sync_timeout=0)
    assert scheduler.capacity == 1


@pytest.mark.parametrize(
    ("sync_timeout", "stale_after", "expected"),
    [(0.05, None, 1.0), (0.0, None, 1.0), (0.5, None, 5.0), (0.05, 0.2, 0.2), (100.0, 3, 3.0)],
)
def test_stale_after_defaults_to_ten_sync_timeouts_but_at_least_one_second(sync_timeout, stale_after, expected):
    scheduler = FrameScheduler(["a"], sync_timeout=sync_timeout, stale_after=stale_after)
    assert scheduler.stale_after == pytest.approx(expected)
    assert isinstance(scheduler.stale_after, float)


def test_a_camera_that_never_delivered_is_not_waited_for():
    clock = FakeClock()  # frozen: the sync deadline never passes
    scheduler = FrameScheduler(["left", "right"], sync_timeout=100.0, clock=clock)
    scheduler.put("left", 100 * MS, "l")
    assert [f.payload for f in scheduler.take(timeout=0)] == ["l"]
    scheduler.put("left", 133 * MS, "l2")
    assert [f.payload for f in scheduler.take(timeout=0)] == ["l2"]
    stats = check_invariant(scheduler)
    assert stats.received == {"left": 2, "right": 0}
    assert stats.dropped == {"left": 0, "right": 0}


def test_a_camera_silent_for_stale_after_is_not_waited_for():
    """The review scenario: "right" stops at 30 fps; once it is stale, every "left" frame comes out at once."""
    clock = FakeClock()
    scheduler = FrameScheduler(["left", "right"], sync_timeout=0.05, stale_after=1.0, clock=clock)
    make_live(scheduler, "right")  # last put() at 0.0
    clock.now = 0.9
    scheduler.put("left", 900 * MS, "held")
    assert scheduler.take(timeout=0) == []  # "right" still live: held for the sync deadline
    clock.now = 0.96  # past the deadline (0.9 + 0.05)
    assert [f.payload for f in scheduler.take(timeout=0)] == ["held"]
    for step in range(30):  # from 1.0 on "right" is stale: no waiting, no drops
        clock.now = 1.0 + step / 30
        scheduler.put("left", round(clock.now * 1e9), step)
        assert [f.payload for f in scheduler.take(timeout=0)] == [step]
    stats = check_invariant(scheduler)
    assert stats.dropped == {"left": 0, "right": 0}
    assert stats.taken == {"left": 31, "right": 1}
    assert stats.batches_by_size == {1: 32, 2: 0}


def test_a_stale_camera_is_waited_for_again_right_after_it_delivers():
    clock = FakeClock()
    scheduler = FrameScheduler(["left", "right"], sync_slop=0.01, sync_timeout=0.05, stale_after=1.0, clock=clock)
    make_live(scheduler, "right")
    clock.now = 5.0  # "right" silent for 5 s: stale
    scheduler.put("left", 5000 * MS, "l1")
    assert [f.payload for f in scheduler.take(timeout=0)] == ["l1"]  # not waited for
    scheduler.put("right", 5010 * MS, "r1")  # "right" is back
    assert scheduler.take(timeout=0) == []  # "left" is live: "r1" waits for it
    scheduler.put("left", 5011 * MS, "l2")
    assert [f.payload for f in scheduler.take(timeout=0)] == ["l2", "r1"]  # batched together again
    clock.now = 5.02
    scheduler.put("left", 5043 * MS, "l3")
    assert scheduler.take(timeout=0) == []  # waits for "right" again, live since its put() at 5.0
    scheduler.put("right", 5044 * MS, "r2")
    assert [f.payload for f in scheduler.take(timeout=0)] == ["l3", "r2"]
    assert scheduler.stats().batches_by_size == {1: 2, 2: 2}


def test_a_wait_ends_when_the_missing_camera_goes_stale_before_the_sync_deadline():
    clock = FakeClock()
    scheduler = FrameScheduler(["left", "right"], sync_timeout=100.0, stale_after=0.5, clock=clock)
    make_live(scheduler, "right")  # live until 0.5
    clock.now = 0.2
    scheduler.put("left", 200 * MS, "l")
    assert scheduler._try_batch() == ([], pytest.approx(0.3))  # sleeps until "right" goes stale, not 100 s
    clock.now = 0.499
    assert scheduler.take(timeout=0) == []
    clock.now = 0.5
    assert [f.payload for f in scheduler.take(timeout=0)] == ["l"]


def test_take_wakes_by_itself_when_the_missing_camera_goes_stale():
    scheduler = FrameScheduler(["left", "right"], sync_timeout=100.0, stale_after=0.2)  # real clock
    make_live(scheduler, "right")
    scheduler.put("left", 1, "l")
    taker, result = start_taker(scheduler, timeout=5.0)
    taker.join(5.0)
    assert not taker.is_alive()
    assert [[f.payload for f in batch] for batch in result] == [["l"]]


def test_put_does_not_block_while_take_waits():
    clock = FakeClock()
    scheduler = FrameScheduler(["left", "right"], sync_timeout=100.0, clock=clock)
    make_live(scheduler, "right")
    scheduler.put("left", 1, "l1")
    taker, result = start_taker(scheduler)
    assert clock.polled.wait(2.0)
    put_done = threading.Event()
    replaced: list = []

    def putter():
        replaced.append(scheduler.put("left", 2, "l2"))  # replaces, so the taker keeps waiting for "right"
        put_done.set()

    threading.Thread(target=putter, daemon=True).start()
    assert put_done.wait(0.5)
    assert [f.payload for f in replaced] == ["l1"]
    assert taker.is_alive()
    scheduler.close()
    taker.join(2.0)
    assert not taker.is_alive()
    assert result == [[]]
