"""colcon builds both packages as a ROS 2 user would (README: a workspace whose src/ holds the repository, both packages
named with --base-paths), plain and with --symlink-install, and segmentation_node runs from each install with
the environment colcon's setup.bash gives: it loads the installed model, answers a camera frame with a mask and
stops on SIGINT. Slow part: the message package (rosidl, about 30 s), built once for the module.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seg_perception.ros.harness.client import NodeClient, image_msg

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
PACKAGE = "seg_perception"
BASE_PATHS = ("src/seg_perception", "src/seg_perception/seg_perception_msgs")


def _colcon(workspace: Path, *args: str, timeout: float) -> None:
    """``colcon build ...`` in ``workspace`` with this venv's colcon and ROS wheels (as the Makefile builds)."""
    env = {
        **os.environ,
        "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "CMAKE_PREFIX_PATH": str(VENV),
        "AMENT_PREFIX_PATH": str(VENV),
        "MAKEFLAGS": "-j1",
    }
    command = [str(VENV / "bin" / "colcon"), "--log-base", "log", "build", "--base-paths", *BASE_PATHS, *args]
    run = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"{' '.join(command[3:])}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"


def _sourced_environment(*scripts: Path) -> dict[str, str]:
    """The environment after ``source``-ing colcon's setup scripts in bash, starting from this venv's. The
    workspaces' local_setup.bash, not setup.bash: their underlay is this venv itself (where the Makefile merged the
    messages), whose setup would put its site-packages before the standard library on PYTHONPATH (and with it
    cityscapesscripts' ``typing`` backport); on a real install setup.bash chains /opt/ros/<distro> instead."""
    sources = " && ".join(f'source "{script}"' for script in scripts)
    base = {**os.environ, "AMENT_PREFIX_PATH": str(VENV)}
    base.pop("PYTHONPATH", None)
    run = subprocess.run(["bash", "-c", f"{sources} && env -0"], env=base, capture_output=True, timeout=60, check=True)
    return dict(item.split("=", 1) for item in run.stdout.decode().split("\0") if "=" in item)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """<tmp>/src/seg_perception -> this repository; both packages built plain into install/ (once)."""
    root = tmp_path_factory.mktemp("colcon_ws")
    (root / "src").mkdir()
    (root / "src" / PACKAGE).symlink_to(REPO)
    _colcon(root, timeout=400)
    return root


@pytest.fixture(scope="module")
def symlink_install(workspace: Path) -> Path:
    """seg_perception built again with --symlink-install into install_symlink/ (its messages: install/)."""
    args = ("--symlink-install", "--packages-select", PACKAGE, "--build-base", "build_symlink")
    _colcon(workspace, *args, "--install-base", "install_symlink", timeout=120)
    return workspace / "install_symlink"


def _run_node_from(prefix: Path, env: dict[str, str], namespace: str, workspace: Path) -> Path:
    """segmentation_node of ``prefix``: the package and messages import from the workspace, a frame gets a mask,
    SIGINT ends it with exit code 0. Returns the seg_perception/__init__.py that ``env`` imports."""
    probe = "import seg_perception, seg_perception_msgs.msg as m; print(seg_perception.__file__); print(m.__file__)"
    imported = subprocess.run(
        [sys.executable, "-c", probe], cwd=workspace, env=env, capture_output=True, text=True, timeout=60
    )
    assert imported.returncode == 0, imported.stderr[-2000:]
    for path in imported.stdout.split():
        assert Path(path).is_relative_to(workspace), f"imported from outside the workspace: {path}"
    share = prefix / PACKAGE / "share" / PACKAGE
    command = [
        str(prefix / PACKAGE / "lib" / PACKAGE / "segmentation_node"),
        "--ros-args",
        "--params-file",
        str(share / "config" / "semantic.yaml"),
        "-p",
        f"model_path:={share / 'models' / 'bisenetv2_synth.onnx'}",
        "-p",
        "threads:=1",
        "-r",
        f"__ns:=/{namespace}",
    ]
    node = subprocess.Popen(
        command, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        with NodeClient(name=f"{namespace}_client", namespace=f"/{namespace}", outputs=("semantic/mask",)) as client:
            assert client.wait_connected(timeout=60), "the node from the install never subscribed"
            client.prime({"": image_msg(np.zeros((64, 128, 3), np.uint8), 0)}, timeout=60)
        node.send_signal(signal.SIGINT)
        output, _ = node.communicate(timeout=30)
        assert node.returncode == 0, output[-3000:]
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    return Path(imported.stdout.split()[0])


def test_plain_build_installs_a_launchable_node(workspace: Path):
    install = workspace / "install"
    share = install / PACKAGE / "share" / PACKAGE
    assert (install / PACKAGE / "lib" / PACKAGE / "segmentation_node").is_file()  # where launch_ros / ros2 run look
    assert (share / "package.xml").is_file() and not (share / "package.xml").is_symlink()
    assert (install / "seg_perception_msgs" / "share" / "seg_perception_msgs" / "package.xml").is_file()
    env = _sourced_environment(install / "local_setup.bash")
    package = _run_node_from(install, env, "colcon_plain", workspace)
    assert package.is_relative_to(install / PACKAGE / "lib"), package  # a copy in the install


def test_symlink_install_links_the_sources_and_runs(workspace: Path, symlink_install: Path):
    share = symlink_install / PACKAGE / "share" / PACKAGE
    assert (share / "package.xml").resolve() == REPO / "package.xml"  # a symlink install, not a copy
    assert (share / "config" / "semantic.yaml").resolve() == REPO / "config" / "semantic.yaml"
    env = _sourced_environment(workspace / "install" / "local_setup.bash", symlink_install / "local_setup.bash")
    package = _run_node_from(symlink_install, env, "colcon_symlink", workspace)
    assert package.resolve() == REPO / PACKAGE / "__init__.py", package  # the sources themselves
