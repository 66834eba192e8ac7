"""Tests for nlpkit.config: dataclass fields as flags, JSON config files, precedence."""

import dataclasses
import json
import re
from typing import Optional

import pytest

from nlpkit.config import config_parser, config_problem, load_config_file, parse_config


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


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "-1"], r"--epochs must be >= 1\. Received: -1"),
        (["--epochs", "0"], r"--epochs must be >= 1\. Received: 0"),
        (["--learning-rate", "nan"], r"--learning-rate must be a finite number\. Received: nan"),
        (["--learning-rate", "inf"], r"--learning-rate must be a finite number\. Received: inf"),
        (["--learning-rate", "0"], r"--learning-rate must be > 0\. Received: 0\.0"),
        (["--scale=-inf"], r"--scale must be a finite number\. Received: -inf"),
    ],
)
def test_out_of_range_and_non_finite_flags_are_rejected_at_parse_time(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(ExampleConfig, argv)
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_out_of_range_values_in_a_config_file_are_rejected(tmp_path, capsys):
    path = write_json(tmp_path / "config.json", {"epochs": -3})
    with pytest.raises(SystemExit):
        parse_config(ExampleConfig, ["--config", str(path)])
    assert "--epochs must be >= 1. Received: -3" in capsys.readouterr().err


def test_a_field_may_declare_its_own_range():
    @dataclasses.dataclass
    class Ranged:
        ratio: float = dataclasses.field(default=0.5, metadata={"range": (0, 1, True, True)})

    assert config_problem(Ranged()) is None
    assert config_problem(Ranged(ratio=1.0)) == "--ratio must be < 1. Received: 1.0"


@pytest.mark.parametrize("recipe", ["sentiment_gru", "ner_bilstm_crf", "language_model", "translation", "long_range"])
def test_every_recipe_default_is_in_range(recipe):
    import importlib

    module = importlib.import_module(f"recipes.{recipe}")
    assert config_problem(module.Config()) is None


@pytest.mark.parametrize("flags", [["--epochs", "-1"], ["--dropout", "1.5"], ["--learning-rate", "nan"]])
def test_nlpkit_train_names_the_bad_flag(flags, capsys):
    from nlpkit import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "sentiment", *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"nlpkit train sentiment: error: {flags[0]} must be" in err and "loss" not in err
