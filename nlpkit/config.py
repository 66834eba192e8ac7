"""Recipe configuration: a dataclass whose every field is also a command-line flag."""

import argparse
import dataclasses
import json
import typing
from pathlib import Path


def config_parser(config_class, prog=None, description=None):
    """Builds an ``argparse`` parser with one ``--flag`` per dataclass field.

    Booleans get ``--flag/--no-flag``; ``--config FILE.json`` loads field values from a file,
    and flags given on the command line override the file.

    Example:
        >>> parser = config_parser(Config)
        >>> parser.parse_args(["--epochs", "3"]).epochs
        3
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", type=Path, help="JSON file with config values; flags override it")
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        help_text = field.metadata.get("help", "")
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        if kind is bool:
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                                default=None, help=f"{help_text} (default: {default})")
        else:
            parser.add_argument(flag, dest=field.name, type=_scalar_type(kind), default=None,
                                metavar=field.name.upper(), help=f"{help_text} (default: {default!r})")
    return parser


def parse_config(config_class, argv=None, prog=None, description=None):
    """Parses ``argv`` into a ``config_class`` instance (defaults < config file < flags)."""
    parser = config_parser(config_class, prog=prog, description=description)
    args = parser.parse_args(argv)
    values = {}
    if args.config is not None:
        values.update(load_config_file(args.config, config_class))
    values.update({key: value for key, value in vars(args).items() if key != "config" and value is not None})
    return config_class(**values)


def load_config_file(path, config_class):
    """Reads a JSON config file and checks its keys against the dataclass fields."""
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(f"config file not found: {path}") from None
    except ValueError as error:
        raise SystemExit(f"{path}: not valid JSON ({error})") from None
    if not isinstance(values, dict):
        raise SystemExit(f"{path}: expected a JSON object of config values, found {type(values).__name__}")
    known = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SystemExit(f"{path}: unknown config keys {unknown}; known keys: {sorted(known)}")
    hints = typing.get_type_hints(config_class)
    return {key: _check_file_value(path, key, value, hints[key]) for key, value in values.items()}


def _check_file_value(path, key, value, kind):
    # Flags are converted by argparse; file values are not, and "false" or "3" in a JSON file
    # would otherwise reach the recipe as a truthy string or a str where an int belongs.
    if typing.get_origin(kind) is typing.Union:  # Optional[X]
        if value is None:
            return value
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    raise SystemExit(f"{path}: config key {key!r} must be {kind.__name__}, found {value!r}")


def _scalar_type(kind):
    if typing.get_origin(kind) is typing.Union:  # Optional[X]
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    if kind not in (int, float, str):
        raise TypeError(f"unsupported config field type {kind!r}")
    return kind
