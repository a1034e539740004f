"""``seg-demo`` and ``seg-bench-node`` end to end: each runs as its own process and starts ``segmentation_node``
as another (real rclpy on loopback; test/conftest.py sets the loopback-only Fast DDS profile and a random
domain id, which the child processes inherit). No timing assertions: only counts, ranges and consistency."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.data.cityscapes import CityscapesDataset
from seg_perception.pipeline.postprocess import colour_overlay

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
CONFIG = REPO / "config" / "semantic.yaml"
ENV = {**os.environ, "AMENT_PREFIX_PATH": sys.prefix}


def _run(*command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / command[0]), *command[1:]], capture_output=True, text=True, env=ENV, timeout=timeout
    )


def test_demo_runs_the_node_over_a_tiny_drive_and_scores_it(tmp_path):
    # 3 sequences x 2 frames of the model card's val drive (seed 2): mIoU 0.749 offline with ONNX Runtime.
    out = tmp_path / "demo"
    run = _run(
        "seg-demo", "--out", str(out), "--sequences", "3", "--frames-per-sequence", "2", "--params-file", str(CONFIG)
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    text = run.stdout
    assert "all 1.0: yes" in text
    frames = re.search(r"frames: in (\d+) / out (\d+) / dropped (\d+)", text)
    assert frames, text
    published, masks, dropped = map(int, frames.groups())
    assert published == 6 and 0 < masks <= 6 and dropped == published - masks
    assert re.search(r"latency stamp -> mask here: p50 [\d.]+ ms, p99 [\d.]+ ms", text), text
    assert re.search(
        r"node diagnostics since start .*: infer p50 [\d.]+ ms, latency p50 [\d.]+ ms, p99 [\d.]+ ms", text
    ), text
    miou = float(re.search(r"^mIoU (\d\.\d+) over (\d+) masks", text, re.M).group(1))
    assert miou >= 0.7, text
    drivable = float(re.search(r"drivable-area IoU (\d\.\d+)", text).group(1))
    assert 0.9 <= drivable <= 1.0, text
    assert "segmentation_node exit code after SIGINT: 0" in text

    overlays = [Path(line.strip()) for line in text.splitlines() if line.strip().endswith("_overlay.png")]
    assert len(overlays) == 4, text
    frames_by_stem = {frame.sample.stem: frame for frame in CityscapesDataset(out / "cityscapes", "val")}
    for path in overlays:
        assert path.is_file(), path
        written = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert written.shape == (256, 512, 3) and written.dtype == np.uint8
        frame = frames_by_stem[path.name.removesuffix("_overlay.png")]
        # The node's overlay blends the frame with its predicted classes: the same blend with the ground truth
        # matches it wherever the prediction is right (pixel accuracy ~0.97) on labelled pixels. A file written in
        # the wrong channel order matches almost nowhere.
        expected = colour_overlay(frame.image, frame.train_ids, 0.5).astype(int)
        labelled = frame.train_ids != 255
        as_rgb = np.abs(cv2.cvtColor(written, cv2.COLOR_BGR2RGB).astype(int) - expected)[labelled].max(axis=-1)
        assert (as_rgb <= 2).mean() >= 0.85, path


def _bench(*arguments: str) -> dict:
    run = _run("seg-bench-node", "--sizes", "256x512", "--params-file", str(CONFIG), "--json", *arguments)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(run.stdout)  # only JSON on stdout


def _check_common(result: dict, frames: int) -> dict:
    assert result["node_exit_code"] == 0
    assert result["node"]["backend"] in ("onnxruntime", "tensorrt", "torch")
    assert result["node"]["model_input"] == "256x512"
    (entry,) = result["sizes"]
    assert entry["size"] == "256x512"
    assert entry["published"] == frames
    assert 0 < entry["masks"] <= entry["published"]
    assert 0 <= entry["frames_in"] <= entry["published"]
    assert entry["masks"] <= entry["frames_in"] - entry["node_dropped"]
    assert 0.0 <= entry["drop_rate"] <= 1.0
    assert entry["drop_rate"] == pytest.approx(1 - entry["masks"] / entry["published"])
    assert entry["capacity_hz"] > 0 and entry["rate_hz"] > 0
    assert entry["backend_ms"] > 0
    assert entry["e2e_ms_p99"] >= entry["e2e_ms_p50"] >= entry["backend_ms"]
    assert entry["overhead_ms"] == pytest.approx(entry["e2e_ms_p50"] - entry["backend_ms"])
    assert 0 < entry["backend_share"] <= 1
    assert entry["node_latency_ms_p99"] >= entry["node_latency_ms_p50"] >= entry["backend_ms"]
    assert entry["node_exit_code"] == 0 and entry["node_ready_s"] > 0  # a node of its own per size
    return entry


def test_bench_node_json_at_one_small_size():
    result = _bench("--frames", "8", "--warmup", "3")
    entry = _check_common(result, 8)
    assert result["flood"] is False
    assert entry["rate_hz"] == pytest.approx(0.8 * entry["capacity_hz"])
    assert len(entry["warmup_ms"]) == 3


def test_bench_node_flood_sheds_frames_and_reports_memory():
    result = _bench("--flood", "--frames", "30", "--warmup", "3")
    entry = _check_common(result, 30)
    assert result["flood"] is True
    assert entry["rate_hz"] == pytest.approx(2.0 * entry["capacity_hz"])
    assert entry["node_dropped"] > 0 or entry["published"] > entry["frames_in"]  # something was shed
    assert entry["latency_bound_ms"] > entry["backend_ms"]
    assert entry["p50_within_bound"] in (True, False) and entry["p99_within_bound"] in (True, False)
    assert entry["rss_samples"] >= 1
    assert 0 < entry["rss_mb_first"] <= entry["rss_mb_max"] and 0 < entry["rss_mb_last"] <= entry["rss_mb_max"]
    assert isinstance(entry["rss_mb_growth"], float)


def test_bench_node_rejects_bad_arguments():
    run = _run("seg-bench-node", "--sizes", "12x", "--json")
    assert run.returncode == 2 and "seg-bench-node: error:" in run.stderr and run.stdout == ""
    run = _run("seg-bench-node", "--rate", "5", "--flood")
    assert run.returncode == 2 and "not allowed with" in run.stderr
