"""Recipe configuration: a dataclass whose every field is also a command-line flag."""

import argparse
import dataclasses
import json
import math
import typing
from pathlib import Path

from nlpkit.manifest import check_targets


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
    config = config_class(**values)
    problem = config_problem(config)
    if problem:
        parser.error(problem)
    return config


# The range of each hyper-parameter the recipes share, by field name: a name means one concept
# in every recipe (DESIGN.md), so one table serves them all. (low, high, low_open, high_open);
# None is unbounded. A field may carry its own ``metadata={"range": (...)}`` instead.
_RANGES = {
    "epochs": (1, None, False, False),
    "batch_size": (1, None, False, False),
    "learning_rate": (0, None, True, False),
    "self_train_learning_rate": (0, None, True, False),
    "units": (1, None, False, False),
    "lstm_units": (1, None, False, False),
    "embedding_dim": (1, None, False, False),
    "word_embedding_dim": (1, None, False, False),
    "num_layers": (1, None, False, False),
    "encoder_layers": (1, None, False, False),
    "ensemble_size": (1, None, False, False),
    "max_length": (1, None, False, False),
    "max_word_length": (1, None, False, False),
    "seq_len": (1, None, False, False),
    "beam_width": (1, None, False, False),
    "vocabulary_size": (4, None, False, False),
    "min_frequency": (1, None, False, False),
    "pretrain_min_frequency": (1, None, False, False),
    "pretrain_window": (1, None, False, False),
    "char_kernel_size": (1, None, False, False),
    "patience": (0, None, False, False),
    "backup_steps": (0, None, False, False),
    "self_train_epochs": (0, None, False, False),
    "clipnorm": (0, None, False, False),
    "max_minutes": (0, None, False, False),
    "minutes": (0, None, True, False),
    "temperature": (0, None, True, False),
    "top_p": (0, 1, True, False),
    "top_k": (0, None, False, False),
    "self_train_threshold": (0, 1, False, False),
    "label_smoothing": (0, 1, False, True),
    "ema_momentum": (0, 1, False, True),
    "lr_decay": (0, 1, True, False),
    "lr_decay_factor": (0, 1, True, False),
    "plateau_factor": (0, 1, True, False),
    **{
        name: (0, 1, False, True)
        for name in ("dropout", "embedding_dropout", "recurrent_dropout", "input_dropout", "output_dropout",
                     "weight_dropout", "char_dropout", "word_dropout", "singleton_dropout")
    },
}


def config_problem(config):
    """The first out-of-range or non-finite value of a recipe config, as a message; None if all are fine.

    Every float must be finite (``--learning-rate nan`` would train to a NaN model), and the
    fields of the shared table above must lie in their range (``--epochs -1`` would otherwise
    fail deep inside Keras with a message that does not name the flag).

    Example:
        >>> config_problem(Config(epochs=-1))
        '--epochs must be >= 1. Received: -1'
    """
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name == "targets":
            try:
                check_targets(value)
            except ValueError as error:
                return f"--targets: {error}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, float) and not math.isfinite(value):
            return f"{flag} must be a finite number. Received: {value}"
        bounds = field.metadata.get("range", _RANGES.get(field.name))
        if bounds is None:
            continue
        low, high, low_open, high_open = bounds
        if low is not None and (value <= low if low_open else value < low):
            return f"{flag} must be {'>' if low_open else '>='} {low}. Received: {value}"
        if high is not None and (value >= high if high_open else value > high):
            return f"{flag} must be {'<' if high_open else '<='} {high}. Received: {value}"
    return None


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
