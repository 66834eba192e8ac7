"""Tests for nlpkit.manifest: every path a bundle names must stay inside the bundle.

Each test plants a secret file next to a copy of the tiny sentiment bundle and points one
entry of ``nlpkit.json`` or ``assets/tokenizer.json`` at it (``../``, an absolute path, a
symlink); loading must fail naming the entry, and the secret must never be read.
"""

import json
import os

import pytest

from nlpkit import cli
from nlpkit.errors import BundleError
from nlpkit.lite import TextClassifierPredictor
from nlpkit.manifest import bundle_file, read_manifest, resolve_inside

SECRET = "root:x:0:0:the secret that must not leak"


@pytest.fixture
def secret(bundle_copy):
    outside = bundle_copy.parent / "outside"
    outside.mkdir()
    path = outside / "secret.txt"
    path.write_text(SECRET)
    (outside / "model.tflite").write_bytes((bundle_copy / "model.tflite").read_bytes())
    return outside


def edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def assert_refused(bundle, capsys, *names):
    code = cli.main(["predict", str(bundle), "a fine film"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("nlpkit predict: error: ")
    for name in names:
        assert name in captured.err
    assert SECRET not in captured.out + captured.err
    return captured.err


@pytest.mark.parametrize("name", ["../outside/model.tflite", "assets/../../outside/model.tflite"])
def test_a_relative_path_out_of_the_bundle_is_refused(bundle_copy, secret, capsys, name):
    edit_json(bundle_copy / "nlpkit.json", lambda m: m["files"].update(tflite=name))
    message = assert_refused(bundle_copy, capsys, "files.tflite", repr(name), "outside the bundle")
    assert str(secret / "model.tflite") in message


def test_an_absolute_path_is_refused(bundle_copy, secret, capsys):
    name = str(secret / "model.tflite")
    edit_json(bundle_copy / "nlpkit.json", lambda m: m["files"].update(tflite=name))
    assert_refused(bundle_copy, capsys, "files.tflite", "absolute path")


def test_a_symlink_leading_out_of_the_bundle_is_refused(bundle_copy, secret, capsys):
    (bundle_copy / "model.tflite").unlink()
    (bundle_copy / "model.tflite").symlink_to(secret / "model.tflite")
    assert_refused(bundle_copy, capsys, "files.tflite", "'model.tflite'", "outside the bundle")


def test_a_symlink_inside_the_bundle_is_fine(bundle_copy):
    (bundle_copy / "model.tflite").rename(bundle_copy / "real.tflite")
    (bundle_copy / "model.tflite").symlink_to("real.tflite")
    assert TextClassifierPredictor(bundle_copy).predict("a fine film")[0].label in ("negative", "positive")


@pytest.mark.parametrize("key", ["vocabulary", "normalization"])
def test_a_tokenizer_file_out_of_the_bundle_is_refused(bundle_copy, secret, capsys, key):
    edit_json(bundle_copy / "assets" / "tokenizer.json", lambda spec: spec.update({key: "../../outside/secret.txt"}))
    assert_refused(bundle_copy, capsys, f"tokenizer.json {key!r}", "outside the bundle")


def test_the_tokenizer_reading_etc_passwd_is_refused(bundle_copy, capsys):
    edit_json(bundle_copy / "assets" / "tokenizer.json",
              lambda spec: spec.update(vocabulary="../../../../../../../../etc/passwd"))
    message = assert_refused(bundle_copy, capsys, "tokenizer.json 'vocabulary'")
    assert "/etc/passwd" in message and "root:" not in message


def test_an_assets_folder_linked_out_of_the_bundle_is_refused(bundle_copy, secret, capsys):
    (bundle_copy / "assets").rename(secret / "assets")
    (bundle_copy / "assets").symlink_to(secret / "assets")
    assert_refused(bundle_copy, capsys, "files.assets", "outside the bundle")


def test_a_manifest_linked_out_of_the_bundle_is_refused(bundle_copy, secret):
    (secret / "nlpkit.json").write_text((bundle_copy / "nlpkit.json").read_text())
    (bundle_copy / "nlpkit.json").unlink()
    (bundle_copy / "nlpkit.json").symlink_to(secret / "nlpkit.json")
    with pytest.raises(BundleError, match="nlpkit.json = 'nlpkit.json' resolves to .*outside the bundle"):
        read_manifest(bundle_copy)


@pytest.mark.parametrize("name", ["", 7, None, ["model.tflite"], "model\x00.tflite"])
def test_names_that_are_not_file_names_are_refused(tmp_path, name):
    with pytest.raises(BundleError, match="files.tflite must be a relative file name"):
        resolve_inside(tmp_path, name, "files.tflite")


def test_files_must_be_an_object(bundle_copy):
    edit_json(bundle_copy / "nlpkit.json", lambda m: m.update(files=["model.tflite"]))
    with pytest.raises(BundleError, match="'files' must be an object"):
        read_manifest(bundle_copy)


def test_bundle_file_resolves_the_listed_files(sentiment_bundle):
    manifest = read_manifest(sentiment_bundle)
    assert bundle_file(sentiment_bundle, manifest, "tflite") == sentiment_bundle / "model.tflite"
    assert os.path.realpath(resolve_inside(sentiment_bundle, ".", "x")) == os.path.realpath(sentiment_bundle)
