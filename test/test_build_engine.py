"""``seg-build-engine`` as a user runs it: the installed console script on the shipped params files (ONNX Runtime
here: nothing to cache, the model is loaded and checked) and on a missing model."""

import subprocess
import sys
from pathlib import Path

from seg_perception.pipeline.config import read_params_files

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("seg-build-engine")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=300, cwd=REPO)


def test_the_shipped_semantic_config_loads_and_needs_nothing_built():
    run = _run("--config", "config/semantic.yaml", "-p", "threads:=1")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [run.stdout.strip()] and "nothing to build" in run.stdout, run.stdout
    assert "bisenetv2_synth.onnx" in run.stdout and "onnxruntime" in run.stdout
    assert "Traceback" not in run.stderr


def test_a_missing_model_exits_2_with_one_line():
    run = _run("--params-file", "config/semantic.yaml", "-p", "model_path:=/no/such.onnx")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == ["seg-build-engine: error: model_path: /no/such.onnx does not exist"], run.stderr


def test_a_bad_parameter_exits_2_naming_it():
    run = _run("--config", "config/semantic.yaml", "-p", "queue_sise:=3")
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "seg-build-engine: error: queue_sise: unknown parameter (did you mean queue_size?)"
    ], run.stderr


def test_params_files_are_read_as_rcl_applies_them(tmp_path):
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text(
        "segmentation_node:\n  ros__parameters: {queue_size: 4}\n"
        "/**:\n  ros__parameters: {queue_size: 3, threads: 2, backend: torch}\n"
        "other_node:\n  ros__parameters: {threads: 7}\n"
    )
    second.write_text("/**:\n  ros__parameters: {backend: onnxruntime}\n")
    values = read_params_files([first, second], {"threads": "1", "input_size": "[128, 256]"})
    assert values == {"queue_size": 4, "threads": 1, "backend": "onnxruntime", "input_size": [128, 256]}
