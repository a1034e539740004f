"""Synthetic Cityscapes-like driving scenes from a small 3-D street model (numpy + OpenCV only).

A sequence is a straight street driven along by a camera at ``FRAME_RATE_HZ``: lanes with dashed
markings, curbs, sidewalks, terrain, building blocks, walls, fences, hedges, trees, poles with signs,
street lamps and traffic lights, and cars, trucks, buses, motorcycles, bicycles, riders and pedestrians
standing on the ground plane and moving with their own velocity. Every labelled surface is projected
with the camera to one polygon and filled with ``cv2.fillPoly`` into the label, instance, shade and
colour canvases, back to front, so later (nearer) surfaces occlude earlier ones; the same polygons in
the same order make ``gtFine_polygons.json``, from which the official ``json2labelImg`` and
``json2instanceImg`` rebuild the label and instance images (up to edge pixels: Pillow and OpenCV
rasterise slanted edges slightly differently).

Instance ids follow the official rule ``label_id * 1000 + k``, ``k`` counting that label's polygons
in drawing order, so they are per frame, as in Cityscapes; ``SynthFrame.instance_tracks`` maps them to
track ids that stay fixed over a sequence.

World frame: x to the right of the street axis, y up, z along the street (metres); the camera drives
along +z. Image: u to the right, v down (pixels). See ``camera`` for the projection.

Modules, each importing only those above it:
- ``constants``: frame rate, sequence length, view distance, default city, class bins.
- ``palette``, ``shapes``: colours and palettes; world-space rectangles, outlines, billboards.
- ``results``: ``SynthFrame`` (one frame in memory), ``SynthSummary`` (a written split).
- ``camera``: ``PinholeCamera`` (intrinsics, mounting, camera.json) and ``CameraView`` (projection
  and clipping of world polygons at one camera position).
- ``canvas``: ``Canvas``, the frame's image / labelIds / instanceIds / shade canvases.
- ``look``: a sequence's colours and lighting; textures, grading and noise of the final image.
- ``vehicle_models``, ``actors``: vehicle hulls and details; pedestrians, riders, vehicles and their motion.
- ``street_objects``: poles, signs, traffic lights, trees, building blocks, barriers.
- ``street``: the street geometry (lanes, roadsides, cross streets).
- ``scenery``, ``traffic``, ``backdrop``, ``ground``: what a sequence holds, built from the street.
- ``scene``: ``SyntheticScene`` (build a sequence, render any frame), ``render_frame``.
- ``truth``: a frame's bird's-eye truth from the scene geometry (drivable grid, located objects).
- ``writer``: a frame's Cityscapes files (and its truth files), the preview mosaic.
- ``dataset``: ``generate_split``, the driver that renders and writes a split.
"""

from seg_perception.data.synthetic.constants import (
    CLASS_COUNT_BINS,
    DEFAULT_CITY,
    MAX_FRAMES_PER_SEQUENCE,
    THING_CLASSES,
)
from seg_perception.data.synthetic.dataset import generate_split
from seg_perception.data.synthetic.scene import SyntheticScene, render_frame
from seg_perception.data.synthetic.writer import write_preview

__all__ = [
    "CLASS_COUNT_BINS",
    "DEFAULT_CITY",
    "MAX_FRAMES_PER_SEQUENCE",
    "THING_CLASSES",
    "SyntheticScene",
    "generate_split",
    "render_frame",
    "write_preview",
]
