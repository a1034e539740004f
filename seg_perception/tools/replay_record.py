"""``seg-replay-bench --record``: the node's outputs, as they arrive, into a rosbag2 bag (rosbags, mcap), one topic
per output, recorded at their header stamps. seg_perception_msgs types are registered in the writer's type store
from the message package's .msg files (its share folder), so other rosbag2 readers can decode them."""

from __future__ import annotations

import sys
from pathlib import Path

from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

MESSAGE_PACKAGE = "seg_perception_msgs"


def _message_folder() -> Path:
    """seg_perception_msgs' msg/ folder: its share folder (ament index, then this Python's prefix), else the source
    checkout. ValueError when none has it."""
    places = []
    try:
        from ament_index_python.packages import get_package_share_directory

        places.append(Path(get_package_share_directory(MESSAGE_PACKAGE)) / "msg")
    except (LookupError, OSError):  # not on the ament index, or AMENT_PREFIX_PATH unset
        pass
    places += [
        Path(sys.prefix) / "share" / MESSAGE_PACKAGE / "msg",
        Path(__file__).resolve().parents[2] / MESSAGE_PACKAGE / "msg",
    ]
    for folder in places:
        if any(folder.glob("*.msg")):
            return folder
    raise ValueError(f"no {MESSAGE_PACKAGE} message definitions in {', '.join(map(str, places))}")


def _typestore():
    """The Kilted type store plus this package's messages."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted(_message_folder().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{MESSAGE_PACKAGE}/msg/{path.stem}"))
    store.register(types)
    return store


class OutputRecorder:
    """``add(topic, message)`` for every output message (any ROS message with a header); ``close()`` -> the bag."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._store = _typestore()
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections: dict[str, object] = {}

    def add(self, topic: str, message) -> None:
        if topic not in self._connections:
            kind = type(message)
            msgtype = f"{kind.__module__.split('.')[0]}/msg/{kind.__name__}"
            self._connections[topic] = self._writer.add_connection(f"/{topic}", msgtype, typestore=self._store)
        stamp = message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
        self._writer.write(self._connections[topic], stamp, serialize_message(message))

    def close(self) -> Path:
        self._writer.close()
        return self.path
