"""Crash safety: SIGKILL the sentiment recipe and the bundle swap, then check the bundle and the rerun.

What is killed where:

* ``test_swap_killed_at_every_step_leaves_the_old_or_the_new_bundle`` (deterministic): a
  helper process (this file run as a script, ``swap-faults``) calls the real
  `nlpkit.export.write_bundle` over a copy of a complete bundle, once per step ``k`` of
  `_swap_into_place`, in a forked child that SIGKILLs itself just before the k-th call of
  ``_exchange``, ``_fsync_directory``, ``os.replace``, ``shutil.rmtree``, ``os.unlink`` or
  ``os.rmdir`` inside the swap, and once more just after the swap returned. It does so with
  the atomic exchange (Linux ``renameat2``) and with ``NLPKIT_NO_RENAME_EXCHANGE=1`` (the
  two renames, whose gap `restore_interrupted_swap` repairs). Only the TensorFlow producers
  (SavedModel writer, TFLite converter, ``model.save``) are replaced, by copies of the
  template bundle's files, so the helper imports no TensorFlow and one kill costs
  milliseconds. After each kill: ``read_manifest`` finds the old bundle (byte for byte) where
  the swap had not committed yet and the new one where it had; a rerun of ``write_bundle`` on
  an untouched copy of the killed state leaves a complete new bundle and no
  ``.NAME.staging-*``/``.NAME.previous-*`` folder.
* ``test_a_kill_while_a_finished_fit_deletes_its_backup_...`` (deterministic, in process):
  an exception standing in for the kill stops ``fit`` after the first or the second file of
  its backup was deleted; the next ``fit`` may start afresh or resume with the saved
  weights, never "resume" from the metadata alone.
* ``test_recipe_killed_at_random_points_keeps_a_bundle_and_resumes``: two campaigns run side
  by side, one with the atomic exchange and one with ``NLPKIT_NO_RENAME_EXCHANGE=1``, each
  running the same ``python -m recipes.sentiment_gru`` command (tiny flags, ``--backup-steps
  5``) three times over an output path that already holds a complete bundle: killed in
  training and then in the export (a), or in the export and then in training (b), then left
  to finish. Each kill is a SIGKILL at a random delay after a
  trigger: in training, after the first ``Epoch i/3`` line (0.2-4 s; a backup may or may not
  exist yet) or after the first backup appeared (0.05-1.5 s); in the export, after the
  ``== test ==`` report, the last line before ``write_bundle`` (0.3-5 s; the export takes
  ~6 s). After each kill: a complete bundle is at the path, the old one byte for byte or one
  this run wrote; the old one while the export had not begun, the new one once the parity
  line (printed after the swap) was out; no staging folder of an earlier killed run once
  ``write_bundle`` had begun. Each run prints "resuming from the backup" exactly when a
  backup existed, and the finishing runs (one of them right after a kill with a backup)
  leave a complete new bundle with 3 epochs counted across the killed runs, and no staging
  folder or work directory.

Bounded: one tiny recipe run (~22 s) builds the starting bundle; the 42 swap kills take ~7 s;
the backup-deletion kills ~9 s (TensorFlow's import, in this process); the campaigns (4
recipe kills, 2 in training and 2 in the export, and 2 finishing runs; two processes at a
time on two cores) ~55 s; every recipe run has a 150 s watchdog. Delays come from
``random.Random(seed)``; the seed (``NLPKIT_CRASH_SEED=N`` repeats its delays) and the run
history are in every failure message. ``NLPKIT_CRASH_ROUNDS=N`` repeats the campaigns' kills
N times, for a longer soak (each round adds ~35 s and 4 kills).
"""

import concurrent.futures
import dataclasses
import hashlib
import importlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import types
import zipfile
from pathlib import Path

import pytest

from nlpkit.manifest import ASSETS_DIR, KERAS_FILE, MANIFEST_FILE, SAVED_MODEL_DIR, read_manifest

ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 150  # seconds for one recipe run; about 20 alone on two cores
SEED = int(os.environ.get("NLPKIT_CRASH_SEED") or random.SystemRandom().randrange(2**32))
ROUNDS = int(os.environ.get("NLPKIT_CRASH_ROUNDS", "1"))
MODES = ("exchange", "two_renames")
RESUMING = "resuming from the backup"


# ---------------------------------------------------------------------------------------------
# Shared checks
# ---------------------------------------------------------------------------------------------


def recipe_command(output):
    from tests.conftest import TINY_RECIPE_FLAGS

    flags = list(TINY_RECIPE_FLAGS)
    flags[flags.index("--parity-texts") + 1] = "10"
    return [sys.executable, "-m", "recipes.sentiment_gru", *flags, "--no-int8", "--backup-steps", "5",
            "--output-dir", str(output)]


def child_env(mode="exchange"):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("NLPKIT_NO_RENAME_EXCHANGE", None)
    if mode == "two_renames":
        env["NLPKIT_NO_RENAME_EXCHANGE"] = "1"
    return env


def tree_digest(directory):
    """``{relative path: sha256}`` of every file under ``directory`` (old vs new, byte for byte)."""
    directory = Path(directory)
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def siblings(bundle):
    """``[(kind, pid)]`` of the ``.NAME.staging-PID`` / ``.NAME.previous-PID`` folders beside ``bundle``."""
    pattern = re.compile(rf"\.{re.escape(bundle.name)}\.(staging|previous)-(\d+)")
    found = [pattern.fullmatch(path.name) for path in bundle.parent.iterdir()]
    return sorted((match.group(1), int(match.group(2))) for match in found if match)


def assert_complete(bundle, context):
    """Checks that ``bundle`` is a complete, loadable bundle and returns its manifest.

    ``read_manifest`` runs first, so an interrupted two-rename swap is repaired here, as on
    any load.
    """
    from nlpkit.lite import TextClassifierPredictor

    manifest = read_manifest(bundle, task="classification")
    for key, name in manifest["files"].items():
        assert (bundle / name).exists(), f"{context}: files.{key} = {name} is missing"
    assert (bundle / SAVED_MODEL_DIR / "saved_model.pb").is_file(), f"{context}: saved_model.pb is missing"
    with zipfile.ZipFile(bundle / KERAS_FILE) as archive:
        assert archive.testzip() is None, f"{context}: {KERAS_FILE} is corrupt"
    predictions = TextClassifierPredictor(bundle).predict(["a fine film"])
    assert len(predictions) == 1 and predictions[0].label in manifest["labels"], context
    return manifest


@pytest.fixture(scope="module")
def old_bundle(tmp_path_factory):
    """One complete bundle written by the recipe (the same command the campaigns run)."""
    output = tmp_path_factory.mktemp("old") / "bundle"
    result = subprocess.run(recipe_command(output), cwd=ROOT, env=child_env(), capture_output=True, text=True,
                            timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_complete(output, "the starting bundle")
    shutil.rmtree(output.with_name("bundle.work"), ignore_errors=True)
    return output


# ---------------------------------------------------------------------------------------------
# Deterministic: SIGKILL at every step of the swap
# ---------------------------------------------------------------------------------------------


class TemplateModel:
    """Stands in for a trained model whose files are those of a template bundle."""

    weights = ()

    def __init__(self, template):
        self.template = template
        self.task = json.loads((template / MANIFEST_FILE).read_text())["task"]

    def export_model(self):
        return self

    def manifest_section(self, tokenizer):
        return {}

    def save(self, path):
        shutil.copyfile(self.template / KERAS_FILE, path)

    def serving_endpoints(self, graph_tokenizer, label_names):
        return {}

    def tflite_endpoints(self):
        signatures = json.loads((self.template / MANIFEST_FILE).read_text())["signatures"]["tflite"]
        return dict.fromkeys(signatures)


def stand_in(module_name):
    """An empty module whose missing names fail with a message saying what to add here."""
    module = types.ModuleType(module_name)

    def missing(name):
        raise AttributeError(
            f"write_bundle now uses {module_name}.{name}: give the stand-in in tests/test_crash_safety.py "
            f"(import_bundle_module_without_tensorflow) a {name} that answers from the template bundle")

    module.__getattr__ = missing
    return module


def import_bundle_module_without_tensorflow(template):
    """``nlpkit.export.bundle`` with its TensorFlow producers replaced by copies of ``template``'s files.

    The package ``nlpkit.export`` is registered without running its ``__init__`` (which
    imports TensorFlow), and its ``tflite`` and ``saved_model`` modules are stand-ins;
    everything `write_bundle` does with files (staging, manifest, parity check, fsync, swap,
    clean-up) is the real code.
    """
    import nlpkit

    manifest = json.loads((template / MANIFEST_FILE).read_text())
    package = types.ModuleType("nlpkit.export")
    package.__path__ = [str(Path(nlpkit.__file__).parent / "export")]
    name_by_content = {(template / name).read_bytes(): name for name in manifest["tflite_ops"]}
    tflite = stand_in("nlpkit.export.tflite")
    tflite.convert = lambda model, endpoints, quantization=None, lstm="auto": (
        template / manifest["files"]["tflite_int8" if quantization else "tflite"]).read_bytes()
    tflite.audit_ops = lambda content: types.SimpleNamespace(builtin=manifest["tflite_ops"][name_by_content[content]])
    tflite.min_runtime_version = lambda content: (
        manifest.get("tflite_files", {}).get(name_by_content[content], {}).get("min_runtime_version"))
    saved_model = stand_in("nlpkit.export.saved_model")
    saved_model.write_saved_model = lambda directory, model, serving, track=(): shutil.copytree(
        template / SAVED_MODEL_DIR, directory)
    sys.modules.update({"nlpkit.export": package, "nlpkit.export.tflite": tflite,
                        "nlpkit.export.saved_model": saved_model})
    nlpkit.export = package
    bundle = importlib.import_module("nlpkit.export.bundle")
    bundle.library_versions = lambda: dict(manifest["versions"])
    bundle._signature_descriptions = lambda serving, endpoints: manifest["signatures"]
    assert "tensorflow" not in sys.modules, "the swap-fault helper must not import TensorFlow"
    return bundle


def export_template(bundle_module, template, output, marker):
    from nlpkit.text.python_tokenizers import load_tokenizer

    manifest = json.loads((template / MANIFEST_FILE).read_text())
    return bundle_module.write_bundle(
        output, task=manifest["task"], model=TemplateModel(template),
        tokenizer=load_tokenizer(template / ASSETS_DIR), graph_tokenizer=None, label_names=manifest["labels"],
        int8="tflite_int8" in manifest["files"], metadata={"marker": marker, "raw_labels": manifest["raw_labels"]},
        parity=lambda staged: manifest["parity"],
    )


def instrument_swap(bundle_module, output, kill_at, log_path):
    """Makes this process SIGKILL itself just before the ``kill_at``-th step of the swap.

    Each step is logged to ``log_path`` first (a plain write survives the kill) with whether
    the swap had committed the new bundle by then: the exchange returned True, or the
    staging folder was renamed onto ``output``.
    """
    state = {"in_swap": False, "count": 0, "committed": False}
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def step(description):
        state["count"] += 1
        record = {"step": state["count"], "call": description, "committed": state["committed"],
                  "kill": state["count"] == kill_at}
        os.write(log, (json.dumps(record) + "\n").encode())
        if state["count"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(owner, name, describe, after=None):
        real = getattr(owner, name)

        def wrapper(*args, **kwargs):
            if not state["in_swap"]:
                return real(*args, **kwargs)
            step(describe(*args))
            result = real(*args, **kwargs)
            if after is not None:
                after(result, *args)
            return result

        setattr(owner, name, wrapper)

    def exchanged(result, first, second):
        state["committed"] = state["committed"] or result is True

    def renamed(result, source, destination):
        state["committed"] = state["committed"] or os.fspath(destination) == os.fspath(output)

    name = lambda path: Path(os.fspath(path)).name
    wrap(bundle_module, "_exchange", lambda first, second: f"_exchange({name(first)}, {name(second)})", exchanged)
    wrap(bundle_module, "_fsync_directory", lambda directory: f"_fsync_directory({name(directory)})")
    wrap(os, "replace", lambda source, destination: f"os.replace({name(source)}, {name(destination)})", renamed)
    wrap(os, "rename", lambda source, destination: f"os.rename({name(source)}, {name(destination)})", renamed)
    wrap(shutil, "rmtree", lambda path, *rest: f"shutil.rmtree({name(path)})")
    wrap(os, "unlink", lambda path, *rest: f"os.unlink({name(path)})")
    wrap(os, "rmdir", lambda path, *rest: f"os.rmdir({name(path)})")
    real_swap = bundle_module._swap_into_place

    def swap(staging, output_dir):
        state["in_swap"] = True
        real_swap(staging, output_dir)
        step("the swap returned")
        state["in_swap"] = False

    bundle_module._swap_into_place = swap


def swap_faults_main(template, root):
    """The ``swap-faults`` helper: one killed export per swap step and mode; writes ``cases.json``."""
    bundle_module = import_bundle_module_without_tensorflow(template)
    cases = []
    for mode in MODES:
        os.environ.pop("NLPKIT_NO_RENAME_EXCHANGE", None)
        if mode == "two_renames":
            os.environ["NLPKIT_NO_RENAME_EXCHANGE"] = "1"  # read by _exchange at each call
        for kill_at in range(1, 100):
            case = root / f"{mode}-{kill_at:02d}"
            output = case / "killed" / "bundle"
            shutil.copytree(template, output)
            log_path = case / "steps.jsonl"
            marker = f"new {mode} {kill_at}"
            pid = os.fork()
            if pid == 0:  # the child: TensorFlow-free, single-threaded, so fork is safe
                code = 1
                try:
                    instrument_swap(bundle_module, output, kill_at, log_path)
                    export_template(bundle_module, template, output, marker)
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            if not killed and os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError(f"{mode}, kill at step {kill_at}: the export failed (status {status})")
            steps = [json.loads(line) for line in log_path.read_text().splitlines()]
            # The rerun works on a copy of the state the kill left, before anything reads it.
            rerun = case / "rerun" / "bundle"
            shutil.copytree(output.parent, rerun.parent, symlinks=True)
            rerun_marker = f"rerun {mode} {kill_at}"
            export_template(bundle_module, template, rerun, rerun_marker)
            kill = next((item for item in steps if item["kill"]), None)
            cases.append({
                "mode": mode, "kill_at": kill_at if killed else None, "pid": pid, "output": str(output),
                "rerun": str(rerun), "marker": marker, "rerun_marker": rerun_marker, "steps": steps,
                "call": kill["call"] if kill else "none (the export finished)",
                "expected": "new" if kill is None or kill["committed"] else "old",
            })
            if not killed:
                break
        else:
            raise RuntimeError(f"{mode}: the swap never finished within 99 steps")
    (root / "cases.json").write_text(json.dumps(cases, indent=1))
    return 0


@pytest.mark.slow
def test_swap_killed_at_every_step_leaves_the_old_or_the_new_bundle(old_bundle, tmp_path):
    started = time.perf_counter()
    helper = subprocess.run([sys.executable, __file__, "swap-faults", str(old_bundle), str(tmp_path)], cwd=ROOT,
                            env=child_env(), capture_output=True, text=True, timeout=240)
    assert helper.returncode == 0, helper.stdout[-3000:] + helper.stderr[-3000:]
    cases = json.loads((tmp_path / "cases.json").read_text())
    old = tree_digest(old_bundle)
    summary = []
    for mode in MODES:
        mode_cases = [case for case in cases if case["mode"] == mode]
        finished = mode_cases[-1]
        assert finished["kill_at"] is None and all(case["kill_at"] for case in mode_cases[:-1])
        calls = [step["call"] for step in finished["steps"]]
        gaps = []
        for case in mode_cases:
            context = f"{mode}, SIGKILL at step {case['kill_at']}, before {case['call']} (steps: {calls})"
            output, rerun = Path(case["output"]), Path(case["rerun"])
            gap = not output.is_dir()  # before read_manifest, which repairs a two-rename gap
            if gap:
                gaps.append(case["kill_at"])
            manifest = assert_complete(output, context)
            found = "old" if tree_digest(output) == old else "new"
            assert found == case["expected"], f"{context}: found the {found} bundle, expected the {case['expected']}"
            if found == "new":
                assert manifest["marker"] == case["marker"], context
            left = siblings(output)
            assert all(pid == case["pid"] for _, pid in left), f"{context}: left {left}"
            # The next export over the killed state: restores, removes the leftovers, swaps.
            rerun_manifest = assert_complete(rerun, f"{context}, then rerun")
            assert rerun_manifest["marker"] == case["rerun_marker"], context
            assert siblings(rerun) == [], f"{context}, then rerun: left {siblings(rerun)}"
            summary.append((mode, case["kill_at"], case["call"], found, "gap" if gap else ""))
        assert len(mode_cases) >= 5, calls
        if mode == "exchange":
            assert calls[0].startswith("_exchange") and not any(call.startswith("os.replace") for call in calls), calls
            assert gaps == [], f"the atomic exchange left no bundle at the path after kills {gaps}"
        else:
            assert "os.replace(bundle, .bundle.previous-" in " ".join(calls), calls
            assert gaps, "no kill landed between the two renames"
    print(f"\n{len(cases) - len(MODES)} swap kills in {time.perf_counter() - started:.1f} s:")
    for row in summary:
        print("  ", *row)


# ---------------------------------------------------------------------------------------------
# Deterministic: a kill while a finished fit deletes its backup
# ---------------------------------------------------------------------------------------------


class Killed(BaseException):
    """Stands in for a SIGKILL: nothing after it runs, and the files stay as they were."""


@pytest.mark.parametrize("kill_after", [1, 2])
def test_a_kill_while_a_finished_fit_deletes_its_backup_never_resumes_without_the_weights(
        tmp_path, monkeypatch, kill_after):
    """The next run may start afresh or resume from the saved weights, never from the metadata alone.

    Keras deletes the backup directory at the end of ``fit`` in listing order; the recipe's
    rerun must not "resume" at the last epoch with untrained weights and export them.
    """
    import keras
    import numpy as np

    from nlpkit.training import ResumableBackup

    def fit(seed, backup_dir=tmp_path / "backup"):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile("sgd", "mse")
        backup = ResumableBackup(backup_dir, save_freq=2)
        model.fit(np.ones((32, 4), "float32"), np.zeros((32, 2), "float32"), epochs=3, batch_size=8, verbose=0,
                  callbacks=[backup])
        return model, backup

    real_unlink, unlinked = os.unlink, []

    def unlink(path, *args, **kwargs):
        real_unlink(path, *args, **kwargs)
        if Path(os.fspath(path)).name in ("latest.weights.h5", "training_metadata.json"):
            unlinked.append(Path(os.fspath(path)).name)
            if len(unlinked) == kill_after:
                raise Killed(unlinked)

    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(Killed):
        fit(seed=1)
    monkeypatch.setattr(os, "unlink", real_unlink)
    left = sorted(path.name for path in (tmp_path / "backup").iterdir())
    trained_model, _ = fit(seed=1, backup_dir=tmp_path / "reference")  # what the killed fit had trained
    rerun_model, backup = fit(seed=2)  # the rerun over what the kill left
    if backup.resumed_from is not None:
        for rerun, trained in zip(rerun_model.get_weights(), trained_model.get_weights()):
            np.testing.assert_allclose(rerun, trained, err_msg=f"resumed from {left} without the weights")


# ---------------------------------------------------------------------------------------------
# Random: SIGKILL the recipe during training and during export, then rerun it
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """One recipe process: its output lines (with the seconds since its start) and how it ended."""

    pid: int
    returncode: int
    lines: list
    started_wall: float
    trigger_seen: float = None
    killed_at: float = None
    timed_out: bool = False
    seconds: float = None

    @property
    def text(self):
        return "".join(line for _, line in self.lines)

    def seen(self, predicate):
        """Seconds since the start at which the first line matching ``predicate`` came, or None."""
        return next((at for at, line in self.lines if predicate(line)), None)

    @property
    def landed(self):
        """Where the process was when it died, from what it had printed."""
        text = self.text
        if "bundle written to" in text:
            return "finished"
        if "\n== test ==\n" in text:
            return "export, after the swap" if "\nparity {" in text else "export"
        if "Restoring model weights" in text or "== valid ==" in text:
            return "evaluation"
        return "training" if re.search(r"^Epoch \d+/\d+$", text, re.M) else "start-up"

    def tail(self, lines=40):
        return "".join(line for _, line in self.lines[-lines:])


def run_recipe(command, env, trigger=None, delay=None):
    """Runs ``command``; SIGKILLs it ``delay`` s after ``trigger``.

    ``trigger`` is a predicate on stdout lines (the first line it accepts starts the delay)
    or a Path (its appearance does; polled every 20 ms).
    """
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1, errors="replace")
    started, started_wall = time.monotonic(), time.time()
    run = Run(pid=process.pid, returncode=None, lines=[], started_wall=started_wall)

    def kill(timed_out=False):
        # Safe from pid reuse: the process is reaped only after this timer is joined below.
        run.killed_at, run.timed_out = time.monotonic() - started, timed_out
        os.kill(process.pid, signal.SIGKILL)

    watchdog = threading.Timer(RUN_TIMEOUT, kill, kwargs={"timed_out": True})
    watchdog.start()
    timer, done = [], threading.Event()

    def start_timer():
        run.trigger_seen = time.monotonic() - started
        timer.append(threading.Timer(delay, kill))
        timer[0].start()

    def watch(path):
        while not done.is_set():
            if path.exists():
                return start_timer()
            done.wait(0.02)

    watcher = threading.Thread(target=watch, args=(trigger,)) if isinstance(trigger, Path) else None
    if watcher is not None:
        watcher.start()
    try:
        for line in process.stdout:
            run.lines.append((time.monotonic() - started, line))
            if callable(trigger) and not timer and trigger(line):
                start_timer()
    finally:
        done.set()
        if watcher is not None:
            watcher.join()  # before the timer is cancelled, so that none starts afterwards
        for each in (watchdog, *timer):
            each.cancel()
            each.join()
        run.returncode = process.wait()
        run.seconds = time.monotonic() - started
    return run


@dataclasses.dataclass(frozen=True)
class Kill:
    """Where a campaign run is SIGKILLed: ``delay`` drawn from ``window`` after ``trigger``."""

    phase: str  # "training" or "export": where the kill is meant to land
    trigger: str  # "epoch": the first "Epoch i/3" line; "backup": the backup's metadata file; "test": "== test =="
    window: tuple

    def arm(self, backup):
        """The trigger `run_recipe` takes."""
        if self.trigger == "backup":
            return backup
        if self.trigger == "epoch":
            return lambda line: re.fullmatch(r"Epoch \d+/\d+\n", line) is not None
        return lambda line: line == "== test ==\n"


# A fresh run trains for ~4.5 s after its first "Epoch" line (the first ~2 s trace the step
# function; backups every 5 of the 23 steps per epoch), and exports for ~6 s after "== test ==".
TRAINING = Kill("training", "epoch", (0.2, 4.0))
TRAINING_AFTER_A_BACKUP = Kill("training", "backup", (0.05, 1.5))
EXPORT = Kill("export", "test", (0.3, 5.0))


def campaign(name, mode, plan, root, old_bundle, rng):
    """Runs the recipe once per entry of ``plan`` over a copy of ``old_bundle``; returns what each run did."""
    bundle = root / name / "bundle"
    shutil.copytree(old_bundle, bundle)
    backup = bundle.with_name("bundle.work") / "backup" / "training_metadata.json"
    command, env = recipe_command(bundle), child_env(mode)
    history, runs = [], []
    for index, phase in enumerate(plan):
        before = tree_digest(bundle)
        had_backup = backup.is_file()
        if phase is None:
            run = run_recipe(command, env)
            planned = "finish"
        else:
            delay = round(rng.uniform(*phase.window), 3)
            run = run_recipe(command, env, phase.arm(backup), delay)
            planned = f"kill in {phase.phase}, {delay} s after the {phase.trigger} trigger"
        history.append(f"run {index} (pid {run.pid}, {run.seconds:.1f} s): {planned}; trigger at {run.trigger_seen}, "
                       f"killed at {run.killed_at}, landed in {run.landed}, rc {run.returncode}")
        context = (f"seed {SEED}, campaign {name} ({mode}), run {index}: {planned}\n  " + "\n  ".join(history)
                   + f"\n--- output tail ---\n{run.tail()}")
        assert not run.timed_out, f"{context}\nthe run took over {RUN_TIMEOUT} s"
        if phase is not None and run.returncode == -signal.SIGKILL:
            assert run.trigger_seen is not None and run.killed_at is not None, context
            gap = not bundle.is_dir()
            manifest = assert_complete(bundle, context)
            found = "old" if tree_digest(bundle) == before else "new"
            if found == "new":
                # Written by this run: `created` has a one-second resolution.
                assert manifest["created"] >= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(run.started_wall - 1)), context
            if "\n== test ==\n" not in run.text:
                assert found == "old", f"{context}\nthe bundle changed before the export began"
            if "\nparity {" in run.text:
                assert found == "new", f"{context}\nthe swap was done, yet the old bundle is at the path"
            left = siblings(bundle)
            export_begun = run.seen(lambda line: line == "== test ==\n")
            if export_begun is not None and run.killed_at - export_begun >= 0.3:
                # write_bundle removed the staging folders of the earlier killed runs first.
                assert all(pid == run.pid for _, pid in left), f"{context}\nleft {left}"
            found = f"{found}{', after a gap' if gap else ''}"
        else:
            assert run.returncode == 0, context
            assert "bundle written to" in run.text, context
            manifest = assert_complete(bundle, context)
            assert tree_digest(bundle) != before, f"{context}\nthe finished run left the old bundle"
            assert manifest["metrics"]["epochs_run"] == 3, context
            assert siblings(bundle) == [], f"{context}\nleft {siblings(bundle)}"
            assert not bundle.with_name("bundle.work").exists(), context
            found, left = "new", []
        if RESUMING in run.text:
            assert had_backup, f"{context}\nresumed although no backup existed"
        elif had_backup:
            assert run.landed == "start-up", f"{context}\na backup existed, yet the run did not resume from it"
        runs.append({"campaign": name, "run": index, "planned": phase.phase if phase else "finish",
                     "landed": run.landed, "found": found, "resumed": RESUMING in run.text,
                     "backup left": backup.is_file(), "left": left, "seconds": round(run.seconds, 1)})
    return runs


@pytest.mark.slow
def test_recipe_killed_at_random_points_keeps_a_bundle_and_resumes(old_bundle, tmp_path):
    rng = random.Random(SEED)
    plans = {
        # a: the export run after a training kill resumes when that kill came after a backup.
        "a": ("exchange", [TRAINING, EXPORT] * ROUNDS + [None]),
        # b: the finishing run comes right after a kill with a backup: it must resume and complete.
        "b": ("two_renames", [EXPORT, TRAINING_AFTER_A_BACKUP] * ROUNDS + [None]),
    }
    seeds = {name: rng.randrange(2**32) for name in plans}
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(plans)) as pool:
        futures = [pool.submit(campaign, name, mode, plan, tmp_path, old_bundle, random.Random(seeds[name]))
                   for name, (mode, plan) in plans.items()]
        runs = [run for future in futures for run in future.result()]
    kills = [run for run in runs if run["planned"] != "finish"]
    print(f"\nseed {SEED}: {len(kills)} recipe kills, {len(runs)} runs in {time.perf_counter() - started:.1f} s:")
    for run in runs:
        print("  ", run)
    assert any(run["resumed"] and run["landed"] == "finished" for run in runs), (SEED, runs)
    landed = [run["landed"] for run in kills]
    assert sum(place == "training" for place in landed) >= ROUNDS, (SEED, runs)
    assert sum(place.startswith("export") for place in landed) >= ROUNDS, (SEED, runs)


if __name__ == "__main__":
    if sys.argv[1:2] == ["swap-faults"]:
        sys.exit(swap_faults_main(Path(sys.argv[2]), Path(sys.argv[3])))
    sys.exit(f"usage: {sys.argv[0]} swap-faults TEMPLATE_BUNDLE WORK_DIR")
