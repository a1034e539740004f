"""The start-up path every node of this package shares: ``--help``, ``rclpy.init``, building the node, spinning,
stopping.

Any failure before the node spins (ROS arguments or params file that rcl cannot parse, a bad parameter, a
missing or unusable model) ends the process with one line ``<executable>: error: <reason>`` on stderr and exit
code 2, never a traceback. A signal at any time ends it cleanly with exit code 0: SIGINT raises
KeyboardInterrupt; SIGTERM makes rclpy shut the context down, after which rcl calls fail (during start-up) or the
executor stops (while spinning).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

EXIT_STARTUP_ERROR = 2
_RCL_LOCATION = re.compile(r",? at \S+:\d+")
"""rcl appends the C source location of an error (", at /project/src/rcl/arguments.c:415"); users need none of it."""


def one_line(error: BaseException) -> str:
    """``error`` as one readable line: rcl's source locations dropped, the type named for unexpected errors."""
    text = " ".join(_RCL_LOCATION.sub("", str(error)).split())
    expected = isinstance(error, (ValueError, OSError, RuntimeError, TypeError, LookupError))
    return text if expected and text else f"{type(error).__name__}: {text}"


def run_node(executable: str, make_node: Callable[[], Node], argv: Sequence[str] | None = None, usage: str = "") -> int:
    """Run the node ``make_node()`` builds until SIGINT/SIGTERM; returns the exit code (0, or 2 when it cannot
    start). ``argv``: the command line (default ``sys.argv``); ``-h`` / ``--help`` outside the ROS arguments print
    ``usage``. ``make_node`` raises whatever it likes for a bad configuration; the node it returns must have
    ``stop()`` (worker threads, backend), which is called before the node is destroyed. A node with a ``finished``
    Future (a managed node, after its shutdown transition) ends the process with 0 once that is done."""
    argv = list(sys.argv if argv is None else argv)
    try:
        user_args = rclpy.utilities.remove_ros_args(argv)[1:]
        if {"-h", "--help"} & set(user_args):
            print(usage)
            return 0
        rclpy.init(args=argv)
        _forward_package_logging(executable)
    except KeyboardInterrupt:
        return 0
    except Exception as error:  # ROS arguments or a params file rcl cannot parse
        return _startup_failed(executable, error)
    node = None
    try:
        node = make_node()
    except KeyboardInterrupt:
        rclpy.try_shutdown()
        return 0
    except Exception as error:
        if not rclpy.ok():  # SIGTERM shut the context down while the node was being built
            return 0
        rclpy.try_shutdown()
        return _startup_failed(executable, error)
    try:
        finished = getattr(node, "finished", None)
        if finished is None:
            rclpy.spin(node)
        else:
            rclpy.spin_until_future_complete(node, finished)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():  # a failure while running
            raise
        # else a callback ran into the context SIGINT/SIGTERM had just shut down: that is the clean stop
    finally:
        _stop_node(executable, node)
    return 0


def _stop_node(executable: str, node: Node) -> None:
    """Stop and destroy ``node``, then shut rclpy down. After a signal an error while tearing down (a handle the
    shut-down context already invalidated) is reported on one line, not raised: the stop was asked for."""
    try:
        node.stop()
        node.destroy_node()
    except Exception as error:
        if rclpy.ok():
            raise
        print(f"{executable}: warning: while stopping: {one_line(error)}", file=sys.stderr)
    finally:
        rclpy.try_shutdown()


class _RosLogHandler(logging.Handler):
    """Python logging records -> an rclpy logger (so the package's library warnings show as ROS log lines)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._logger = rclpy.logging.get_logger(name)

    def emit(self, record: logging.LogRecord) -> None:
        log = {
            logging.DEBUG: self._logger.debug,
            logging.INFO: self._logger.info,
            logging.WARNING: self._logger.warning,
        }
        log.get(record.levelno, self._logger.error)(self.format(record))


def _forward_package_logging(executable: str) -> None:
    """Send this package's Python logging (INFO and up) to the ROS logger ``executable``."""
    package = logging.getLogger(__name__.split(".")[0])
    package.handlers = [_RosLogHandler(executable)]
    package.setLevel(logging.INFO)
    package.propagate = False


def _startup_failed(executable: str, error: BaseException) -> int:
    print(f"{executable}: error: {one_line(error)}", file=sys.stderr)
    return EXIT_STARTUP_ERROR
