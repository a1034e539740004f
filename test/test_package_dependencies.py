"""Every Python import of the package is declared for a real ROS 2 install, and nothing declared goes unused.

The imports of seg_perception/ and launch/ (run time) and of test/ (tests), read with ``ast`` (lazy imports
inside functions and ``importlib.import_module("x")`` / ``find_spec("x")`` / ``__import__("x")`` included), map
through the tables below to a package.xml key (rosdep) or to a pip-only requirement of requirements/ros-*.txt.
A module in no table fails the test: a new import needs a decision (rosdep key, pip only, or optional).
"""

import ast
import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "seg_perception"
RUNTIME_SOURCES = ("seg_perception", "launch")
TEST_SOURCES = ("test",)
ROS_REQUIREMENTS = ("requirements/ros-runtime.txt", "requirements/ros-torch.txt")

ROSDEP_KEYS = {
    "rclpy": "rclpy",
    "builtin_interfaces": "builtin_interfaces",
    "rcl_interfaces": "rcl_interfaces",
    "std_msgs": "std_msgs",
    "sensor_msgs": "sensor_msgs",
    "nav_msgs": "nav_msgs",
    "diagnostic_msgs": "diagnostic_msgs",
    "seg_perception_msgs": "seg_perception_msgs",
    "vision_msgs": "vision_msgs",
    "ament_index_python": "ament_index_python",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "tqdm": "python3-tqdm",
    "PIL": "python3-pil",
    "matplotlib": "python3-matplotlib",
    "onnxruntime": "python3-onnxruntime-pip",
    "rosbags": "python3-rosbags-pip",
    "pytest": "python3-pytest",
    "lifecycle_msgs": "lifecycle_msgs",
}
"""Top-level module -> its key in package.xml (rosdistro rosdep/base.yaml, python.yaml)."""

PIP_KEYS = {"python3-onnxruntime-pip": "onnxruntime", "python3-rosbags-pip": "rosbags"}
"""rosdep pip keys -> their distribution, also in requirements/ros-runtime.txt (for installs that skip pip keys)."""

PIP_ONLY = {"apsw": "apsw", "onnx": "onnx", "torch": "torch", "torchvision": "torchvision"}
"""Module -> distribution in requirements/ros-*.txt: no rosdep key, or only one older than this code needs."""

TEST_PIP_ONLY = {"cityscapesscripts": "cityscapesscripts"}
"""Test-only module -> distribution in requirements.txt (no rosdep key)."""

INSTALLED_WITH = {"google": "onnx"}
"""Module imported directly but installed as a dependency of another (google.protobuf comes with onnx)."""

OPTIONAL_SYSTEM = {"tensorrt": "TensorRT backend: JetPack or NVIDIA's packages, neither rosdep nor PyPI"}
"""Module not installable through rosdep or pip; its import is guarded."""

BUILD_TOOL_KEYS = {"python3-setuptools"}
"""buildtool_depend keys: setup.py's, not imported by the package."""

TEST_PLUGIN_KEYS = {"python3-pytest-timeout"}
"""test_depend keys of pytest plugins (pytest.ini --timeout), never imported."""

CONSTRAINT_ONLY = {"numpy", "setuptools"}
"""Requirements of requirements/ros-runtime.txt that only bound what pip may install beside the distro's."""


def _imported_modules(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """Top-level module -> files (relative to the repository) that import it absolutely."""
    found: dict[str, set[str]] = defaultdict(set)
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            where = str(path.relative_to(REPO))
            for node in ast.walk(ast.parse(path.read_text(), filename=where)):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Call) and _dynamic_import(node):
                    names = [node.args[0].value]
                for name in names:
                    found[name.split(".")[0]].add(where)
    return found


def _dynamic_import(call: ast.Call) -> bool:
    """``import_module("x")``, ``find_spec("x")`` or ``__import__("x")`` with a constant module name."""
    function = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
    constant = bool(call.args) and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
    return function in ("import_module", "find_spec", "__import__") and constant


def _third_party(found: dict[str, set[str]]) -> dict[str, set[str]]:
    return {m: files for m, files in found.items() if m != PACKAGE and m not in sys.stdlib_module_names}


def _package_xml() -> dict[str, set[str]]:
    root = ET.parse(REPO / "package.xml").getroot()
    tags = ("buildtool_depend", "build_depend", "exec_depend", "depend", "test_depend")
    return {tag: {element.text.strip() for element in root.iter(tag)} for tag in tags}


def _requirement_names(*files: str) -> set[str]:
    """Distribution names (lower case) required by ``files`` (``-r`` lines and comments skipped)."""
    names = set()
    for file in files:
        for line in (REPO / file).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                names.add(re.split(r"[\s<>=!~;\[]", line)[0].lower())
    return names


def _unknown(modules: dict[str, set[str]], known: set[str]) -> list[str]:
    return [f"{m} (imported by {', '.join(sorted(files))})" for m, files in sorted(modules.items()) if m not in known]


def test_every_runtime_import_is_declared():
    imports = _third_party(_imported_modules(RUNTIME_SOURCES))
    known = set(ROSDEP_KEYS) | set(PIP_ONLY) | set(INSTALLED_WITH) | set(OPTIONAL_SYSTEM)
    unknown = _unknown(imports, known)
    assert not unknown, (
        f"imports no table of {Path(__file__).name} knows: {unknown}. Decide for each: a rosdep key (package.xml "
        "exec_depend + ROSDEP_KEYS), pip only (requirements/ros-runtime.txt or ros-torch.txt + PIP_ONLY), or optional"
    )
    declared = _package_xml()
    exec_keys = declared["exec_depend"] | declared["depend"]
    missing = {m: ROSDEP_KEYS[m] for m in imports if m in ROSDEP_KEYS and ROSDEP_KEYS[m] not in exec_keys}
    assert not missing, f"imported at run time but not an exec_depend of package.xml: {missing}"
    pip_names = _requirement_names(*ROS_REQUIREMENTS)
    pip_missing = {m: d for m, d in PIP_ONLY.items() if m in imports and d not in pip_names}
    assert not pip_missing, f"pip-only imports missing from {ROS_REQUIREMENTS}: {pip_missing}"
    providers = {m: p for m, p in INSTALLED_WITH.items() if m in imports and p not in pip_names}
    assert not providers, f"the distributions that bring these imports are not required: {providers}"
    pip_keys = {key for key in exec_keys if key.endswith("-pip")}
    assert pip_keys == set(PIP_KEYS), f"pip keys of package.xml vs PIP_KEYS: {sorted(pip_keys ^ set(PIP_KEYS))}"
    assert set(PIP_KEYS.values()) <= pip_names, f"requirements/ros-runtime.txt lacks one of {PIP_KEYS}"


def test_every_test_import_is_declared():
    imports = _third_party(_imported_modules(TEST_SOURCES))
    known = set(ROSDEP_KEYS) | set(PIP_ONLY) | set(TEST_PIP_ONLY) | set(INSTALLED_WITH) | set(OPTIONAL_SYSTEM)
    unknown = _unknown(imports, known)
    assert not unknown, f"test imports no table knows: {unknown}; add a test_depend (or a pip-only test tool)"
    declared = _package_xml()
    keys = declared["exec_depend"] | declared["depend"] | declared["test_depend"]
    missing = {m: ROSDEP_KEYS[m] for m in imports if m in ROSDEP_KEYS and ROSDEP_KEYS[m] not in keys}
    assert not missing, f"imported by tests but neither an exec_depend nor a test_depend: {missing}"
    dev = _requirement_names("requirements.txt")
    assert all(d in dev for m, d in TEST_PIP_ONLY.items() if m in imports), "test tools missing in requirements.txt"


def test_nothing_declared_is_unused():
    runtime = _third_party(_imported_modules(RUNTIME_SOURCES))
    tests = _third_party(_imported_modules(TEST_SOURCES))
    declared = _package_xml()
    unused_exec = (declared["exec_depend"] | declared["depend"]) - {ROSDEP_KEYS[m] for m in runtime if m in ROSDEP_KEYS}
    assert not unused_exec, f"exec_depend of package.xml that nothing at run time imports: {sorted(unused_exec)}"
    used_in_tests = {ROSDEP_KEYS[m] for m in tests if m in ROSDEP_KEYS} | TEST_PLUGIN_KEYS
    unused_test = declared["test_depend"] - used_in_tests
    assert not unused_test, f"test_depend that no test imports: {sorted(unused_test)}"
    assert declared["buildtool_depend"] == BUILD_TOOL_KEYS, declared["buildtool_depend"]
    assert not declared["build_depend"], f"an ament_python package builds nothing: {declared['build_depend']}"
    pip_used = {table[m] for table in (PIP_ONLY, INSTALLED_WITH) for m in runtime if m in table}
    pip_used |= {PIP_KEYS[key] for key in declared["exec_depend"] if key in PIP_KEYS}
    unused_pip = _requirement_names(*ROS_REQUIREMENTS) - pip_used - CONSTRAINT_ONLY
    assert not unused_pip, f"requirements/ros-*.txt entries nothing imports: {sorted(unused_pip)}"


def test_tables_hold_no_stale_entries():
    imported = set(_third_party(_imported_modules(RUNTIME_SOURCES + TEST_SOURCES)))
    tables = {**ROSDEP_KEYS, **PIP_ONLY, **TEST_PIP_ONLY, **INSTALLED_WITH, **OPTIONAL_SYSTEM}
    stale = sorted(set(tables) - imported)
    assert not stale, f"modules in the tables that nothing imports any more: {stale}"


def test_ros_requirements_hold_ranges_and_no_ros_wheels():
    """A real ROS install gets ranges (wheels for Python 3.10-3.12), never the PyPI ROS wheels of the dev .venv."""
    names = _requirement_names(*ROS_REQUIREMENTS)
    assert not {n for n in names if n.startswith(("ros-", "colcon"))}, f"ROS wheels or build tools: {sorted(names)}"
    for file in ROS_REQUIREMENTS:
        pins = [line for line in (REPO / file).read_text().splitlines() if "==" in line.split("#")[0]]
        assert not pins, f"{file}: exact pins belong in constraints.txt (the dev .venv): {pins}"
