"""Constants of the generator shared by several modules (the bottom of the package: imports nothing of it)."""

from __future__ import annotations

from seg_perception.labels import NUM_CLASSES

DEFAULT_CITY = "synthcity"
FRAME_RATE_HZ = 17.0
"""Cityscapes video sequences are recorded at 17 Hz."""
MAX_FRAMES_PER_SEQUENCE = 300
"""The street of a sequence is built long enough for this many frames."""
THING_CLASSES = ("car", "truck", "bus", "person", "rider", "bicycle", "motorcycle")
CLASS_COUNT_BINS = NUM_CLASSES + 1
"""``SynthSummary.class_pixels`` has one bin per train id 0..18 and a last one for ignored pixels (255)."""

VIEW_DISTANCE = 250.0  # metres of street rendered ahead; a distant skyline closes the view there
BEHIND = 40.0  # metres behind the camera where traffic is still simulated (it may overtake)
