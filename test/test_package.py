"""The installed ament_python package: share folder found through ament_index, console scripts present,
package.xml consistent with setup.py."""

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def _console_scripts() -> list[str]:
    """Names of the console scripts declared in setup.py (parsed, not imported)."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and any(getattr(k, "value", None) == "console_scripts" for k in node.keys):
            scripts = node.values[[k.value for k in node.keys].index("console_scripts")]
            return [ast.literal_eval(item).split("=")[0].strip() for item in scripts.elts]
    raise AssertionError("setup.py declares no console_scripts")


def test_share_directory_is_found_through_ament_index():
    code = "from ament_index_python.packages import get_package_share_directory as g; print(g('seg_perception'))"
    env = {**os.environ, "AMENT_PREFIX_PATH": sys.prefix}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    share = Path(run.stdout.strip())
    for relative in ("package.xml", "config/fastdds_localhost.xml", "config/train/bisenetv2.yaml"):
        assert (share / relative).is_file(), relative
    for card in (REPO / "models").glob("*.md"):
        assert (share / "models" / card.name).is_file(), card.name


def test_every_console_script_is_installed_and_answers_help():
    scripts = _console_scripts()
    assert {"seg-synth", "seg-eval", "seg-demo", "seg-train", "seg-export", "seg-predict"} <= set(scripts)
    for name in scripts:
        run = subprocess.run([str(VENV_BIN / name), "--help"], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and "usage:" in run.stdout, (name, run.stderr[-500:])


def test_package_xml_is_format_3_and_matches_setup():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "seg_perception"
    assert root.find("export/build_type").text == "ament_python"
    depends = {element.text for element in root.iter("exec_depend")}
    assert {"rclpy", "sensor_msgs", "diagnostic_msgs", "python3-numpy", "python3-opencv"} <= depends
    assert (REPO / "resource" / "seg_perception").is_file()
