"""Experiment behind ``--settle`` of ``seg-bench-node --compare-plain`` (README, Performance): how much slower one
inference of the shipped INT8 BiSeNetV2 runs after the CPU sat idle for a while.

ONNX Runtime (2 threads, no spin-waiting, as segmentation_node runs it), one fixed (1, 3, 256, 512) input; for each
idle gap, 25 runs each after ``time.sleep(gap)`` and the median ms of the last 22; the gap 0 row is repeated at the
end to show the machine did not drift. On a machine whose idle cores slow down (power states, a hypervisor
descheduling idle vCPUs), every stage of a frame that follows an idle spell is slower than in a stream. Run from the
repository root:

    PYTHONPATH=. python docs/experiments/idle_slowdown.py
"""

from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort

MODEL = "models/bisenetv2_synth.int8.onnx"
GAPS_S = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.0)
RUNS, SKIP = 25, 3


def main() -> None:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(MODEL, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).random((1, 3, 256, 512), np.float32)}
    print(f"{MODEL}, 2 threads, no spinning: median ms of one inference after an idle gap")
    for gap in GAPS_S:
        times = []
        for _ in range(RUNS):
            if gap:
                time.sleep(gap)
            start = time.perf_counter()
            session.run(None, feed)
            times.append((time.perf_counter() - start) * 1e3)
        print(f"idle {gap * 1e3:5.0f} ms: {np.median(times[SKIP:]):5.1f} ms")


if __name__ == "__main__":
    main()
