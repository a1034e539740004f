"""The inference-backend interface: ``InferenceBackend`` (validation, timing, context manager) and ``TensorSpec``.

numpy only: importing this module imports neither torch, onnxruntime nor tensorrt.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

DEVICE_RE = re.compile(r"(cpu|cuda|tensorrt)(?::(\d+))?")
"""``cpu``, ``cuda``, ``cuda:N``; ``tensorrt`` / ``tensorrt:N`` (ONNX Runtime's TensorRT execution provider)."""


class UnsupportedPrecisionError(ValueError):
    """The backend does not run the requested precision on this device (callers may retry with fp32)."""


class BackendUnavailableError(RuntimeError):
    """The backend cannot run on this machine (package not installed, no CUDA, provider missing); says why."""


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: ``name``, ``shape`` (``None`` for a dynamic dimension) and numpy ``dtype``."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(None if d is None or d < 0 else int(d) for d in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))

    def __str__(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name} {self.dtype} ({dims})"


def parse_device(device: str, allowed: Sequence[str]) -> tuple[str, int | None]:
    """``"cuda:1"`` -> ``("cuda", 1)``, ``"cuda"`` -> ``("cuda", 0)``, ``"cpu"`` -> ``("cpu", None)``.

    ValueError when ``device`` is malformed or its type is not in ``allowed``.
    """
    match = DEVICE_RE.fullmatch(device)
    if match is None or match.group(1) not in allowed:
        raise ValueError(f"device {device!r} is not one of {', '.join(allowed)} (with an optional :INDEX for GPUs)")
    kind, index = match.group(1), match.group(2)
    if kind == "cpu":
        if index is not None:
            raise ValueError(f"device {device!r}: cpu takes no index")
        return kind, None
    return kind, int(index or 0)


class InferenceBackend(ABC):
    """One loaded model behind a uniform interface.

    ``infer({name: array})`` -> ``{name: array}`` (numpy in, numpy out; inputs are checked against
    ``input_specs`` here, the same way for every backend); ``last_latency_ms`` is the wall time of the last
    ``infer``; ``name`` / ``device`` / ``precision`` say what actually runs. Use as a context manager or call
    ``close()`` (idempotent); ``infer`` after ``close`` raises RuntimeError.

    Subclasses load the model, call ``InferenceBackend.__init__`` with the specs, and implement ``_run`` (on
    validated, C-contiguous inputs), ``_release`` and ``supported_precisions``.
    """

    name: ClassVar[str]

    def __init__(
        self, *, device: str, precision: str, input_specs: Sequence[TensorSpec], output_specs: Sequence[TensorSpec]
    ) -> None:
        self.device = device
        self.precision = precision
        self._input_specs = tuple(input_specs)
        self._output_specs = tuple(output_specs)
        self.last_latency_ms: float | None = None
        self._closed = False

    @staticmethod
    @abstractmethod
    def supported_precisions(device: str) -> tuple[str, ...]:
        """Precisions (``"fp32"``, ``"fp16"``, ``"int8"``) this backend runs on ``device`` (a device type)."""

    @classmethod
    def _require_precision(cls, precision: str, device: str) -> None:
        """ValueError when ``precision`` is not supported on ``device``."""
        supported = cls.supported_precisions(device)
        if precision not in supported:
            raise UnsupportedPrecisionError(
                f"the {cls.name} backend on {device} does not run precision {precision!r} "
                f"(supported: {', '.join(supported)})"
            )

    @property
    def input_specs(self) -> list[TensorSpec]:
        return list(self._input_specs)

    @property
    def output_specs(self) -> list[TensorSpec]:
        return list(self._output_specs)

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on ``inputs`` (one array per input spec); returns one array per output spec.

        ValueError for a missing or unexpected input name, or an array whose rank, dtype or fixed dimensions
        differ from its spec; TypeError when ``inputs`` is not a mapping of numpy arrays.
        """
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        start = time.perf_counter()
        outputs = self._run(self._checked(inputs))
        self.last_latency_ms = (time.perf_counter() - start) * 1e3
        return outputs

    def _checked(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``inputs`` validated against the input specs, as C-contiguous arrays."""
        expected = "; ".join(map(str, self._input_specs))
        if not isinstance(inputs, Mapping):
            raise TypeError(f"{self.name} backend: inputs must be a dict of numpy arrays ({expected})")
        names = {spec.name for spec in self._input_specs}
        missing, extra = sorted(names - set(inputs)), sorted(set(inputs) - names)
        if missing or extra:
            problems = [
                f"{what} input(s) {found}" for what, found in (("missing", missing), ("unexpected", extra)) if found
            ]
            raise ValueError(f"{self.name} backend: {', '.join(problems)}; expected {expected}")
        checked = {}
        for spec in self._input_specs:
            array = inputs[spec.name]
            if not isinstance(array, np.ndarray):
                raise TypeError(
                    f"{self.name} backend: input {spec.name!r} is a {type(array).__name__}, not a numpy array"
                )
            if (
                array.ndim != len(spec.shape)
                or array.dtype != spec.dtype
                or any(want not in (None, got) for want, got in zip(spec.shape, array.shape, strict=True))
            ):
                raise ValueError(
                    f"{self.name} backend: input {spec.name!r} is {array.dtype} {array.shape}, expected {spec}"
                )
            checked[spec.name] = np.ascontiguousarray(array)
        return checked

    @abstractmethod
    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on validated inputs."""

    @abstractmethod
    def _release(self) -> None:
        """Free the model and any device memory."""

    def close(self) -> None:
        """Release the model; later calls do nothing."""
        if not self._closed:
            self._closed = True
            self._release()

    def __enter__(self) -> InferenceBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} on {self.device}, {self.precision}>"
