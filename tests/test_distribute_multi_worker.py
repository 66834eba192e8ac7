"""Two worker processes on 127.0.0.1 train the sentiment recipe under MultiWorkerMirroredStrategy.

Each worker is a subprocess with its own ``TF_CONFIG``; both have a timeout, so a worker
that waits forever for its peer fails the test instead of blocking the run.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nlpkit.models import load_keras_model

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_SECONDS = 300
FLAGS = (
    "--epochs", "2", "--units", "8", "--embedding-dim", "8", "--batch-size", "16",
    "--learning-rate", "0.01", "--no-int8", "--parity-texts", "10", "--strategy", "multi_worker",
)


def free_ports(count):
    """``count`` TCP ports that were free a moment ago on 127.0.0.1."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """Runs the recipe on two workers; returns (chief bundle, worker-1 bundle, logs)."""
    output = tmp_path_factory.mktemp("multi_worker") / "bundle"
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "recipes.sentiment_gru", *FLAGS, "--output-dir", str(output)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    logs = []
    try:
        for process in processes:
            logs.append(process.communicate(timeout=TIMEOUT_SECONDS)[0])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    for index, (process, log) in enumerate(zip(processes, logs)):
        assert process.returncode == 0, f"worker {index} failed:\n{log[-6000:]}"
    return output, output.with_name("bundle.worker-1"), logs


def test_both_workers_train_as_one_two_replica_strategy(two_workers):
    _, _, logs = two_workers
    assert "strategy multi_worker (CollectiveAllReduceStrategy, 2 replica(s), worker 0)" in logs[0]
    assert "strategy multi_worker (CollectiveAllReduceStrategy, 2 replica(s), worker 1)" in logs[1]


def test_workers_end_with_identical_weights(two_workers):
    chief, worker, _ = two_workers
    chief_weights = load_keras_model(chief / "model.keras").get_weights()
    worker_weights = load_keras_model(worker / "model.keras").get_weights()
    assert len(chief_weights) == len(worker_weights) > 0
    for a, b in zip(chief_weights, worker_weights):
        np.testing.assert_array_equal(a, b)


def test_chief_writes_the_bundle_and_the_worker_its_own_copy(two_workers):
    chief, worker, _ = two_workers
    for bundle in (chief, worker):
        manifest = json.loads((bundle / "nlpkit.json").read_text())
        assert manifest["config"]["strategy"] == "multi_worker"
        assert manifest["metrics"]["epochs_run"] == 2
        assert (bundle / "model.tflite").is_file()
    chief_metrics = json.loads((chief / "nlpkit.json").read_text())["metrics"]
    worker_metrics = json.loads((worker / "nlpkit.json").read_text())["metrics"]
    assert chief_metrics["valid"]["accuracy"] == worker_metrics["valid"]["accuracy"]
    # Backups live per worker and are gone after a finished run.
    assert not (chief.with_name("bundle.work") / "backup").exists()
    assert not (worker.with_name("bundle.worker-1.work") / "backup").exists()
