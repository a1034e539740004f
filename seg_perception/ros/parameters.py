"""ROS parameters from a settings dataclass of ``pipeline/config.py``: one read-only parameter per field (name,
default and description from the dataclass), unknown names in the params files or ``-p`` rejected."""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from seg_perception.pipeline.config import (
    ConfigError,
    parameter_defaults,
    parameter_description,
    unknown_parameters_message,
)


def declare_config(node: Node, config_class: type) -> Any:
    """Declare every field of ``config_class`` on ``node`` (read-only) and build the config from the values given
    at start-up. ConfigError naming the parameter for a bad value, and for a name given in a params file or by
    ``-p`` that is neither declared here nor by rclpy (``use_sim_time``, ...), with the nearest valid name;
    rclpy's InvalidParameterTypeException for a value whose ROS type differs from the default's. Parameters
    declared by an earlier call (a managed node configured again) are read, not declared again."""
    values = {}
    for name, default in parameter_defaults(config_class).items():
        if node.has_parameter(name):
            values[name] = node.get_parameter(name).value
            continue
        descriptor = ParameterDescriptor(description=parameter_description(name, config_class), read_only=True)
        values[name] = node.declare_parameter(name, default, descriptor).value
    # rclpy keeps the values of the params files and -p (already filtered to this node's name) in
    # _parameter_overrides, from Humble to Kilted; there is no public accessor.
    unknown = [name for name in node._parameter_overrides if not node.has_parameter(name)]
    if unknown:
        raise ConfigError(unknown_parameters_message(unknown, parameter_defaults(config_class)))
    return config_class.from_values(values)


def parameter_help(config_class: type) -> list[str]:
    """``  name (default value): description`` of every field of ``config_class``, for a node's --help."""
    return [
        f"  {name} (default {default!r}): {parameter_description(name, config_class)}"
        for name, default in parameter_defaults(config_class).items()
    ]
