# seg_perception: every set-up step for a fresh machine lives here (idempotent).
#   make demo   the main job (synthetic drive -> rosbag2 bag -> replay benchmark of the panoptic node -> report)
#   make test   the test suite (sets up first if needed)
#   make setup  .venv with pinned versions + this package installed into it
#   make lint   ruff (target py310)

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Everything that ends up in the installed package; a change re-installs it.
PACKAGE_FILES := $(shell git ls-files seg_perception launch config models resource setup.py setup.cfg package.xml 2>/dev/null)
MSG_FILES := $(shell git ls-files seg_perception_msgs 2>/dev/null)

# ROS traffic stays on this machine (a hard rule): loopback discovery and a loopback-only
# Fast DDS profile; AMENT_PREFIX_PATH lets ament_index find the package installed in .venv.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/fastdds_localhost.xml
export AMENT_PREFIX_PATH := $(CURDIR)/$(VENV)
export PYTHONUNBUFFERED := 1

DEMO_DIR ?= build/demo
SYNTH_256 := build/data/synth256
BISENET_RUN := build/runs/bisenetv2_synth
SYNTH_256_GPU := build/data/synth256_4000
GPU_WORKERS ?= 14

SYNTH_2000 := build/data/synth256_2000
PANOPTIC_RUN := build/runs/panoptic_fpn_synth
PANOPTIC_PRED := build/pred/panoptic_fpn_synth

.PHONY: setup test demo lint clean bisenetv2-synth bisenetv2-synth-cpu-stages bisenetv2-synth-int8 synth-calib panoptic-fpn-synth panoptic-fpn-synth-int8

setup: $(VENV)/.package-installed $(VENV)/.msgs-installed

$(VENV)/.deps-installed: requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check pip==25.3
	$(PY) -m pip install --quiet -c constraints.txt -r requirements.txt
	touch $@

$(VENV)/.package-installed: $(VENV)/.deps-installed $(PACKAGE_FILES)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --force-reinstall .
	touch $@

# The interface package (rosidl) built by colcon from the PyPI ROS wheels and merged into the venv, so its rclpy
# imports seg_perception_msgs. The wheels' CMake exports name the include folders of the machine that built them
# (/opt/python/cp311-cp311/...): point them at this venv's Python and numpy headers first.
$(VENV)/.msgs-installed: $(VENV)/.deps-installed $(MSG_FILES)
	$(PY) -c "import pathlib, sysconfig, numpy; \
		old = ('/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include', numpy.get_include()), \
			('/opt/python/cp311-cp311/include/python3.11', sysconfig.get_paths()['include']); \
		files = [f for f in pathlib.Path('$(VENV)/share').glob('*/cmake/*.cmake') if '/opt/python/cp311' in f.read_text()]; \
		[f.write_text(f.read_text().replace(*old[0]).replace(*old[1])) for f in files]"
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH CMAKE_PREFIX_PATH=$(CURDIR)/$(VENV) $(VENV)/bin/colcon --log-base build/msgs/log \
		build --base-paths seg_perception_msgs --build-base build/msgs --install-base $(VENV) --merge-install
	$(PY) -c "import seg_perception_msgs.msg"
	touch $@

test: setup
	$(PY) -m pytest test

# A small synthetic drive at 512x1024 (4 sequences x 10 frames, the val seed) -> a 10 Hz rosbag2 bag with its
# ground truth -> seg-replay-bench: segmentation_node with config/panoptic.yaml (the shipped Panoptic FPN, backend
# auto: ONNX Runtime on a CPU) at the bag's timing; prints the report (timing, loss, PQ/AP/mIoU) and its path.
# The node runs as its own process; a random ROS_DOMAIN_ID (unless set) keeps other ROS runs on this machine apart.
demo: setup
	rm -rf $(DEMO_DIR)
	$(VENV)/bin/seg-synth --out $(DEMO_DIR)/cityscapes --split val --sequences 4 --frames-per-sequence 10 \
		--size 512x1024 --seed 2
	$(VENV)/bin/seg-bag from-cityscapes $(DEMO_DIR)/cityscapes --split val --out $(DEMO_DIR)/drive_bag --fps 10
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-$$(shuf -i 120-200 -n 1)} $(VENV)/bin/seg-replay-bench --bag $(DEMO_DIR)/drive_bag \
		--config config/panoptic.yaml --out $(DEMO_DIR)/replay

# Reproduces the shipped models/bisenetv2_synth.* (see its model card), three stages:
#   1+2 on the CPU (about 105 min on 2 cores): 1200 iterations from scratch, then 500 more from those
#       weights with a second, lower poly cycle (batch 8, 800 training frames);
#   3 on one CUDA GPU (about 6 min on an H200): 4000 iterations, batch 16, 4000 training frames,
#       from stage 2's weights. On the CPU alone stage 3 takes many hours.
bisenetv2-synth-cpu-stages: setup
	$(VENV)/bin/seg-synth --out $(SYNTH_256) --split train --sequences 80 --frames-per-sequence 10 --size 256x512 --seed 1 --workers 2
	$(VENV)/bin/seg-synth --out $(SYNTH_256) --split val --sequences 10 --frames-per-sequence 5 --size 256x512 --seed 2
	$(VENV)/bin/seg-train --config config/train/bisenetv2_synth.yaml
	$(VENV)/bin/seg-train --config config/train/bisenetv2_synth.yaml model.init_weights=$(BISENET_RUN)/best.pt \
		train.iterations=500 optim.lr=0.02 optim.warmup_iterations=20 train.val_interval=100 \
		train.checkpoint_interval=100 output_dir=$(BISENET_RUN)_ft

bisenetv2-synth: bisenetv2-synth-cpu-stages
	$(VENV)/bin/seg-synth --out $(SYNTH_256_GPU) --split train --sequences 400 --frames-per-sequence 10 --size 256x512 --seed 1 --workers $(GPU_WORKERS)
	$(VENV)/bin/seg-synth --out $(SYNTH_256_GPU) --split val --sequences 10 --frames-per-sequence 5 --size 256x512 --seed 2
	$(VENV)/bin/seg-train --config config/train/bisenetv2_synth.yaml data.root=$(SYNTH_256_GPU) data.workers=$(GPU_WORKERS) \
		model.init_weights=$(BISENET_RUN)_ft/best.pt train.device=cuda train.batch_size=16 loss.ohem_min_kept=131072 \
		train.iterations=4000 optim.lr=0.05 optim.warmup_iterations=200 train.val_interval=800 \
		train.checkpoint_interval=800 train.log_interval=100 output_dir=$(BISENET_RUN)_gpu
	$(PY) -c "import torch; c = torch.load('$(BISENET_RUN)_gpu/best.pt', weights_only=True); \
		torch.save({k: c[k] for k in ('model', 'config', 'iteration')}, 'models/bisenetv2_synth.pt')"
	$(VENV)/bin/seg-export --checkpoint models/bisenetv2_synth.pt --out models/bisenetv2_synth.onnx --height 256 --width 512 \
		--dynamic --parity-images $(SYNTH_256) --parity-frames 50
	$(VENV)/bin/seg-predict --onnx models/bisenetv2_synth.onnx --gt $(SYNTH_256) --split val --out build/pred/bisenetv2_synth
	$(VENV)/bin/seg-eval --gt $(SYNTH_256) --split val --semantic-dir build/pred/bisenetv2_synth

# Reproduces the shipped models/bisenetv2_synth.int8.* (see its model card): static INT8 of the shipped fp32 ONNX
# model (percentile calibration on 32 synthetic train frames, one per sequence), then fp32 and INT8 scored on val.
SYNTH_CALIB := build/data/synth256_calib
synth-calib: setup
	$(VENV)/bin/seg-synth --out $(SYNTH_CALIB) --split train --sequences 32 --frames-per-sequence 1 --size 256x512 --seed 1 --workers 2

bisenetv2-synth-int8: synth-calib
	$(VENV)/bin/seg-synth --out $(SYNTH_256) --split val --sequences 10 --frames-per-sequence 5 --size 256x512 --seed 2
	$(VENV)/bin/seg-quantize models/bisenetv2_synth.onnx --calibration-images $(SYNTH_CALIB)/leftImg8bit/train \
		--method percentile --check $(SYNTH_256)/leftImg8bit/val --check-frames 50
	$(VENV)/bin/seg-predict --onnx models/bisenetv2_synth.onnx --gt $(SYNTH_256) --split val --out build/pred/bisenetv2_synth
	$(VENV)/bin/seg-predict --onnx models/bisenetv2_synth.int8.onnx --gt $(SYNTH_256) --split val --out build/pred/bisenetv2_synth_int8
	$(VENV)/bin/seg-eval --gt $(SYNTH_256) --split val --semantic-dir build/pred/bisenetv2_synth
	$(VENV)/bin/seg-eval --gt $(SYNTH_256) --split val --semantic-dir build/pred/bisenetv2_synth_int8

# Reproduces the shipped models/panoptic_fpn_synth.int8.* (see its model card): static INT8 of the shipped fp32 ONNX
# model's feature layers (minmax calibration on the same 32 train frames), then fp32 and INT8 scored on val.
panoptic-fpn-synth-int8: synth-calib
	$(VENV)/bin/seg-synth --out $(SYNTH_2000) --split val --sequences 10 --frames-per-sequence 5 --size 256x512 --seed 2
	$(VENV)/bin/seg-quantize models/panoptic_fpn_synth.onnx --calibration-images $(SYNTH_CALIB)/leftImg8bit/train \
		--method minmax --check $(SYNTH_2000)/leftImg8bit/val --check-frames 50
	$(VENV)/bin/seg-predict --onnx models/panoptic_fpn_synth.onnx --gt $(SYNTH_2000) --split val --out $(PANOPTIC_PRED)
	$(VENV)/bin/seg-predict --onnx models/panoptic_fpn_synth.int8.onnx --gt $(SYNTH_2000) --split val --out $(PANOPTIC_PRED)_int8
	$(VENV)/bin/seg-eval --gt $(SYNTH_2000) --split val --semantic-dir $(PANOPTIC_PRED)/semantic \
		--instance-dir $(PANOPTIC_PRED)/instance --panoptic-json $(PANOPTIC_PRED)/panoptic/panoptic_fpn_synth.json \
		--panoptic-dir $(PANOPTIC_PRED)/panoptic/panoptic_fpn_synth
	$(VENV)/bin/seg-eval --gt $(SYNTH_2000) --split val --semantic-dir $(PANOPTIC_PRED)_int8/semantic \
		--instance-dir $(PANOPTIC_PRED)_int8/instance \
		--panoptic-json $(PANOPTIC_PRED)_int8/panoptic/panoptic_fpn_synth.int8.json \
		--panoptic-dir $(PANOPTIC_PRED)_int8/panoptic/panoptic_fpn_synth.int8

# Reproduces the shipped models/panoptic_fpn_synth.* (see its model card): the light Panoptic FPN trained from random
# weights on 2000 synthetic frames on the CPU (config/train/panoptic_fpn_synth.yaml), then the slim checkpoint, the
# ONNX export with its parity check on 20 val frames, predictions in the three official formats and their scores.
panoptic-fpn-synth: setup
	$(VENV)/bin/seg-synth --out $(SYNTH_2000) --split train --sequences 200 --frames-per-sequence 10 --size 256x512 --seed 1 --workers 2
	$(VENV)/bin/seg-synth --out $(SYNTH_2000) --split val --sequences 10 --frames-per-sequence 5 --size 256x512 --seed 2
	$(VENV)/bin/seg-train --config config/train/panoptic_fpn_synth.yaml
	$(PY) -c "from seg_perception.export.weight_compression import compress_checkpoint; \
		compress_checkpoint('$(PANOPTIC_RUN)/best.pt', 'models/panoptic_fpn_synth.pt')"
	$(VENV)/bin/seg-export --checkpoint models/panoptic_fpn_synth.pt --out models/panoptic_fpn_synth.onnx --height 256 --width 512 \
		--int8-weights --parity-images $(SYNTH_2000) --parity-frames 20
	$(VENV)/bin/seg-predict --onnx models/panoptic_fpn_synth.onnx --gt $(SYNTH_2000) --split val --out $(PANOPTIC_PRED)
	$(VENV)/bin/seg-eval --gt $(SYNTH_2000) --split val --semantic-dir $(PANOPTIC_PRED)/semantic \
		--instance-dir $(PANOPTIC_PRED)/instance --panoptic-json $(PANOPTIC_PRED)/panoptic/panoptic_fpn_synth.json \
		--panoptic-dir $(PANOPTIC_PRED)/panoptic/panoptic_fpn_synth

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf build $(VENV) *.egg-info
