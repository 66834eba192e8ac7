"""Tests for nlpkit.config: dataclass fields as flags, JSON config files, precedence."""

import dataclasses
import json
from typing import Optional

import pytest

from nlpkit.config import config_parser, load_config_file, parse_config


@dataclasses.dataclass
class ExampleConfig:
    """A recipe-like config with one field of every supported type.

    Args:
        name, epochs, learning_rate, shuffle, verbose, limit, scale, tags: see the defaults.

    Example:
        >>> parse_config(ExampleConfig, ["--epochs", "5"]).epochs
        5
    """

    name: str = "demo"
    epochs: int = 3
    learning_rate: float = 0.5
    shuffle: bool = True
    verbose: bool = False
    limit: Optional[int] = None
    scale: Optional[float] = dataclasses.field(default=None, metadata={"help": "optional scale"})
    tags: str = dataclasses.field(default_factory=lambda: "a,b", metadata={"help": "comma-separated tags"})


def write_json(path, values):
    path.write_text(json.dumps(values))
    return path


def test_no_flags_give_the_defaults():
    assert parse_config(ExampleConfig, []) == ExampleConfig()


def test_flags_for_every_field_type():
    config = parse_config(
        ExampleConfig,
        ["--name", "run 1", "--epochs", "7", "--learning-rate", "1e-3", "--limit", "12",
         "--scale", "2", "--tags", "x"],
    )
    assert config == ExampleConfig(name="run 1", epochs=7, learning_rate=1e-3, limit=12, scale=2.0, tags="x")
    assert isinstance(config.epochs, int) and isinstance(config.learning_rate, float)
    assert isinstance(config.scale, float)


def test_boolean_flags_and_their_negations():
    assert parse_config(ExampleConfig, ["--no-shuffle", "--verbose"]) == ExampleConfig(shuffle=False, verbose=True)
    assert parse_config(ExampleConfig, ["--shuffle", "--no-verbose"]) == ExampleConfig()


@pytest.mark.parametrize("argv", [["--epochs", "3.5"], ["--learning-rate", "fast"], ["--limit", "x"]])
def test_badly_typed_flags_are_rejected_by_argparse(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(ExampleConfig, argv)
    assert exit_info.value.code == 2
    assert repr(argv[1]) in capsys.readouterr().err


def test_unknown_flags_are_rejected(capsys):
    with pytest.raises(SystemExit):
        parse_config(ExampleConfig, ["--epocs", "3"])
    assert "--epocs" in capsys.readouterr().err


def test_help_lists_flags_with_defaults_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(ExampleConfig, ["--help"], prog="nlpkit train example", description="An example.")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "nlpkit train example" in out and "An example." in out
    for text in ("--learning-rate", "--no-shuffle", "--config", "(default: 0.5)", "optional scale", "(default: 'a,b')"):
        assert text in out, text


def test_parser_defaults_are_none_so_files_can_fill_them():
    args = config_parser(ExampleConfig).parse_args([])
    assert all(value is None for value in vars(args).values())


def test_config_file_values(tmp_path):
    path = write_json(tmp_path / "config.json", {"epochs": 9, "shuffle": False, "limit": None, "scale": 3})
    assert parse_config(ExampleConfig, ["--config", str(path)]) == ExampleConfig(epochs=9, shuffle=False, scale=3.0)


def test_flags_override_the_config_file(tmp_path):
    path = write_json(tmp_path / "config.json", {"epochs": 9, "name": "from file", "verbose": True})
    config = parse_config(ExampleConfig, ["--epochs", "2", "--config", str(path), "--no-verbose"])
    assert config == ExampleConfig(epochs=2, name="from file", verbose=False)


def test_unknown_keys_in_the_file_are_rejected(tmp_path):
    path = write_json(tmp_path / "config.json", {"epochs": 2, "epoch": 3, "lr": 0.1})
    with pytest.raises(SystemExit, match=r"unknown config keys \['epoch', 'lr'\]") as exit_info:
        parse_config(ExampleConfig, ["--config", str(path)])
    assert "known keys" in str(exit_info.value) and str(path) in str(exit_info.value)


@pytest.mark.parametrize(
    "key, value",
    [("epochs", "3"), ("epochs", 2.5), ("epochs", True), ("shuffle", "false"), ("learning_rate", "0.1"),
     ("name", 5), ("limit", "7")],
)
def test_wrongly_typed_file_values_are_rejected(tmp_path, key, value):
    path = write_json(tmp_path / "config.json", {key: value})
    with pytest.raises(SystemExit, match=f"config key '{key}' must be") as exit_info:
        parse_config(ExampleConfig, ["--config", str(path)])
    assert repr(value) in str(exit_info.value)


def test_a_file_that_is_not_an_object_is_rejected(tmp_path):
    path = write_json(tmp_path / "config.json", ["epochs", 3])
    with pytest.raises(SystemExit, match="expected a JSON object"):
        load_config_file(path, ExampleConfig)


def test_missing_config_file(tmp_path):
    with pytest.raises(SystemExit, match="config file not found: .*missing.json"):
        parse_config(ExampleConfig, ["--config", str(tmp_path / "missing.json")])


def test_config_file_with_bad_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{epochs: 3}")
    with pytest.raises(SystemExit, match="config.json: not valid JSON"):
        parse_config(ExampleConfig, ["--config", str(path)])


def test_unsupported_field_types_fail_when_the_parser_is_built():
    @dataclasses.dataclass
    class ListConfig:
        layers: list = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="unsupported config field type"):
        config_parser(ListConfig)
