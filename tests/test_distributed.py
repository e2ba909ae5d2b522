"""Data-parallel fits in real processes: two CPU processes on gloo, as torchrun starts them.

Each test starts its processes with a timeout, so a fit that hangs fails the test.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import skrnn
from skrnn import distributed

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="needs torch.distributed with gloo",
)

WORKER = Path(__file__).with_name("distributed_worker.py")
TIMEOUT = 240  # seconds for a pair of processes; a hang fails the test instead of the suite


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_processes(tmp_path, config, n=2, env=None, timeout=TIMEOUT):
    """Start ``n`` worker processes with the environment torchrun gives its workers; wait for
    them all (killing them all after ``timeout``). Returns their exit codes."""
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    processes = []
    for rank in range(n):
        process_env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(n),
            "LOCAL_WORLD_SIZE": str(n),
            "TORCHELASTIC_RUN_ID": "skrnn-test",
            "OMP_NUM_THREADS": "1",
            **(env or {}),
        }
        if n == 1:
            for name in ("RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID"):
                process_env.pop(name)
        command = [sys.executable, str(WORKER), json.dumps({**config, "out": str(out)})]
        processes.append(subprocess.Popen(command, env=process_env, cwd=tmp_path))
    codes = []
    try:
        for process in processes:
            codes.append(process.wait(timeout=timeout))
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        pytest.fail(f"the processes of {config} did not finish within {timeout} s")
    return codes


def result(tmp_path, rank):
    errors = tmp_path / "out" / f"rank{rank}.error"
    assert not errors.exists(), errors.read_text()
    return dict(np.load(tmp_path / "out" / f"rank{rank}.npz"))


def error(tmp_path, rank):
    return (tmp_path / "out" / f"rank{rank}.error").read_text()


DIGITS = {"hidden_size": 32, "max_epochs": 20, "batch_size": 32, "random_state": 0}


@pytest.fixture(scope="module")
def one_and_two(tmp_path_factory):
    """The same classifier fitted in one process and in two, at the same global batch."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    assert run_processes(one, {"params": DIGITS}, n=1) == [0]
    assert run_processes(two, {"params": DIGITS}, n=2) == [0, 0]
    return one, two


def test_two_processes_train_one_model_as_accurate_as_one(one_and_two, tmp_path):
    one, two = one_and_two
    alone, first, second = result(one, 0), result(two, 0), result(two, 1)
    assert alone["world_size"] == 1 and first["world_size"] == 2
    # Every process ends with the same model, bit for bit, and the same history.
    np.testing.assert_array_equal(first["weights"], second["weights"])
    np.testing.assert_array_equal(first["outputs"], second["outputs"])
    np.testing.assert_array_equal(first["train_loss"], second["train_loss"])
    # The two processes trained one model (not two copies of one process's fit) ...
    assert not np.array_equal(first["weights"], alone["weights"])
    # ... as well as one process does at the same global batch: on average over three seeds,
    # as one seed's accuracy on 597 digits moves by about 0.01 from seed to seed.
    X, y = skrnn.datasets.load_digits_images(return_X_y=True)
    truth = y[1200:]
    accuracy = np.array([[(o["outputs"].argmax(axis=1) == truth).mean() for o in (alone, first)]])
    for seed in (1, 2):
        runs = []
        for n in (1, 2):
            folder = tmp_path / f"seed{seed}-{n}"
            params = {**DIGITS, "random_state": seed}
            assert run_processes(folder, {"params": params}, n=n) == [0] * n
            runs.append((result(folder, 0)["outputs"].argmax(axis=1) == truth).mean())
        accuracy = np.vstack([accuracy, runs])
    print(f"test accuracy per seed (one process, two): {accuracy.round(4).tolist()}")
    one_process, two_processes = accuracy.mean(axis=0)
    assert abs(one_process - two_processes) <= 0.005 + 1e-12
    assert len(first["train_loss"]) == len(alone["train_loss"]) == 20


def test_only_the_first_process_writes_the_model_file(one_and_two):
    _, two = one_and_two
    assert (two / "out" / "model0.skrnn").exists()
    assert not (two / "out" / "model1.skrnn").exists()
    loaded = skrnn.load(two / "out" / "model0.skrnn")
    X, _ = skrnn.datasets.load_digits_images(return_X_y=True)
    np.testing.assert_array_equal(loaded.predict_proba(X[1200:]), result(two, 0)["outputs"])


def test_a_memory_map_trains_in_two_processes(tmp_path, one_and_two):
    # Rows read from a file come in sorted order within each batch, so dropout falls on
    # other samples than with an array: another fit, as good.
    _, two = one_and_two
    assert run_processes(tmp_path, {"params": DIGITS, "data": "memmap"}) == [0, 0]
    first, second = result(tmp_path, 0), result(tmp_path, 1)
    np.testing.assert_array_equal(first["weights"], second["weights"])
    _, y = skrnn.datasets.load_digits_images(return_X_y=True)
    accuracy = [(r["outputs"].argmax(axis=1) == y[1200:]).mean() for r in (first, result(two, 0))]
    assert abs(accuracy[0] - accuracy[1]) <= 0.02


def test_auto_epochs_and_early_stopping_decide_alike_in_every_process(tmp_path):
    params = {"hidden_size": 16, "max_epochs": "auto", "random_state": 0, "tol": 0.05}
    stopping = {**params, "early_stopping": True, "n_iter_no_change": 2, "max_epochs": 60}
    for name, setting in (("auto", params), ("early", stopping)):
        assert run_processes(tmp_path / name, {"params": setting, "n": 600}) == [0, 0]
        first, second = result(tmp_path / name, 0), result(tmp_path / name, 1)
        np.testing.assert_array_equal(first["train_loss"], second["train_loss"])
        np.testing.assert_array_equal(first["weights"], second["weights"])
        assert len(first["train_loss"]) < 60  # stopped early, at the same epoch in both


@pytest.mark.parametrize("task", ["regressor", "segmenter", "generator", "recognizer"])
def test_every_estimator_trains_in_two_processes(tmp_path, task):
    params = {"max_epochs": 2, "random_state": 0, "hidden_size": 8}
    assert run_processes(tmp_path, {"task": task, "params": params, "n": 64}) == [0, 0]
    first, second = result(tmp_path, 0), result(tmp_path, 1)
    assert first["world_size"] == 2
    np.testing.assert_array_equal(first["weights"], second["weights"])
    np.testing.assert_array_equal(first["outputs"], second["outputs"])


def test_a_killed_process_ends_the_fit_of_the_others_with_a_clear_error(tmp_path):
    kill = {"SKRNN_TEST_KILL_RANKS": "1", "SKRNN_TEST_KILL_EPOCH": "2"}
    codes = run_processes(tmp_path, {"params": DIGITS}, env=kill, timeout=120)
    assert codes[1] == -9  # killed
    assert codes[0] == 1
    message = error(tmp_path, 0)
    assert message.startswith("DistributedError: Process 0 of 2 lost contact")
    assert "The model keeps the weights of epoch" in message


def test_a_killed_fit_resumes_from_its_checkpoint(tmp_path):
    params = {**DIGITS, "max_epochs": 6, "checkpoint": "fit.ckpt"}
    assert run_processes(tmp_path / "whole", {"params": params}) == [0, 0]
    kill = {"SKRNN_TEST_KILL_RANKS": "0,1", "SKRNN_TEST_KILL_EPOCH": "4"}
    assert run_processes(tmp_path / "cut", {"params": params}, env=kill) == [-9, -9]
    assert (tmp_path / "cut" / "fit.ckpt").exists()  # after epoch 3, written by rank 0
    assert run_processes(tmp_path / "cut", {"params": params}) == [0, 0]
    assert not (tmp_path / "cut" / "fit.ckpt").exists()
    whole, resumed = result(tmp_path / "whole", 0), result(tmp_path / "cut", 0)
    np.testing.assert_array_equal(resumed["weights"], whole["weights"])
    np.testing.assert_array_equal(result(tmp_path / "cut", 1)["weights"], whole["weights"])
    # The seed, the data's digests, the checkpoint and the losses went as tensors and bytes:
    # no process called a collective that pickles (the worker counts them, whoever calls).
    for rank in (0, 1):
        assert result(tmp_path / "cut", rank)["pickled"].tolist() == []


def test_processes_given_other_data_are_refused(tmp_path):
    config = {"params": {**DIGITS, "max_epochs": 1}, "data": "other-per-rank"}
    assert run_processes(tmp_path, config, timeout=120) == [1, 1]
    for rank in (0, 1):
        assert "must all fit the same data" in error(tmp_path, rank)


def test_processes_given_other_pixels_of_the_same_shape_are_refused(tmp_path):
    config = {"params": {**DIGITS, "max_epochs": 1}, "data": "other-pixels-per-rank"}
    assert run_processes(tmp_path, config, timeout=120) == [1, 1]
    for rank in (0, 1):
        message = error(tmp_path, rank)
        assert message.startswith("ValueError: The processes of a distributed fit must all")
        assert "(1200, 8, 8, 1) (float64), process" in message
        assert "with other pixel values. Load the same data in every process" in message


def test_distributed_false_trains_alone_in_each_process(tmp_path):
    config = {"params": {**DIGITS, "max_epochs": 2, "distributed": False}}
    assert run_processes(tmp_path, config) == [0, 0]
    assert (tmp_path / "out" / "model1.skrnn").exists()  # each process its own model


def test_distributed_true_outside_a_process_group_says_how_to_launch(digits):
    X, y = digits
    clf = skrnn.RNNImageClassifier(hidden_size=4, max_epochs=1, distributed=True)
    with pytest.raises(ValueError, match="torchrun"):
        clf.fit(X[:50], y[:50])
    assert distributed.init() is False
    assert (distributed.rank(), distributed.world_size()) == (0, 1)


def test_torchrun_launches_the_same_script(tmp_path):
    params = {**DIGITS, "max_epochs": 2}
    command = [  # torchrun itself
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(WORKER),
        json.dumps({"params": params, "out": str(tmp_path)}),
    ]
    subprocess.run(command, check=True, timeout=TIMEOUT, cwd=tmp_path, capture_output=True)
    first, second = (dict(np.load(tmp_path / f"rank{r}.npz")) for r in (0, 1))
    assert first["world_size"] == 2
    np.testing.assert_array_equal(first["weights"], second["weights"])


def test_the_command_line_trains_in_the_processes_torchrun_starts(tmp_path):
    X, y = skrnn.datasets.load_digits_images(return_X_y=True)
    np.savez(tmp_path / "digits.npz", X=X[:300], y=y[:300])
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "skrnn", "fit", "digits.npz", "--distributed"]
    command += ["-o", "model.skrnn", "--param", "hidden_size=8", "--param", "max_epochs=2"]
    done = subprocess.run(
        command,
        timeout=TIMEOUT,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("Model saved to model.skrnn") == 1  # one process reports
    assert done.stdout.count("Trained RNNImageClassifier") == 1
    assert skrnn.load(tmp_path / "model.skrnn").predict(X[:5]).shape == (5,)


# The collectives, in this process: torch.distributed's functions replaced by ones that play
# the other processes.


def test_no_collective_that_pickles_is_called_by_skrnn():
    import importlib
    import pkgutil
    import types

    pickling = {n for n in dir(torch.distributed) if n.endswith(("_object", "_object_list"))}
    assert "broadcast_object_list" in pickling

    def names(code):
        yield from code.co_names
        for constant in code.co_consts:
            if isinstance(constant, types.CodeType):
                yield from names(constant)

    called = {}
    for module in pkgutil.walk_packages(skrnn.__path__, "skrnn."):
        source = importlib.import_module(module.name)
        for value in vars(source).values():
            functions = vars(value).values() if isinstance(value, type) else [value]
            for function in functions:
                code = getattr(getattr(function, "__func__", function), "__code__", None)
                if code is not None and pickling & set(names(code)):
                    called[f"{module.name}.{code.co_qualname}"] = pickling & set(names(code))
    assert called == {}


def _lost_peer(*args, **kwargs):
    raise RuntimeError("[gloo] Connection closed by peer [127.0.0.1]:29500")


def test_a_lost_peer_names_what_the_fit_was_doing(monkeypatch):
    from skorch.history import History

    group = distributed.Group(rank=1, size=2, device=torch.device("cpu"))
    sync = distributed.SyncAcrossRanks(group, distributed.Shard(1, 2, seed=0))
    net = type("Net", (), {"history": History([{"train_loss": 1.0, "batches": []}] * 3)})()
    monkeypatch.setattr(torch.distributed, "all_reduce", _lost_peer)
    with pytest.raises(skrnn.exceptions.DistributedError) as caught:
        sync.on_epoch_end(net)
    assert "Process 1 of 2 lost contact with another process of the group at the end of " in (
        str(caught.value)
    )
    assert "epoch 3: it died" in str(caught.value)
    monkeypatch.setattr(torch.distributed, "broadcast", _lost_peer)
    with pytest.raises(skrnn.exceptions.DistributedError, match="group at the end of training"):
        group.copy_from_main(torch.nn.Linear(2, 2), "at the end of training")


def _playing_rank_0(messages):
    """A broadcast that fills each tensor with the next of ``messages``, as rank 0 would."""

    def broadcast(tensor, src):
        assert src == 0
        tensor.copy_(torch.as_tensor(messages.pop(0), dtype=tensor.dtype))

    return broadcast


def test_bytes_from_the_first_process_come_with_their_length_and_within_a_bound(monkeypatch):
    group = distributed.Group(rank=1, size=2, device=torch.device("cpu"))
    message = list(b"checkpoint")
    monkeypatch.setattr(torch.distributed, "broadcast", _playing_rank_0([[0, 10], message]))
    assert group.from_main(lambda: pytest.fail("runs on rank 0 only"), limit=10) == b"checkpoint"
    # A length past the bound is refused before anything is allocated for it.
    monkeypatch.setattr(torch.distributed, "broadcast", _playing_rank_0([[0, 1 << 60]]))
    with pytest.raises(skrnn.exceptions.DistributedError) as caught:
        group.from_main(bytes, limit=1 << 20)
    assert "Process 0 of 2 announced a message of 1152921504606846976 bytes, where this fit " in (
        str(caught.value)
    )
    assert "accepts at most 1048576" in str(caught.value)


def test_an_error_of_the_first_process_is_raised_in_every_process(monkeypatch):
    group = distributed.Group(rank=1, size=2, device=torch.device("cpu"))
    text = json.dumps({"type": "ModelFileError", "message": "The checkpoint is damaged."})
    sent = [[1, len(text)], list(text.encode())]
    monkeypatch.setattr(torch.distributed, "broadcast", _playing_rank_0(sent))
    with pytest.raises(skrnn.exceptions.ModelFileError, match="^The checkpoint is damaged.$"):
        group.from_main(bytes)
    text = json.dumps({"type": "SomeLibraryError", "message": "it broke"})
    sent = [[1, len(text)], list(text.encode())]
    monkeypatch.setattr(torch.distributed, "broadcast", _playing_rank_0(sent))
    with pytest.raises(RuntimeError, match="^Process 0 failed with SomeLibraryError: it broke$"):
        group.from_main(bytes)


def test_gathered_bytes_are_bounded_in_every_process(monkeypatch):
    group = distributed.Group(rank=0, size=2, device=torch.device("cpu"))

    def all_gather(tensors, mine):  # process 1 announces a huge description
        tensors[0].copy_(mine)
        tensors[1].fill_(1 << 40 if mine.dtype == torch.int64 else 7)

    monkeypatch.setattr(torch.distributed, "all_gather", all_gather)
    with pytest.raises(skrnn.exceptions.DistributedError, match="Process 1 of 2 announced"):
        group.gather(b"mine")

    def reversing(tensors, mine):  # process 1 sends its bytes reversed
        tensors[0].copy_(mine)
        tensors[1].copy_(mine.flip(0))

    monkeypatch.setattr(torch.distributed, "all_gather", reversing)
    assert group.gather(b"abc") == [b"abc", b"cba"]


@pytest.mark.parametrize(
    "n_samples, batch_size, size", [(10, 4, 2), (9, 4, 2), (9, 4, 3), (8, 4, 3)]
)
def test_a_process_reads_as_many_batches_as_its_loader_counts(n_samples, batch_size, size):
    from skrnn._data import ArrayDataset, BatchLoader

    dataset = ArrayDataset(np.zeros((n_samples, 2, 2), np.float32), y=np.arange(n_samples))
    counts, seen = set(), []
    for rank in range(size):
        shard = distributed.Shard(rank, size, seed=0)
        loader = BatchLoader(dataset, batch_size, shuffle=True, shard=shard)
        batches = list(loader)
        counts |= {len(loader), len(batches)}
        seen += [y for _, ys in batches for y in ys.tolist()]
    assert len(counts) == 1  # every process the same number, the one its loader says
    # A last batch with fewer samples than processes is left out: no process waits for it.
    left_out = n_samples % batch_size if 0 < n_samples % batch_size < size else 0
    assert sorted(seen) == sorted(set(seen)) and len(seen) == n_samples - left_out
