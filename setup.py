"""ament_python package: builds with colcon (ROS 2) and with pip (``make setup``)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "seg_perception"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/config/train", glob("config/train/*.yaml")),
        (
            f"share/{PACKAGE}/models",
            glob("models/*.md") + glob("models/*.onnx") + glob("models/*.onnx.json") + glob("models/*.pt"),
        ),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="seg_perception developers",
    maintainer_email="dev@seg-perception.invalid",
    description="ROS 2 semantic and panoptic segmentation for driving cameras",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "seg-synth = seg_perception.tools.synth:main",
            "seg-eval = seg_perception.tools.evaluate:main",
            "seg-eval-bev = seg_perception.tools.evaluate_bev:main",
            "seg-demo = seg_perception.tools.demo:main",
            "seg-train = seg_perception.tools.train:main",
            "seg-export = seg_perception.tools.export:main",
            "seg-bench-models = seg_perception.tools.bench_models:main",
            "seg-bench-detection = seg_perception.tools.bench_detection:main",
            "seg-predict = seg_perception.tools.predict:main",
            "seg-bench-node = seg_perception.tools.bench_node:main",
            "seg-bag = seg_perception.tools.bag:main",
            "seg-replay-bench = seg_perception.tools.replay_bench:main",
            "segmentation_node = seg_perception.ros.entry_points:segmentation_node",
            "segmentation_lifecycle_node = seg_perception.ros.entry_points:segmentation_lifecycle_node",
            "planning_check = seg_perception.ros.entry_points:planning_check",
            "seg-build-engine = seg_perception.tools.build_engine:main",
            "seg-quantize = seg_perception.tools.quantize:main",
            "seg-predict-bev = seg_perception.tools.predict_bev:main",
        ],
    },
)
