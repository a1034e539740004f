"""Launch files read as Python syntax trees (the ROS ``launch`` package is not needed): every Node runs an
installed console script of this package, every parameters file it names exists, is installed and holds exactly
the node's parameters with the types of their defaults (ROS is strict about types), and every override and
launch-argument choice is a valid value of the parameter it sets. A launch file that calls
``segmentation_launch_description``, ``replay_launch_description`` or ``planning_check_launch_description``
(``default_config=...``) is read together with that shared description
(seg_perception/ros/launch_description.py), its config default filled in. Each node's parameters are checked
against its executable's settings (NODE_CONFIGS)."""

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from seg_perception.pipeline.config import BACKENDS, ConfigError, SegmentationConfig, parameter_defaults
from seg_perception.pipeline.planning import PlanningCheckConfig

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PACKAGE = "seg_perception"
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
SHARED_DESCRIPTION = REPO / "seg_perception" / "ros" / "launch_description.py"
DESCRIPTION_CALLS = (
    "segmentation_launch_description",
    "replay_launch_description",
    "planning_check_launch_description",
)
NODE_CONFIGS = {
    "segmentation_node": SegmentationConfig,
    "segmentation_lifecycle_node": SegmentationConfig,
    "planning_check": PlanningCheckConfig,
}
"""The settings dataclass of each node executable: what its parameters file must hold."""


# -- setup.py, parsed ----------------------------------------------------------------------------------------


def _setup_call() -> tuple[ast.Call, dict[str, object]]:
    """The ``setup(...)`` call of setup.py and its module-level string constants (e.g. PACKAGE)."""
    tree = ast.parse((REPO / "setup.py").read_text())
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and _call_name(node) == "setup"]
    assert len(calls) == 1, "setup.py: expected exactly one setup(...) call"
    return calls[0], constants


def _console_scripts() -> list[str]:
    """Names of the console scripts declared in setup.py."""
    call, _ = _setup_call()
    for node in ast.walk(call):
        if isinstance(node, ast.Dict) and any(getattr(k, "value", None) == "console_scripts" for k in node.keys):
            scripts = node.values[[getattr(k, "value", None) for k in node.keys].index("console_scripts")]
            return [ast.literal_eval(item).split("=")[0].strip() for item in scripts.elts]
    raise AssertionError("setup.py declares no console_scripts")


def _evaluate(node: ast.AST, constants: dict[str, object]):
    """The value of a setup.py expression built from constants, f-strings, lists, tuples, ``+`` and glob()."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return constants[node.id]
    if isinstance(node, ast.JoinedStr):
        return "".join(str(_evaluate(part, constants)) for part in node.values)
    if isinstance(node, ast.FormattedValue):
        return _evaluate(node.value, constants)
    if isinstance(node, ast.List):
        return [_evaluate(item, constants) for item in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(item, constants) for item in node.elts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _evaluate(node.left, constants) + _evaluate(node.right, constants)
    if isinstance(node, ast.Call) and _call_name(node) == "glob" and len(node.args) == 1:
        pattern = _evaluate(node.args[0], constants)
        return sorted(str(path.relative_to(REPO)) for path in REPO.glob(pattern))
    raise AssertionError(f"setup.py: cannot evaluate {ast.unparse(node)}")


def _installed_data_files() -> dict[str, list[str]]:
    """setup.py's data_files as {destination folder: [source files relative to the repository]}."""
    call, constants = _setup_call()
    data_files = next((kw.value for kw in call.keywords if kw.arg == "data_files"), None)
    assert data_files is not None, "setup.py: setup() has no data_files"
    installed: dict[str, list[str]] = {}
    for destination, sources in _evaluate(data_files, constants):
        installed.setdefault(destination, []).extend(sources)
    return installed


# -- launch files, parsed ------------------------------------------------------------------------------------


def _call_name(node: ast.Call) -> str | None:
    """``Node`` for ``Node(...)`` and ``launch_ros.actions.Node(...)``."""
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _string(node: ast.AST | None, what: str) -> str:
    assert isinstance(node, ast.Constant) and isinstance(node.value, str), f"{what}: expected a string literal"
    return node.value


@dataclass
class LaunchFile:
    path: Path
    tree: ast.AST
    """The syntax tree holding the Node and DeclareLaunchArgument calls (the shared description's, if used)."""
    nodes: list[ast.Call] = field(default_factory=list)
    arguments: dict[str, ast.Call] = field(default_factory=dict)
    """DeclareLaunchArgument calls by argument name."""
    default_config: str | None = None
    """``config/X`` the launch file passes to the shared description, else None."""

    def calls(self, name: str) -> list[ast.Call]:
        return [node for node in ast.walk(self.tree) if isinstance(node, ast.Call) and _call_name(node) == name]

    def argument_default(self, name: str) -> ast.AST | None:
        return _keyword(self.arguments[name], "default_value") if name in self.arguments else None

    def where(self, node: ast.AST) -> str:
        return f"{self.path.name}:{node.lineno}"


def _parse_launch(path: Path) -> LaunchFile:
    tree = ast.parse(path.read_text(), filename=str(path))
    shared = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and _call_name(node) in DESCRIPTION_CALLS]
    if shared:
        config = _string(_keyword(shared[0], "default_config"), f"{path.name}: {_call_name(shared[0])} default_config")
        description = ast.parse(SHARED_DESCRIPTION.read_text(), filename=str(SHARED_DESCRIPTION))
        launch = LaunchFile(path, description, default_config=f"config/{config}")
    else:
        launch = LaunchFile(path, tree)
    launch.nodes = launch.calls("Node")
    for call in launch.calls("DeclareLaunchArgument"):
        name_node = call.args[0] if call.args else _keyword(call, "name")
        launch.arguments[_string(name_node, f"{launch.where(call)} DeclareLaunchArgument name")] = call
    return launch


def _share_config_file(node: ast.AST | None, launch: LaunchFile) -> str | None:
    """``config/X`` for ``PathJoinSubstitution([FindPackageShare(PACKAGE), "config", X])`` (X a string, or the
    shared description's ``default_config``), else None."""
    if not (isinstance(node, ast.Call) and _call_name(node) == "PathJoinSubstitution"):
        return None
    assert len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple)), ast.unparse(node)
    parts = node.args[0].elts
    if not (parts and isinstance(parts[0], ast.Call) and _call_name(parts[0]) == "FindPackageShare"):
        return None
    package = parts[0].args[0] if parts[0].args else None
    if isinstance(package, ast.Name):  # the shared description's PACKAGE constant
        package = ast.Constant(_module_constants(launch.tree)[package.id])
    assert _string(package, f"{ast.unparse(node)}: package") == PACKAGE, f"{ast.unparse(node)}: another package"
    if isinstance(parts[-1], ast.Name) and parts[-1].id == "default_config" and launch.default_config:
        return launch.default_config if [_string(p, ast.unparse(node)) for p in parts[1:-1]] == ["config"] else None
    rest = [_string(part, ast.unparse(node)) for part in parts[1:]]
    return "/".join(rest) if rest and rest[0] == "config" else None


def _module_constants(tree: ast.AST) -> dict[str, object]:
    """Module-level ``NAME = constant`` assignments."""
    return {
        target.id: node.value.value
        for node in getattr(tree, "body", [])
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _dict_keys_assigned_to(tree: ast.AST, name: str) -> list[ast.Dict]:
    """The dict literals in the right-hand sides of assignments to ``name`` (e.g. ``overrides = {...}``)."""
    dicts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            dicts += [d for d in ast.walk(node.value) if isinstance(d, ast.Dict)]
    return dicts


def _launch_configuration(node: ast.AST) -> str | None:
    """The argument name of ``LaunchConfiguration("name")``, else None."""
    if isinstance(node, ast.Call) and _call_name(node) == "LaunchConfiguration":
        return _string(node.args[0] if node.args else None, ast.unparse(node))
    return None


@dataclass
class NodeParameters:
    files: list[str]
    """``config/...`` parameter files, relative to the repository (and the share folder)."""
    overrides: dict[str, ast.AST]
    """{parameter name: value expression} of the dicts in ``parameters``."""
    config_class: type
    """The node executable's settings dataclass (NODE_CONFIGS)."""


def _node_parameters(launch: LaunchFile, node: ast.Call) -> NodeParameters:
    """The parameter files and overrides of ``node``; fails on a ``parameters`` element this test cannot check."""
    executable = _string(_keyword(node, "executable"), f"{launch.where(node)} Node executable")
    assert executable in NODE_CONFIGS, f"{launch.where(node)}: no settings known for {executable!r} (NODE_CONFIGS)"
    result = NodeParameters([], {}, NODE_CONFIGS[executable])
    parameters = _keyword(node, "parameters")
    if parameters is None:
        return result
    assert isinstance(parameters, (ast.List, ast.Tuple)), f"{launch.where(node)}: parameters must be a list literal"
    for element in parameters.elts:
        dicts = [element] if isinstance(element, ast.Dict) else []
        if isinstance(element, ast.Name):  # a dict built in the function: its literal keys are the overrides
            dicts = _dict_keys_assigned_to(launch.tree, element.id)
            assert dicts, f"{launch.where(element)}: parameters element {element.id} is not assigned a dict"
        for mapping in dicts:
            for key, value in zip(mapping.keys, mapping.values, strict=True):
                if isinstance(key, ast.Constant):
                    result.overrides[_string(key, f"{launch.where(mapping)} parameter override key")] = value
        if dicts:
            continue
        target = element
        argument = _launch_configuration(element)
        if argument is not None:
            assert argument in launch.arguments, (
                f"{launch.where(element)}: parameters use LaunchConfiguration({argument!r}) but no "
                f"DeclareLaunchArgument({argument!r}) declares it"
            )
            target = launch.argument_default(argument)
            assert target is not None, f"{launch.where(element)}: launch argument {argument!r} has no default_value"
        config_file = _share_config_file(target, launch)
        assert config_file is not None, (
            f"{launch.where(element)}: cannot check parameters element {ast.unparse(element)} "
            "(expected a dict, or PathJoinSubstitution([FindPackageShare('seg_perception'), 'config', FILE]), "
            "directly or as a launch argument's default)"
        )
        result.files.append(config_file)
    return result


def _ros_parameters(config_file: str) -> dict[str, object]:
    """The ``/**: ros__parameters`` section of a parameters file."""
    data = yaml.safe_load((REPO / config_file).read_text())
    assert isinstance(data, dict) and isinstance(data.get("/**"), dict), f"{config_file}: no '/**' section"
    parameters = data["/**"].get("ros__parameters")
    assert isinstance(parameters, dict), f"{config_file}: no '/**: ros__parameters' mapping"
    return parameters


def _type_mismatch(value: object, default: object) -> str | None:
    """Why ROS would reject ``value`` for a parameter declared with ``default``, or None (types are exact:
    bool is not int, int is not float)."""
    if isinstance(default, list):
        if not isinstance(value, list):
            return f"expected a list, got {type(value).__name__} {value!r}"
        if not value:
            return "an empty list has no element type"
        element = type(default[0])
        wrong = [item for item in value if type(item) is not element]
        return f"expected a list of {element.__name__}, got items {wrong!r}" if wrong else None
    if type(value) is not type(default):
        return f"expected {type(default).__name__}, got {type(value).__name__} {value!r}"
    return None


@pytest.fixture(params=LAUNCH_FILES, ids=[path.name for path in LAUNCH_FILES])
def launch(request) -> LaunchFile:
    return _parse_launch(request.param)


def _params_files(launch: LaunchFile) -> dict[str, type]:
    """{parameters file: the settings dataclass of the node given it}."""
    files = {}
    for node in launch.nodes:
        parameters = _node_parameters(launch, node)
        for name in parameters.files:
            assert files.setdefault(name, parameters.config_class) is parameters.config_class, f"{name}: two nodes"
    return dict(sorted(files.items()))


# -- tests ---------------------------------------------------------------------------------------------------


def test_there_are_launch_files():
    assert LAUNCH_FILES, f"no launch/*.launch.py in {REPO}"


def test_type_check_is_strict():
    assert _type_mismatch(1.0, 1.0) is None and _type_mismatch([0, 0], [0, 0]) is None
    assert _type_mismatch(1, 1.0) and _type_mismatch(1.0, 1) and _type_mismatch(1, True) and _type_mismatch("1", 1)
    assert _type_mismatch([0.5, 1], [0, 0]) and _type_mismatch([], [""]) and _type_mismatch("road", ["road"])


def test_launch_file_starts_nodes_of_this_package(launch):
    assert launch.nodes, f"{launch.path.name}: no Node(...) call found (nothing would be launched)"
    scripts = _console_scripts()
    for node in launch.nodes:
        package = _string(_keyword(node, "package"), f"{launch.where(node)} Node package")
        assert package == PACKAGE, f"{launch.where(node)}: Node package {package!r}, expected {PACKAGE!r}"
        executable = _string(_keyword(node, "executable"), f"{launch.where(node)} Node executable")
        assert executable in scripts, f"{launch.where(node)}: executable {executable!r} is not in setup.py {scripts}"
        assert (VENV_BIN / executable).is_file(), f"{launch.where(node)}: {executable} not installed in {VENV_BIN}"


def test_parameters_files_exist_and_are_installed(launch):
    installed = _installed_data_files()
    share = Path(sys.prefix) / "share" / PACKAGE
    named = set(_params_files(launch))
    for call in launch.calls("PathJoinSubstitution"):  # also files outside ``parameters``, e.g. argument defaults
        config_file = _share_config_file(call, launch)
        if config_file is not None:
            named.add(config_file)
    for config_file in sorted(named):
        assert (REPO / config_file).is_file(), f"{launch.path.name}: {config_file} is not in the repository"
        destination = f"share/{PACKAGE}/{Path(config_file).parent.as_posix()}"
        assert config_file in installed.get(destination, []), (
            f"{launch.path.name}: {config_file} is not installed into {destination} by setup.py data_files"
        )
        assert (share / config_file).is_file(), f"{config_file} is not in the installed share folder {share}"


def test_every_node_names_a_parameters_file(launch):
    for node in launch.nodes:
        assert _node_parameters(launch, node).files, f"{launch.where(node)}: Node names no parameters file"


def test_parameters_file_holds_exactly_the_node_parameters_with_their_types(launch):
    for config_file, config_class in _params_files(launch).items():
        defaults, parameters = parameter_defaults(config_class), _ros_parameters(config_file)
        missing, unknown = sorted(set(defaults) - set(parameters)), sorted(set(parameters) - set(defaults))
        assert not missing and not unknown, f"{config_file}: missing parameters {missing}, unknown {unknown}"
        mismatches = {name: why for name, value in parameters.items() if (why := _type_mismatch(value, defaults[name]))}
        assert not mismatches, f"{config_file}: parameter types differ from their defaults: {mismatches}"


def test_parameters_file_is_a_valid_config(launch):
    for config_file, config_class in _params_files(launch).items():
        try:
            config_class.from_values(_ros_parameters(config_file))
        except ConfigError as error:
            pytest.fail(f"{config_file}: {error}")


def test_parameter_overrides_name_real_parameters(launch):
    for node in launch.nodes:
        node_parameters = _node_parameters(launch, node)
        defaults = parameter_defaults(node_parameters.config_class)
        for name, value in node_parameters.overrides.items():
            assert name in defaults, f"{launch.where(node)}: override of unknown parameter {name!r}"
            argument = _launch_configuration(value)
            if argument is None:
                continue
            assert argument in launch.arguments, (
                f"{launch.where(node)}: override {name!r} uses undeclared launch argument {argument!r}"
            )
            default = launch.argument_default(argument)
            if isinstance(default, ast.Constant) and isinstance(defaults[name], str) and node_parameters.files:
                values = {**_ros_parameters(node_parameters.files[-1]), name: default.value}
                try:
                    node_parameters.config_class.from_values(values)
                except ConfigError as error:
                    pytest.fail(f"{launch.where(node)}: launch argument {argument!r} default: {error}")


def _argument_parameters(launch: LaunchFile) -> dict[str, set[str]]:
    """{launch argument: parameters it sets}: the parameter of the same name, and overrides that use it."""
    defaults = parameter_defaults()
    parameters = {name: {name} & set(defaults) for name in launch.arguments}
    for node in launch.nodes:
        for name, value in _node_parameters(launch, node).overrides.items():
            argument = _launch_configuration(value)
            if argument in parameters and name in defaults:
                parameters[argument].add(name)
    return parameters


def test_launch_argument_choices_are_valid_parameter_values(launch):
    argument_parameters = _argument_parameters(launch)
    checked = 0
    for name, call in launch.arguments.items():
        choices_node = _keyword(call, "choices")
        if choices_node is None:
            continue
        choices = ast.literal_eval(choices_node)
        assert choices, f"{launch.where(call)}: argument {name!r} has empty choices"
        chosen = [choice for choice in choices if choice != ""]  # "": leave the parameters file's value
        default = _keyword(call, "default_value")
        if isinstance(default, ast.Constant):
            assert default.value in choices, f"{launch.where(call)}: default {default.value!r} not in {choices}"
        for parameter in sorted(argument_parameters[name]):
            for choice in chosen:
                try:
                    SegmentationConfig.from_values({parameter: choice})
                except ConfigError as error:
                    pytest.fail(f"{launch.where(call)}: choice {choice!r} of argument {name!r}: {error}")
            checked += 1
        if name == "backend":
            assert tuple(chosen) == BACKENDS, f"{launch.where(call)}: backend choices {choices} != {BACKENDS}"
    if "backend" in launch.arguments and _keyword(launch.arguments["backend"], "choices") is not None:
        assert checked, f"{launch.path.name}: the backend argument's choices were not checked"


def test_launch_arguments_leave_the_parameters_file_alone_and_use_no_deprecated_conditions(launch):
    backend = launch.argument_default("backend")
    assert isinstance(backend, ast.Constant) and backend.value == "", "backend must default to '' (the file's value)"
    deprecated = {"LaunchConfigurationEquals", "LaunchConfigurationNotEquals"}
    used = {name for name in deprecated if launch.calls(name)}
    assert not used, f"{launch.path.name}: deprecated launch conditions {sorted(used)}"
    for name in ("cameras", "image_topics", "respawn", "respawn_delay", "namespace", "fastdds_profile"):
        assert name in launch.arguments, f"{launch.path.name}: no {name!r} argument"


def test_panoptic_launch_file_defaults_to_the_panoptic_parameters():
    launch = _parse_launch(REPO / "launch" / "panoptic.launch.py")
    assert launch.default_config == "config/panoptic.yaml"
    assert _ros_parameters("config/panoptic.yaml")["model_path"] == "models/panoptic_fpn_synth.onnx"


def test_replay_launch_file_plays_a_bag_into_the_panoptic_node():
    launch = _parse_launch(REPO / "launch" / "replay_benchmark.launch.py")
    assert launch.default_config == "config/panoptic.yaml"
    assert "bag" in launch.arguments and launch.argument_default("bag") is None, "the bag must be a required argument"
    for name in ("rate", "play_delay", "loop", "record"):
        assert name in launch.arguments, f"no {name!r} argument"
    commands = [ast.literal_eval(element) for call in launch.calls("ExecuteProcess") for element in _command(call)]
    assert ["ros2", "bag", "play"] == commands[:3] and "--rate" in commands and "record" in commands
    assert launch.calls("TimerAction"), "the bag must start after play_delay (the model loads first)"


def _command(call: ast.Call) -> list[ast.AST]:
    """The constant words of an ExecuteProcess ``cmd`` given as a name bound to a list (or the list itself)."""
    command = _keyword(call, "cmd")
    if isinstance(command, ast.Name):
        tree = ast.parse(SHARED_DESCRIPTION.read_text())
        command = next(node for node in ast.walk(tree) if _assigns(node, command.id)).value
    return [element for element in command.elts if isinstance(element, ast.Constant)]


def _assigns(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)


def test_planning_check_launch_file_runs_planning_check_beside_the_panoptic_node():
    launch = _parse_launch(REPO / "launch" / "planning_check.launch.py")
    assert launch.default_config == "config/panoptic.yaml"
    assert "planning_config" in launch.arguments and "planning_camera" in launch.arguments
    functions = {node.name: node for node in ast.walk(launch.tree) if isinstance(node, ast.FunctionDef)}
    opaque = [
        _keyword(call, "function").id
        for call in ast.walk(functions["planning_check_launch_description"])
        if isinstance(call, ast.Call) and _call_name(call) == "OpaqueFunction"
    ]
    nodes = [call for name in opaque for call in ast.walk(functions[name]) if isinstance(call, ast.Call)]
    nodes = [call for call in nodes if _call_name(call) == "Node"]
    assert [_string(_keyword(node, "executable"), "executable") for node in nodes] == ["planning_check"]
    assert _node_parameters(launch, nodes[0]).files == ["config/planning_check.yaml"]
    remapped = ast.unparse(_keyword(nodes[0], "remappings"))
    assert "drivable_grid" in remapped and "instances" in remapped, remapped
