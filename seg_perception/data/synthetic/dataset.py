"""The dataset driver: a split of ``sequences`` x ``frames_per_sequence`` frames rendered and written to
disk, one sequence per job (optionally in a process pool; the output does not depend on it)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import cv2
import numpy as np

from seg_perception.data.layout import SPLITS, city_of, frame_stem
from seg_perception.data.synthetic.constants import CLASS_COUNT_BINS, DEFAULT_CITY, MAX_FRAMES_PER_SEQUENCE
from seg_perception.data.synthetic.results import SynthSummary, class_pixel_counts
from seg_perception.data.synthetic.scene import SyntheticScene
from seg_perception.data.synthetic.truth import frame_truth
from seg_perception.data.synthetic.writer import write_frame


def _generate_sequence(args: tuple) -> tuple[list[str], np.ndarray]:
    out_dir, split, sequence, frames, height, width, seed, city = args
    scene = SyntheticScene(height, width, seed, split, sequence)
    stems, counts = [], np.zeros(CLASS_COUNT_BINS, np.int64)
    for index in range(frames):
        frame = scene.render(index)
        stem = frame_stem(city, sequence, index)
        write_frame(out_dir, split, stem, frame, frame_truth(scene, index, frame))
        counts += class_pixel_counts(frame.label_ids)
        stems.append(stem)
    return stems, counts


def _single_threaded_worker() -> None:
    cv2.setNumThreads(1)


def generate_split(
    out_dir: Path | str,
    split: str,
    sequences: int,
    frames_per_sequence: int,
    height: int,
    width: int,
    seed: int,
    city: str = DEFAULT_CITY,
    workers: int = 1,
) -> SynthSummary:
    """Write ``sequences`` x ``frames_per_sequence`` frames of one split under ``out_dir``.

    Sequence s, frame k is ``<city>_<s:06d>_<k:06d>``. Output does not depend on ``workers``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if sequences < 1 or frames_per_sequence < 1 or workers < 1:
        raise ValueError("sequences, frames_per_sequence and workers must be positive")
    if frames_per_sequence > MAX_FRAMES_PER_SEQUENCE:
        raise ValueError(f"frames_per_sequence must be at most {MAX_FRAMES_PER_SEQUENCE}")
    if seed < 0:
        raise ValueError("seed must be non-negative")
    if city_of(frame_stem(city, 0, 0)) != city:
        raise ValueError(f"city {city!r} must be lowercase letters and underscores")
    start = time.perf_counter()
    jobs = [(Path(out_dir), split, s, frames_per_sequence, height, width, seed, city) for s in range(sequences)]
    if workers == 1:
        results = [_generate_sequence(job) for job in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(min(workers, sequences), _single_threaded_worker) as pool:
            results = pool.map(_generate_sequence, jobs, chunksize=1)
    counts = np.sum([c for _, c in results], axis=0)
    stems = [stem for s, _ in results for stem in s]
    return SynthSummary(split, len(stems), time.perf_counter() - start, counts, stems)
