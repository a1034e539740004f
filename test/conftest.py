"""Test-session settings shared by every test module.

ROS traffic stays on this machine: loopback discovery, a loopback-only Fast DDS profile and a
random ROS_DOMAIN_ID per session (so parallel or leftover runs never cross-talk). Set here at
import time so that node processes started by tests inherit them.
"""

import os
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO / "config" / "fastdds_localhost.xml")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))
