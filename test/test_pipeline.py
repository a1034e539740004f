"""The ROS-free semantic pipeline: settings, SemanticPipeline with the shipped model, model resolution and loading,
and the statistics of a running pipeline (pre- and post-processing: test_pre_post_processing.py). Expected values
are worked out by hand on tiny arrays or by an independent computation in the test (OpenCV / numpy directly), never
by the code under test.
"""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from seg_perception.backends import create_backend
from seg_perception.data.cityscapes import CityscapesDataset
from seg_perception.data.synthetic import generate_split
from seg_perception.model_info import read_model_info
from seg_perception.pipeline.config import ConfigError, SegmentationConfig, parameter_defaults, parameter_description
from seg_perception.pipeline.loading import open_backend, resolve_model_path
from seg_perception.pipeline.semantic import SemanticPipeline
from seg_perception.pipeline.stats import PipelineStats, TimingHistogram

REPO = Path(__file__).resolve().parents[1]
SHIPPED_ONNX = REPO / "models" / "bisenetv2_synth.onnx"
SHIPPED_CHECKPOINT = REPO / "models" / "bisenetv2_synth.pt"


def _raises_config_error(name: str, **values) -> str:
    """Build a config from ``values``; asserts ConfigError whose message starts with ``name``; returns it."""
    with pytest.raises(ConfigError) as info:
        SegmentationConfig(**values)
    message = str(info.value)
    assert re.match(rf"{re.escape(name)}\b", message), f"message does not start with {name!r}: {message!r}"
    return message


# -- SegmentationConfig ---------------------------------------------------------------------------------------


def test_config_defaults_are_valid():
    config = SegmentationConfig()
    assert config.backend == "auto" and config.input_size == (0, 0) and config.drivable_classes == ("road",)
    assert config.cameras == ("",) and config.drivable_train_ids == (0,)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("backend", "tensorflow"),
        ("precision", "fp64"),
        ("resize_mode", "crop"),
        ("output_resolution", "native"),
        ("input_reliability", "sometimes"),
        ("input_transport", "theora"),
        ("output_reliability", "sometimes"),
        ("device", "gpu"),
        ("input_size", (0, 5)),
        ("input_size", (-1, 2)),
        ("drivable_classes", ("roadd",)),
        ("drivable_classes", ()),
        ("overlay_alpha", 1.5),
        ("overlay_alpha", -0.1),
        ("cameras", ()),
        ("cameras", ("front", "front")),
        ("cameras", ("/abs",)),
        ("cameras", ("front/",)),
        ("cameras", ("cam-1",)),
        ("cameras", ("1cam",)),
        ("cameras", ("front//left",)),
        ("sync_slop", -1.0),
        ("sync_timeout", -0.5),
        ("log_throttle", -1.0),
        ("queue_size", 0),
        ("input_depth", 0),
        ("output_depth", 0),
        ("max_image_pixels", 0),
        ("diagnostics_period", 0.0),
        ("threads", -1),
    ],
)
def test_config_rejects_bad_value_naming_the_parameter(name, value):
    _raises_config_error(name, **{name: value})


def test_config_error_messages_say_what_is_wrong():
    assert "'roadd'" in _raises_config_error("drivable_classes", drivable_classes=("roadd",))
    assert "empty" in _raises_config_error("drivable_classes", drivable_classes=())
    assert "'gpu'" in _raises_config_error("device", device="gpu")


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:3"])
def test_config_accepts_devices(device):
    assert SegmentationConfig(device=device).device == device


@pytest.mark.parametrize("value", [[256], [1, 2, 3]])
def test_config_rejects_input_size_of_wrong_length_naming_it(value):
    with pytest.raises(ConfigError, match=r"^input_size\b"):
        SegmentationConfig.from_values({"input_size": value})


def test_config_accepts_nested_camera_namespaces():
    assert SegmentationConfig(cameras=("front/left", "rear_1", "")).cameras == ("front/left", "rear_1", "")


def test_from_values_turns_lists_into_tuples():
    config = SegmentationConfig.from_values(
        {"input_size": [128, 256], "drivable_classes": ["road", "sidewalk"], "cameras": ["front", "rear"]}
    )
    assert config.input_size == (128, 256) and isinstance(config.input_size, tuple)
    assert config.drivable_classes == ("road", "sidewalk") and isinstance(config.drivable_classes, tuple)
    assert config.cameras == ("front", "rear") and isinstance(config.cameras, tuple)
    hash(config)  # frozen and hashable: no list left inside


def test_from_values_rejects_unknown_keys_naming_them():
    with pytest.raises(ConfigError) as info:
        SegmentationConfig.from_values({"backend": "torch", "moddel_path": "x.onnx"})
    assert str(info.value).startswith("moddel_path"), str(info.value)
    assert "model_path" in str(info.value)  # the known names are listed


def test_from_values_names_the_nearest_known_parameter():
    with pytest.raises(ConfigError) as info:
        SegmentationConfig.from_values({"queue_sise": 4, "zzz": 1})
    assert str(info.value) == "queue_sise: unknown parameter (did you mean queue_size?); zzz: unknown parameter"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"cameras": None}, "cameras: must be a list of strings, got no value (an empty list has no type"),
        ({"drivable_classes": None}, "drivable_classes: must be a list of strings, got no value"),
        ({"input_size": ["256", "512"]}, "input_size: must be a list of integers, got ['256', '512']"),
        ({"cameras": "front"}, "cameras: must be a list of strings, got 'front'"),
        ({"queue_size": 2.5}, "queue_size: must be an integer, got 2.5"),
        ({"queue_size": True}, "queue_size: must be an integer, got True"),
        ({"publish_overlay": "yes"}, "publish_overlay: must be a boolean, got 'yes'"),
        ({"sync_slop": None}, "sync_slop: must be a number, got None"),
        ({"model_path": 3}, "model_path: must be a string, got 3"),
    ],
)
def test_from_values_rejects_values_of_the_wrong_type_naming_the_parameter(values, message):
    with pytest.raises(ConfigError) as info:
        SegmentationConfig.from_values(values)
    assert str(info.value).startswith(message), str(info.value)


def test_from_values_takes_an_integer_for_a_number():
    assert SegmentationConfig.from_values({"sync_slop": 0}).sync_slop == 0


@pytest.mark.parametrize("value", [(8193, 512), (256, 100_000), (100_000, 100_000)])
def test_config_bounds_the_input_size(value):
    assert "1..8192" in _raises_config_error("input_size", input_size=value)


def test_from_values_validates_like_the_constructor():
    with pytest.raises(ConfigError, match=r"^cameras\b"):
        SegmentationConfig.from_values({"cameras": ["a", "a"]})


def test_drivable_train_ids():
    assert SegmentationConfig(drivable_classes=("road", "sidewalk")).drivable_train_ids == (0, 1)
    assert SegmentationConfig(drivable_classes=("terrain", "road")).drivable_train_ids == (9, 0)


def test_parameter_defaults_one_entry_per_field_with_lists_for_tuples():
    defaults = parameter_defaults()
    fields = dataclasses.fields(SegmentationConfig)
    assert list(defaults) == [f.name for f in fields]
    for f in fields:
        if isinstance(f.default, tuple):
            assert defaults[f.name] == list(f.default) and type(defaults[f.name]) is list, f.name
        else:
            assert defaults[f.name] == f.default and type(defaults[f.name]) is type(f.default), f.name
    assert defaults["input_size"] == [0, 0] and defaults["cameras"] == [""] and defaults["drivable_classes"] == ["road"]
    assert SegmentationConfig.from_values(defaults) == SegmentationConfig()


def test_parameter_description_for_every_field():
    for f in dataclasses.fields(SegmentationConfig):
        description = parameter_description(f.name)
        assert isinstance(description, str) and description.strip(), f.name


# -- SemanticPipeline with the shipped model -----------------------------------------------------------------


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """Synthetic frames: three at 128x256 (one sequence) and one at 200x300."""
    root = tmp_path_factory.mktemp("frames")
    generate_split(root / "small", "val", 1, 3, 128, 256, seed=0)
    generate_split(root / "other", "val", 1, 1, 200, 300, seed=1)
    small = CityscapesDataset(root / "small", "val")
    other = CityscapesDataset(root / "other", "val")
    images = [small[i].image for i in range(3)] + [other[0].image]
    assert [im.shape for im in images] == [(128, 256, 3)] * 3 + [(200, 300, 3)]
    return images


@pytest.fixture(scope="module")
def shipped():
    """(ONNX Runtime CPU backend, ModelInfo) of the shipped model."""
    backend = create_backend("onnxruntime", SHIPPED_ONNX, device="cpu")
    info = read_model_info(SHIPPED_ONNX)
    assert info.input_size == (256, 512) and info.dynamic
    yield backend, info
    backend.close()


def test_batch_gives_the_labels_of_single_frame_calls(shipped, frames):
    pipeline = SemanticPipeline(*shipped, SegmentationConfig())
    batch_frames = [frames[0], frames[3], frames[2]]  # two sizes in one batch
    batch = pipeline.infer(batch_frames)
    assert batch.logits.shape == (3, 19, 256, 512) and len(batch.mappings) == 3
    for index, frame in enumerate(batch_frames):
        together = pipeline.finish(batch, index).labels
        alone = pipeline.finish(pipeline.infer([frame]), 0).labels
        assert together.shape == alone.shape == frame.shape[:2]
        agreement = (together == alone).mean()
        assert agreement >= 0.999, (index, agreement)


def test_labels_at_input_resolution_and_drivable_area(shipped, frames):
    pipeline = SemanticPipeline(*shipped, SegmentationConfig())
    batch = pipeline.infer(frames)
    assert batch.preprocess_ms >= 0 and batch.infer_ms >= 0
    for index, frame in enumerate(frames):
        result = pipeline.finish(batch, index)
        assert result.labels.shape == frame.shape[:2] and result.labels.dtype == np.uint8
        assert result.labels.max() < 19
        assert result.postprocess_ms >= 0
        drivable = pipeline.drivable(result.labels)
        np.testing.assert_array_equal(drivable, (result.labels == 0).astype(np.uint8) * 255)
    # a trained model on its own kind of scenes: road is found
    assert (pipeline.finish(batch, 0).labels == 0).mean() > 0.05


def test_labels_at_model_resolution(shipped, frames):
    pipeline = SemanticPipeline(*shipped, SegmentationConfig(output_resolution="model"))
    assert pipeline.model_size == (256, 512)
    batch = pipeline.infer(frames[2:])
    for index in range(2):
        result = pipeline.finish(batch, index)
        assert result.labels.shape == (256, 512) and pipeline.drivable(result.labels).shape == (256, 512)


def test_letterbox_through_the_pipeline(shipped, frames):
    pipeline = SemanticPipeline(*shipped, SegmentationConfig(resize_mode="letterbox"))
    batch = pipeline.infer([frames[3], frames[0]])
    # 200x300 -> scale min(1.28, 1.7067) = 1.28 -> 256 x 384 at left 64; 128x256 -> scale 2 -> full
    assert batch.mappings[0].region == (0, 64, 256, 384)
    assert batch.mappings[1].region == (0, 0, 256, 512)
    assert pipeline.finish(batch, 0).labels.shape == (200, 300)
    model = SemanticPipeline(*shipped, SegmentationConfig(resize_mode="letterbox", output_resolution="model"))
    assert model.finish(batch, 0).labels.shape == (256, 384)  # the frame's region of the model input


def test_requested_input_size_of_a_dynamic_model(shipped, frames):
    pipeline = SemanticPipeline(*shipped, SegmentationConfig(input_size=(128, 256), output_resolution="model"))
    assert pipeline.model_size == (128, 256)
    batch = pipeline.infer([frames[3]])
    assert batch.logits.shape == (1, 19, 128, 256)
    assert pipeline.finish(batch, 0).labels.shape == (128, 256)


def test_overlay_through_the_pipeline(shipped, frames):
    pipeline = SemanticPipeline(*shipped, SegmentationConfig(overlay_alpha=1.0))
    result = pipeline.finish(pipeline.infer([frames[0]]), 0)
    labels = result.labels
    overlay = pipeline.overlay(frames[0], result)
    assert overlay.shape == frames[0].shape and overlay.dtype == np.uint8
    road = labels == 0
    assert road.any() and (overlay[road] == (128, 64, 128)).all()


@pytest.fixture(scope="module")
def fixed_model(export_random_bisenetv2):
    """A randomly initialised BiSeNetV2 exported by seg-export at a fixed 64x128 (no --dynamic)."""
    return export_random_bisenetv2(dynamic=False)


class _CountingBackend:
    """Wraps a backend and records the input shape of every call."""

    def __init__(self, backend):
        self.backend, self.calls = backend, []

    def infer(self, inputs):
        self.calls.append({name: array.shape for name, array in inputs.items()})
        return self.backend.infer(inputs)


def test_fixed_size_model_rejects_another_input_size(fixed_model):
    info = read_model_info(fixed_model)
    assert not info.dynamic and info.input_size == (64, 128)
    with create_backend("onnxruntime", fixed_model, device="cpu") as backend:
        with pytest.raises(ConfigError, match=r"^input_size\b"):
            SemanticPipeline(backend, info, SegmentationConfig(input_size=(32, 64)))
        SemanticPipeline(backend, info, SegmentationConfig(input_size=(64, 128)))  # its own size is fine


def test_fixed_size_model_runs_a_batch_one_call_per_frame(fixed_model, frames):
    info = read_model_info(fixed_model)
    with create_backend("onnxruntime", fixed_model, device="cpu") as backend:
        counting = _CountingBackend(backend)
        pipeline = SemanticPipeline(counting, info, SegmentationConfig())
        batch = pipeline.infer([frames[0], frames[3]])
    assert counting.calls == [{"image": (1, 3, 64, 128)}, {"image": (1, 3, 64, 128)}]
    assert batch.logits.shape == (2, 19, 64, 128)
    assert pipeline.finish(batch, 0).labels.shape == (128, 256)
    assert pipeline.finish(batch, 1).labels.shape == (200, 300)


def test_dynamic_model_runs_a_batch_in_one_call(shipped, frames):
    counting = _CountingBackend(shipped[0])
    SemanticPipeline(counting, shipped[1], SegmentationConfig()).infer(frames[:3])
    assert counting.calls == [{"image": (3, 3, 256, 512)}]


# -- model path and backend ----------------------------------------------------------------------------------


def test_resolve_model_path_finds_the_shipped_model(tmp_path):
    assert resolve_model_path(SegmentationConfig(), [tmp_path, REPO]) == REPO / "models" / "bisenetv2_synth.onnx"
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "bisenetv2_synth.onnx").write_bytes(b"first")
    assert resolve_model_path(SegmentationConfig(), [tmp_path, REPO]) == tmp_path / "models" / "bisenetv2_synth.onnx"


def test_resolve_model_path_names_the_places_searched(tmp_path):
    places = [tmp_path / "share_a", tmp_path / "share_b"]
    with pytest.raises(FileNotFoundError) as info:
        resolve_model_path(SegmentationConfig(), places)
    assert str(places[0]) in str(info.value) and str(places[1]) in str(info.value)


def test_resolve_model_path_explicit(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        resolve_model_path(SegmentationConfig(model_path=str(missing)), [REPO])
    assert resolve_model_path(SegmentationConfig(model_path=str(SHIPPED_ONNX)), [tmp_path]) == SHIPPED_ONNX


def test_resolve_model_path_looks_up_a_relative_path_in_the_share_folders(tmp_path):
    share = tmp_path / "share"
    (share / "models").mkdir(parents=True)
    (share / "models" / "other.onnx").write_bytes(b"x")
    config = SegmentationConfig(model_path="models/other.onnx")
    assert resolve_model_path(config, [tmp_path / "elsewhere", share]) == share / "models" / "other.onnx"
    with pytest.raises(FileNotFoundError, match=r"models/none\.onnx does not exist \(nor under"):
        resolve_model_path(SegmentationConfig(model_path="models/none.onnx"), [share])


def test_resolve_model_path_of_a_directory_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="is a directory, not a model file"):
        resolve_model_path(SegmentationConfig(model_path=str(tmp_path)), [REPO])


def _model_with_sidecar(folder: Path, **changes) -> Path:
    """A copy of the shipped ONNX model whose sidecar has ``changes`` applied."""
    model = folder / "model.onnx"
    model.write_bytes(SHIPPED_ONNX.read_bytes())
    sidecar = json.loads(SHIPPED_ONNX.with_name(SHIPPED_ONNX.name + ".json").read_text())
    model.with_name("model.onnx.json").write_text(json.dumps({**sidecar, **changes}))
    return model


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"input_name": "input"}, "the sidecar names input 'input', the model has input(s) ['image']"),
        ({"output_name": "out"}, "the sidecar names output 'out', the model has output(s) ['logits']"),
        (
            {"num_classes": 12, "class_names": [f"c{i}" for i in range(12)]},
            "the model's 'logits' is (1, 19, 256, 512) for one frame, the sidecar says (1, 12, H, W) (12 classes)",
        ),
    ],
)
def test_open_backend_checks_the_sidecar_against_the_model(tmp_path, changes, message):
    model = _model_with_sidecar(tmp_path, **changes)
    with pytest.raises(ValueError) as info:
        open_backend(SegmentationConfig(backend="onnxruntime", device="cpu"), model)
    assert str(info.value) == f"{model}: {message}"


def test_open_backend_onnxruntime():
    backend, info = open_backend(SegmentationConfig(backend="onnxruntime", device="cpu", threads=1), SHIPPED_ONNX)
    with backend:
        assert backend.name == "onnxruntime" and backend.device == "cpu" and backend.precision == "fp32"
        assert info == read_model_info(SHIPPED_ONNX)


def test_open_backend_torch_takes_the_input_size_from_the_checkpoint(frames, shipped):
    backend, info = open_backend(SegmentationConfig(backend="torch", device="cpu"), SHIPPED_CHECKPOINT)
    with backend:
        assert backend.name == "torch"
        assert info.input_size == (256, 512) and info.dynamic and info.num_classes == 19
        assert info.input_name == "image" and info.output_name == "logits"
    config = SegmentationConfig(backend="torch", device="cpu", input_size=(128, 256))
    backend, info = open_backend(config, SHIPPED_CHECKPOINT)
    with backend:
        assert backend.name == "torch" and info.input_size == (128, 256)
        torch_labels = SemanticPipeline(backend, info, config).infer([frames[1]]).logits[0].argmax(0)
    onnx_labels = SemanticPipeline(*shipped, config).infer([frames[1]]).logits[0].argmax(0)
    assert (torch_labels == onnx_labels).mean() >= 0.99  # the ONNX model is an export of this checkpoint


def test_open_backend_names_a_corrupt_model_file(tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" + np.random.default_rng(0).bytes(4096))
    (tmp_path / "corrupt.onnx.json").write_text((REPO / "models" / "bisenetv2_synth.onnx.json").read_text())
    with pytest.raises((ValueError, RuntimeError)) as info:
        open_backend(SegmentationConfig(backend="onnxruntime", device="cpu"), corrupt)
    assert str(corrupt) in str(info.value)


def test_open_backend_falls_back_to_fp32_when_the_backend_cannot_run_fp16():
    backend, _ = open_backend(SegmentationConfig(backend="onnxruntime", device="cpu", precision="fp16"), SHIPPED_ONNX)
    with backend:
        assert backend.precision == "fp32"


def test_the_torch_backend_defaults_to_the_shipped_checkpoint():
    assert resolve_model_path(SegmentationConfig(backend="torch"), [REPO]) == REPO / "models" / "bisenetv2_synth.pt"


def test_open_backend_auto_falls_back_to_fp32():
    backend, _ = open_backend(SegmentationConfig(backend="auto", device="cpu", precision="fp16"), SHIPPED_ONNX)
    with backend:
        assert backend.name == "onnxruntime" and backend.precision == "fp32"


# -- PipelineStats -------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_stats_counts_bad_reasons_batches_and_window_rates():
    clock = FakeClock()
    stats = PipelineStats(clock)
    stats.count("received", 10)
    stats.count("dropped", 2)
    stats.count("failed")
    stats.bad_frame("encoding")
    stats.bad_frame("encoding")
    stats.bad_frame("too_large")
    for size in (3, 1, 3):
        stats.batch(size, preprocess_ms=1.0, infer_ms=2.0)
    for _ in range(4):
        stats.published(latency_ms=10.0, postprocess_ms=1.0)
    clock.now += 2.0
    report = stats.report()
    assert report["frames_in"] == 10 and report["frames_out"] == 4 and report["dropped"] == 2
    assert report["failed"] == 1 and report["bad_frames"] == 3
    assert report["bad_encoding"] == 2 and report["bad_too_large"] == 1
    assert report["batches"] == 3 and report["batch_size_max"] == 3
    assert report["batches_of_1"] == 1 and report["batches_of_3"] == 2
    assert report["fps_in"] == pytest.approx(5.0) and report["fps_out"] == pytest.approx(2.0)
    assert report["window_dropped"] == 2 and report["window_bad"] == 3 and report["window_failed"] == 1


def test_stats_percentiles_worked_out_by_hand():
    stats = PipelineStats(FakeClock())
    preprocess = [float(i) for i in range(101)]
    infer = [float(i * i) for i in range(101)]
    latency = [5.0, 1.0, 9.0, 3.0, 7.0, 100.0]
    for pre, inf in zip(preprocess, infer, strict=True):
        stats.batch(1, pre, inf)
    for value in latency:
        stats.published(value, postprocess_ms=0.5)
    report = stats.report()
    # 101 samples: the p-th percentile is exactly sample p
    assert report["preprocess_ms_p50"] == pytest.approx(50.0) and report["preprocess_ms_p99"] == pytest.approx(99.0)
    assert report["infer_ms_p50"] == pytest.approx(2500.0) and report["infer_ms_p99"] == pytest.approx(9801.0)
    # sorted 1 3 5 7 9 100: p50 halfway between 5 and 7; p99 at 0.99 * 5 = 4.95 -> 9 + 0.95 * (100 - 9)
    assert report["latency_ms_p50"] == pytest.approx(6.0)
    assert report["latency_ms_p99"] == pytest.approx(95.45)
    assert report["postprocess_ms_p50"] == pytest.approx(0.5) and report["postprocess_ms_p99"] == pytest.approx(0.5)


def test_stats_window_resets_after_report():
    clock = FakeClock()
    stats = PipelineStats(clock)
    stats.count("received", 10)
    stats.batch(2, 1.0, 2.0)
    stats.published(5.0, 1.0)
    clock.now += 2.0
    first = stats.report()
    assert first["fps_in"] == pytest.approx(5.0) and first["latency_ms_p50"] == pytest.approx(5.0)
    clock.now += 1.0
    second = stats.report()
    assert second["fps_in"] == 0.0 and second["fps_out"] == 0.0
    for stage in PipelineStats.STAGES:
        assert second[f"{stage}_ms_p50"] is None and second[f"{stage}_ms_p99"] is None, stage
    assert second["frames_in"] == 10 and second["frames_out"] == 1 and second["batches_of_2"] == 1  # totals stay
    stats.count("received", 3)
    clock.now += 0.5
    assert stats.report()["fps_in"] == pytest.approx(6.0)  # the new window started at the last report


def test_stats_queue_max_is_the_maximum_observed():
    stats = PipelineStats(FakeClock())
    assert stats.report()["queue_max"] == 0
    for depth in (1, 4, 2, 0):
        stats.queue_depth(depth)
    assert stats.report()["queue_max"] == 4


def test_timing_histogram_percentiles_interpolate_within_the_bin():
    histogram = TimingHistogram()  # 0.1 ms bins up to 10 s
    assert histogram.percentiles(50, 99) == [None, None]
    for value, n in ((1.05, 40), (3.05, 58), (20_000.0, 2)):  # bins [1.0, 1.1), [3.0, 3.1), overflow
        for _ in range(n):
            histogram.add(value)
    p0, p40, p50, p99 = histogram.percentiles(0, 40, 50, 99)
    assert p0 == pytest.approx(1.0)  # rank 0: the lower edge of the first non-empty bin
    assert p40 == pytest.approx(1.1)  # rank 40: all 40 samples of [1.0, 1.1) -> its upper edge
    assert p50 == pytest.approx(3.0 + 0.1 * 10 / 58)  # rank 50: 10 of the 58 samples of [3.0, 3.1)
    assert p99 == 10_000.0  # rank 99 lies in the overflow bin, which reads as 10 s
    assert histogram.total == 100


def test_timing_histogram_clamps_negative_and_nan():
    histogram = TimingHistogram()
    histogram.add(-3.0)
    histogram.add(float("nan"))
    assert histogram.counts[0] == 1 and histogram.counts[-1] == 1 and histogram.total == 2


def test_stats_report_since_start_percentiles_next_to_the_window():
    clock = FakeClock()
    stats = PipelineStats(clock)
    for _ in range(3):
        stats.published(latency_ms=10.05, postprocess_ms=2.05)  # bins [10.0, 10.1) and [2.0, 2.1)
    clock.now += 1.0
    first = stats.report()
    # 3 samples in [10.0, 10.1): rank 1.5 -> 10.0 + 0.1 * 1.5 / 3, rank 2.97 -> 10.0 + 0.1 * 2.97 / 3
    assert first["latency_ms_p50_total"] == pytest.approx(10.05)
    assert first["latency_ms_p99_total"] == pytest.approx(10.099)
    assert first["latency_ms_p50"] == pytest.approx(10.05)  # the window: exact
    stats.published(latency_ms=20.05, postprocess_ms=2.05)
    clock.now += 1.0
    second = stats.report()
    assert second["latency_ms_p50"] == pytest.approx(20.05) and second["latency_ms_p99"] == pytest.approx(20.05)
    # 4 samples: rank 2 -> 2 of the 3 in [10.0, 10.1); rank 3.96 -> 0.96 of the 1 in [20.0, 20.1)
    assert second["latency_ms_p50_total"] == pytest.approx(10.0 + 0.1 * 2 / 3)
    assert second["latency_ms_p99_total"] == pytest.approx(20.096)
    assert second["postprocess_ms_p50_total"] == pytest.approx(2.05)  # rank 2 of 4 in [2.0, 2.1)
    assert second["preprocess_ms_p50_total"] is None and second["infer_ms_p99_total"] is None  # no batches
    clock.now += 1.0
    third = stats.report()  # an empty window: the window values are None, the since-start ones stay
    assert third["latency_ms_p50"] is None
    assert third["latency_ms_p50_total"] == second["latency_ms_p50_total"]
    for stage in PipelineStats.STAGES:
        assert {f"{stage}_ms_p50_total", f"{stage}_ms_p99_total"} <= set(third), stage


def test_stats_since_start_memory_stays_flat_over_many_frames():
    clock = FakeClock()
    stats = PipelineStats(clock)
    latencies = [10.0 + (i % 1000) * 0.01 for i in range(12_000)]  # 10.00 .. 19.99 ms, 12 times
    for index, latency in enumerate(latencies):
        stats.batch(1, preprocess_ms=1.0, infer_ms=latency - 5.0)
        stats.published(latency, postprocess_ms=1.0)
        if index % 100 == 99:
            clock.now += 1.0
            report = stats.report()
    for stage in PipelineStats.STAGES:
        assert stats.histograms[stage].total == 12_000
        assert stats._timings[stage] == []  # the window samples went with the last report
    # 120 samples per 0.1 ms bin from 10.0 ms: rank 6000 ends bin [14.9, 15.0), rank 11880 ends [19.8, 19.9)
    assert report["latency_ms_p50_total"] == pytest.approx(15.0)
    assert report["latency_ms_p99_total"] == pytest.approx(19.9)
    assert report["infer_ms_p50_total"] == pytest.approx(10.0)
    assert abs(report["latency_ms_p50_total"] - np.percentile(latencies, 50)) <= 0.1
