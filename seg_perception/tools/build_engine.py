"""``seg-build-engine``: prepare what the configured backend caches, before the node starts (Autoware's
``build_only``). With TensorRT it builds the engine for the params file's model, precision and input size (or finds
it in the engine cache, ``engine_cache_dir``); ONNX Runtime and torch cache nothing, so the model is only loaded and
checked (one warm-up inference, as the node does at start-up). Parameters are read as the node reads them:
``--params-file`` files in order (``/**`` and node-name sections), then ``-p name:=value``.

Prints one line and exits 0; a bad params file, parameter or model: one line ``seg-build-engine: error: ...`` on
stderr and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from seg_perception.backends import InferenceBackend
from seg_perception.pipeline.config import SegmentationConfig, read_params_files
from seg_perception.pipeline.loading import create_pipeline, open_backend, resolve_model_path, share_dirs

PROG = "seg-build-engine"
EXIT_BAD_CONFIG = 2


def _override(text: str) -> tuple[str, str]:
    """argparse type: ``name:=value`` -> (name, value)."""
    name, separator, value = text.partition(":=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:=VALUE, got {text!r}")
    return name, value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--params-file",
        "--config",
        dest="params_files",
        action="append",
        required=True,
        metavar="YAML",
        help="ROS params file of the node (e.g. config/semantic.yaml); repeatable, applied in order",
    )
    parser.add_argument("-p", dest="overrides", action="append", type=_override, default=[], metavar="NAME:=VALUE")
    parser.add_argument("--node-name", default="segmentation_node", help="whose params file sections apply")
    return parser.parse_args(argv)


def summary(backend: InferenceBackend, model_path: Path, model_size: tuple[int, int]) -> str:
    """The one line saying what was prepared."""
    size = f"{model_size[0]}x{model_size[1]}"
    engine = getattr(backend, "engine_path", None)
    if engine is not None:
        how = "found in the cache" if backend.engine_from_cache else "built"
        return f"TensorRT engine {engine} {how}: {model_path.name}, {backend.precision}, input {size}"
    return (
        f"{backend.name} on {backend.device} ({backend.precision}) caches nothing: {model_path.name} loads and runs "
        f"at {size}, nothing to build"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(format=f"{PROG}: %(levelname)s: %(message)s", level=logging.WARNING)
    try:
        values = read_params_files(args.params_files, dict(args.overrides), args.node_name)
        config = SegmentationConfig.from_values(values)
        model_path = resolve_model_path(config, share_dirs())
        backend, info = open_backend(config, model_path)
        with backend:
            line = summary(backend, model_path, create_pipeline(backend, info, config).model_size)
    except (OSError, ValueError, RuntimeError, TypeError, LookupError) as error:
        print(f"{PROG}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
