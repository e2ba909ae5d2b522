"""device="auto" on machines with several GPUs, faked: the workers of a parallel search spread
over the GPUs instead of all landing on cuda:0, and the main process keeps the current GPU."""

import multiprocessing

import joblib
import pytest
import torch

from skrnn._utils import resolve_device


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has ``n`` GPUs; returns a function setting the process's name."""

    def fake(n, process_name="MainProcess", parent=False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        process = multiprocessing.current_process()
        monkeypatch.setattr(process, "name", process_name)
        monkeypatch.setattr(multiprocessing, "parent_process", lambda: object() if parent else None)

    return fake


def test_the_main_process_keeps_the_current_gpu(gpus):
    gpus(4)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("LokyProcess-1", 0),
        ("LokyProcess-2", 1),
        ("LokyProcess-4", 3),
        ("LokyProcess-5", 0),
        ("ForkPoolWorker-3", 2),
    ],
)
def test_numbered_workers_spread_over_the_gpus(gpus, name, expected):
    gpus(4, name, parent=True)
    assert resolve_device("auto") == torch.device("cuda", expected)


def test_other_workers_go_by_their_process_id(gpus, monkeypatch):
    gpus(3, "Dask Worker process (from Nanny)", parent=True)
    monkeypatch.setattr("os.getpid", lambda: 10)
    assert resolve_device("auto") == torch.device("cuda", 1)


def test_one_gpu_and_explicit_devices_are_left_alone(gpus):
    gpus(1, "LokyProcess-2", parent=True)
    assert resolve_device("auto") == torch.device("cuda")
    gpus(4, "LokyProcess-2", parent=True)
    assert resolve_device("cuda:3") == torch.device("cuda", 3)
    assert resolve_device("cpu") == torch.device("cpu")


def _worker_name():
    return multiprocessing.current_process().name, multiprocessing.parent_process() is not None


def test_joblib_workers_are_numbered_processes():
    # what the spreading relies on: loky's workers are child processes named LokyProcess-N
    names = joblib.Parallel(n_jobs=2)(joblib.delayed(_worker_name)() for _ in range(2))
    assert all(name.startswith("LokyProcess-") and child for name, child in names)
