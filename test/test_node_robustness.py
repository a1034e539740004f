"""segmentation_node against what an outside tester throws at it: start-up faults (params files rcl cannot parse,
unknown or mistyped parameters, models that do not match their sidecar, signals while loading), one output of a
frame failing, tiny frames, a second node of the same name, frames as large as the node accepts, and frames the
middleware never delivers. The node runs as its own process from its console script (what ``ros2 launch``
does) and this process talks to it through real rclpy on loopback (test/conftest.py)."""

import array
import json
import signal
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image

from seg_perception.pipeline.config import DELIVERED_IMAGE_PIXELS
from seg_perception.ros.camera_topics import MESSAGE_INFO_CALLBACKS
from seg_perception.ros.conversions import mono8_array
from seg_perception.ros.harness import NodeClient, NodeProcess, image_msg, publish_now, settled

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "semantic.yaml"
MODEL = REPO / "models" / "bisenetv2_synth.onnx"
SIDECAR = json.loads(MODEL.with_name(MODEL.name + ".json").read_text())
OUTPUTS = ("semantic/mask", "drivable_area", "overlay")
ERROR = "segmentation_node: error: "


# -- start-up: one line, exit 2 -------------------------------------------------------------------------------


def _params_file(folder: Path, text: str) -> list[Path]:
    path = folder / "params.yaml"
    path.write_text(text)
    return [path]


def _model_with_sidecar(folder: Path, **changes) -> dict[str, str]:
    """-p model_path:= a copy of the shipped model whose sidecar has ``changes``."""
    model = folder / "model.onnx"
    model.write_bytes(MODEL.read_bytes())
    model.with_name("model.onnx.json").write_text(json.dumps({**SIDECAR, **changes}))
    return {"model_path": str(model)}


def _with_config(params: dict[str, str]):
    return lambda tmp: ([CONFIG], params)


TWELVE_CLASSES = {"num_classes": 12, "class_names": [f"class_{i}" for i in range(12)]}


def _int8_params(tmp: Path, folder: Path) -> dict[str, str]:
    """INT8 on the CPU calibrated on ``folder``, cached in ``tmp`` (the shipped INT8 model is not used)."""
    return {"device": "cpu", "precision": "int8", "calibration_images": str(folder), "engine_cache_dir": str(tmp)}


def _corrupt_frames(tmp: Path) -> Path:
    folder = tmp / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "good.png"), np.zeros((64, 128, 3), np.uint8))
    (folder / "broken.png").write_bytes(np.random.default_rng(0).bytes(2048))  # no image codec recognises it
    return folder


STARTUP_FAULTS = {
    # name: (tmp_path -> (params files, -p overrides), expected message)
    "yaml_syntax": (
        lambda tmp: (_params_file(tmp, "/**:\n  ros__parameters:\n    queue_size: [1,\n"), {}),
        "Couldn't parse params file",
    ),
    "tab_indent": (
        lambda tmp: (_params_file(tmp, "/**:\n\tros__parameters:\n    queue_size: 2\n"), {}),
        "Couldn't parse params file",
    ),
    "missing_params_file": (lambda tmp: ([tmp / "absent.yaml"], {}), "Error opening YAML file"),
    "top_level_list": (lambda tmp: (_params_file(tmp, "- a\n- b\n"), {}), "Couldn't parse params file"),
    "unknown_in_params_file": (
        lambda tmp: ([CONFIG, *_params_file(tmp, "/**:\n  ros__parameters:\n    queue_sise: 4\n")], {}),
        "queue_sise: unknown parameter (did you mean queue_size?)",
    ),
    "unknown_by_p": (_with_config({"no_such_param": "1"}), "no_such_param: unknown parameter"),
    "sidecar_input_name": (
        lambda tmp: ([CONFIG], _model_with_sidecar(tmp, input_name="input")),
        "the sidecar names input 'input', the model has input(s) ['image']",
    ),
    "sidecar_output_name": (
        lambda tmp: ([CONFIG], _model_with_sidecar(tmp, output_name="scores")),
        "the sidecar names output 'scores', the model has output(s) ['logits']",
    ),
    "sidecar_class_count": (
        lambda tmp: ([CONFIG], _model_with_sidecar(tmp, **TWELVE_CLASSES)),
        "the model's 'logits' is (1, 19, 256, 512) for one frame, the sidecar says (1, 12, H, W) (12 classes)",
    ),
    "input_size_too_large": (
        _with_config({"input_size": "[100000, 100000]"}),
        "input_size: must be [0, 0] or two integers in 1..8192, got [100000, 100000]",
    ),
    "model_path_directory": (
        lambda tmp: ([CONFIG], {"model_path": str(tmp)}),
        "is a directory, not a model file",
    ),
    "no_cameras": (
        lambda tmp: (_params_file(tmp, "/**:\n  ros__parameters:\n    cameras: []\n"), {}),
        "cameras: must be a list of strings, got no value",
    ),
    "missing_model": (
        _with_config({"model_path": "/nonexistent/model.onnx"}),
        "model_path: /nonexistent/model.onnx does not exist",
    ),
    "bad_choice": (_with_config({"resize_mode": "squash"}), "resize_mode: must be one of resize, letterbox"),
    "integer_for_a_double": (_with_config({"sync_slop": "0"}), "sync_slop"),
    "bad_camera_name": (_with_config({"cameras": "['cam-1']"}), "cameras: ['cam-1'] are not relative ROS namespaces"),
    "missing_calibration_folder": (
        lambda tmp: ([CONFIG], _int8_params(tmp, tmp / "no_frames")),
        "no_frames does not exist",
    ),
    "corrupt_calibration_folder": (
        lambda tmp: ([CONFIG], _int8_params(tmp, _corrupt_frames(tmp))),
        "broken.png: not a readable image",
    ),
    "bad_calibration_method": (_with_config({"calibration_method": "kl"}), "calibration_method: must be one of"),
}


@pytest.mark.parametrize("fault", list(STARTUP_FAULTS))
def test_a_start_up_fault_ends_in_one_error_line_and_exit_code_2(tmp_path, fault):
    setup, message = STARTUP_FAULTS[fault]
    files, params = setup(tmp_path)
    process = NodeProcess(files, params, name="seg_bad_start")
    assert process.wait_exit(timeout=60) == 2, process.output
    errors = [line for line in process.lines if line.startswith(ERROR)]
    assert len(errors) == 1 and message in errors[0], process.output
    assert "Traceback" not in process.output, process.output
    others = [line for line in process.lines if line.strip() and not line.startswith(ERROR)]
    assert all(line.startswith(("[INFO]", "[WARN]")) for line in others), process.output


def test_a_corrupt_model_ends_in_one_error_line(tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    corrupt.with_name("corrupt.onnx.json").write_text(json.dumps(SIDECAR))
    process = NodeProcess(CONFIG, {"model_path": str(corrupt)}, name="seg_bad_start")
    assert process.wait_exit(timeout=60) == 2, process.output
    assert [line for line in process.lines if line.startswith(ERROR) and "corrupt.onnx" in line], process.output


@pytest.mark.parametrize("delay", [0.5, 2.5])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_model_loads_ends_the_node_cleanly(delay, sig):
    # the torch backend takes seconds to import torch and load the checkpoint: the signal lands during start-up
    process = NodeProcess(CONFIG, {"backend": "torch", "precision": "fp32"}, name="seg_signalled")
    time.sleep(delay)  # any moment of start-up will do; the outcome must be the same
    process.process.send_signal(sig)
    assert process.wait_exit(timeout=60) == 0, process.output
    assert "Traceback" not in process.output and ERROR not in process.output, process.output


# -- frames: every output on its own, tiny frames -------------------------------------------------------------


@pytest.fixture(scope="module")
def node():
    with NodeProcess(CONFIG, name="seg_robust") as process:
        process.wait_ready()
        yield process
        assert process.stop() == 0, process.output[-3000:]


@pytest.fixture(scope="module")
def client(node):
    with NodeClient(name="robust_client", outputs=OUTPUTS) as feeder:
        assert feeder.wait_connected(), node.output[-2000:]
        feeder.prime({"": image_msg(np.zeros((64, 128, 3), np.uint8), 0)})
        yield feeder


@pytest.mark.parametrize(("height", "width"), [(1, 1), (1, 7), (7, 1)])
def test_a_tiny_frame_gets_every_output(client, node, height, width):
    image = np.full((height, width, 3), 120, np.uint8)
    stamp = client.publish("", image)
    assert client.spin_until(lambda: all(client.has("", o, stamp) for o in OUTPUTS), 30), node.output[-2000:]
    for output in OUTPUTS:
        msg = client.received[("", output)][stamp]
        assert (msg.height, msg.width) == (height, width), output
    assert mono8_array(client.received[("", "semantic/mask")][stamp]).max() < 19


FAILING_OUTPUT = {
    # output -> the pipeline function that builds it, replaced in the node process by one that raises
    "overlay": "colour_overlay",
    "drivable_area": "drivable_mask",
}


@pytest.mark.parametrize("output", list(FAILING_OUTPUT))
def test_a_failing_output_costs_the_frame_only_that_output(output):
    # fault injection: the real node, started like its console script, with one output's builder raising
    code = (
        "import sys\n"
        "import seg_perception.pipeline.base as base\n"
        "def broken(*args, **kwargs):\n"
        "    raise RuntimeError('injected fault')\n"
        f"base.{FAILING_OUTPUT[output]} = broken\n"
        "from seg_perception.ros.segmentation_node import main\n"
        "sys.exit(main())\n"
    )
    others = [o for o in OUTPUTS if o != output]
    with (
        NodeProcess(CONFIG, name="seg_faulty", namespace="/faulty", command=[sys.executable, "-c", code]) as process,
        NodeClient(name="faulty_client", namespace="/faulty", outputs=OUTPUTS) as client,
    ):
        process.wait_ready()
        assert client.wait_connected(), process.output[-2000:]
        client.prime({"": image_msg(np.zeros((64, 128, 3), np.uint8), 0)})
        stamp = client.publish("", np.full((96, 160, 3), 60, np.uint8))
        assert client.spin_until(lambda: all(client.has("", o, stamp) for o in others), 30), process.output[-2000:]
        assert not client.has("", output, stamp)
        # the primer frame(s) and this one: published, each without the failing output
        status = client.diagnostics_where(lambda s: settled(s) and int(s.get(f"failed_{output}", 0)) >= 2, "seg_faulty")
        assert status["failed"] == "0" and status["frames_out"] == status[f"failed_{output}"]
        assert status["level"] == 1 and "output" in status["message"], status  # WARN
        code = process.stop()
        assert code == 0, process.output[-3000:]
    assert any(f"output {output} failed" in line and "injected fault" in line for line in process.lines)


# -- the ROS graph: two nodes of one name ---------------------------------------------------------------------


def test_two_nodes_of_one_name_warn():
    with (
        NodeProcess(CONFIG, name="seg_twin", namespace="/twins") as first,
        NodeProcess(CONFIG, name="seg_twin", namespace="/twins") as second,
        NodeClient(name="twin_client", outputs=()) as client,
    ):
        first.wait_ready()
        second.wait_ready()
        status = client.diagnostics_where(lambda s: s.get("nodes_with_this_name") == "2", "seg_twin", timeout=30)
        assert status["level"] == 1 and "share this name" in status["message"], status
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            "2 nodes named /twins/seg_twin" in p.output for p in (first, second)
        ):
            time.sleep(0.1)
        for process in (first, second):
            assert "2 nodes named /twins/seg_twin are running" in process.output, process.output[-2000:]
    for process in (first, second):
        assert process.process.returncode == 0


# -- delivery: what the shipped input QoS takes, and what the middleware drops ----------------------------------


def _rgba8_message(height: int, width: int) -> Image:
    msg = Image(height=height, width=width, encoding="rgba8", step=width * 4)
    data = array.array("B")
    data.frombytes(np.random.default_rng(3).integers(0, 256, (height, width, 4), np.uint8).tobytes())
    msg.data = data
    msg.header.frame_id = "camera"
    return msg


def test_frames_as_large_as_the_default_limit_arrive_through_the_shipped_best_effort_input(node):
    # the largest frame the shipped config accepts, in its largest encoding: 2048 x 2048 rgba8 = 16.8 MB
    assert DELIVERED_IMAGE_PIXELS == 2048 * 2048
    msg = _rgba8_message(2048, 2048)
    with NodeClient(name="large_client", outputs=("semantic/mask",), reliable_input=False) as client:
        assert client.wait_connected(), node.output[-2000:]
        client.prime({"": image_msg(np.zeros((64, 128, 3), np.uint8), 0)})
        for _ in range(5):
            stamp = publish_now(client, msg)
            assert client.spin_until(lambda s=stamp: client.has("", "semantic/mask", s), 30), node.output[-2000:]
            assert client.received[("", "semantic/mask")][stamp].width == 2048
        # one pixel column more is beyond what the shipped input delivers reliably: rejected and counted
        before = client.diagnostics_where(settled, "seg_robust")
        publish_now(client, _rgba8_message(2048, 2049))
        after = client.diagnostics_where(lambda s: int(s.get("bad_too_large", 0)) > int(before.get("bad_too_large", 0)))
        assert int(after["frames_out"]) == int(before["frames_out"])


@pytest.mark.skipif(not MESSAGE_INFO_CALLBACKS, reason="rclpy before Jazzy passes no publication sequence numbers")
@pytest.mark.parametrize(("height", "width"), [(256, 512), (1024, 2048)])
def test_frames_the_middleware_never_delivers_are_counted(node, height, width):
    # a burst on the best-effort, depth-1 input: most frames are overwritten in the input history (small frames)
    # or lost by the middleware (large ones); the node counts both from the publisher's sequence numbers
    msg = image_msg(np.random.default_rng(4).integers(0, 256, (height, width, 3), np.uint8), 0)
    with NodeClient(name=f"burst_client_{width}", outputs=("semantic/mask",), reliable_input=False) as client:
        assert client.wait_connected(), node.output[-2000:]
        published = [client.prime({"": msg})]  # the node has seen this publisher's sequence from here on
        before = client.diagnostics_where(settled, "seg_robust")
        published += [publish_now(client, msg) for _ in range(30)]
        client.spin_until(lambda: False, 0.5)
        for _ in range(20):  # a last frame that arrives closes the gap count
            published.append(publish_now(client, msg))
            if client.spin_until(lambda s=published[-1]: client.has("", "semantic/mask", s), 2):
                break
        after = client.diagnostics_where(settled, "seg_robust", timeout=30)

    def delta(key):
        return int(after[key]) - int(before[key])

    assert delta("frames_in") + delta("input_skipped") == len(published) - 1
    assert delta("input_skipped") > 0 and 0 <= delta("middleware_lost") <= delta("input_skipped")
