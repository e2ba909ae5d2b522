"""One process of a distributed fit, started by tests/test_distributed.py (under torchrun, or
with torchrun's environment variables): fits what its JSON argument says and writes what it
got to ``OUT/rank<R>.npz`` (or ``OUT/rank<R>.error``, the error's type and message).

It counts the calls of torch.distributed's collectives that pickle (``*_object*``, and the
pickling they all share) made while it fits, whoever makes them: ``pickled`` in the npz."""

import json
import os
import sys
import traceback

import numpy as np
import torch.distributed
from skorch.callbacks import Callback

import skrnn
from skrnn import distributed
from skrnn.datasets import load_digits_images, make_digit_strings, make_shapes


class KillAt(Callback):
    """Kill this process (SIGKILL, no clean-up) at the end of epoch ``SKRNN_TEST_KILL_EPOCH``
    when its rank is in ``SKRNN_TEST_KILL_RANKS``: read from the environment, so that the
    resumed fit has the same parameters."""

    def on_epoch_end(self, net, **kwargs):
        ranks = os.environ.get("SKRNN_TEST_KILL_RANKS", "")
        epoch = int(os.environ.get("SKRNN_TEST_KILL_EPOCH", "0"))
        if str(distributed.rank()) in ranks.split(",") and len(net.history) == epoch:
            os.kill(os.getpid(), 9)


def count_pickling_collectives() -> list:
    """Wrap torch.distributed's collectives that pickle so that each call is recorded (and
    still made); returns the list of the calls' names, to be filled."""
    calls = []
    c10d = torch.distributed.distributed_c10d

    def counted(name, original):
        def call(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)

        return call

    for name in dir(c10d):
        if name.endswith(("_object", "_object_list")):
            wrapper = counted(name, getattr(c10d, name))
            setattr(c10d, name, wrapper)
            if hasattr(torch.distributed, name):
                setattr(torch.distributed, name, wrapper)
    # Every collective of objects pickles through this one function.
    c10d._object_to_tensor = counted("_object_to_tensor", c10d._object_to_tensor)
    return calls


def data(task, n, source, out):
    if task in ("classifier", "regressor"):
        X, y = load_digits_images(return_X_y=True)
        if task == "regressor":
            y = y.astype(np.float32)
        X_train, y_train, X_test = X[:n], y[:n], X[n:]
    elif task == "segmenter":
        X_train, y_train = make_shapes(n_samples=n, image_size=12, random_state=0)
        X_test = X_train[:20]
    elif task == "generator":
        X, y = load_digits_images(return_X_y=True)
        X_train, y_train, X_test = (X[:n] > 8).astype(np.uint8), None, (X[n:] > 8).astype(np.uint8)
    else:  # recognizer
        X_train, y_train = make_digit_strings(n_samples=n, max_length=3, random_state=0)
        X_test = X_train[:20]
    if source == "memmap":  # the images from a file, read batch by batch
        path = os.path.join(out, "images.npy")
        if distributed.rank() == 0 and not os.path.exists(path):
            np.save(path + ".tmp.npy", np.asarray(X_train, dtype=np.float32))
            os.replace(path + ".tmp.npy", path)
        if distributed.init():  # the file is complete before any process maps it
            import torch.distributed

            torch.distributed.barrier()
        X_train = np.load(path, mmap_mode="r")
    if source == "other-per-rank":  # a mistake: each process loads other data
        rank = int(os.environ["RANK"])
        X_train, y_train = X_train[rank:], y_train[rank:]
    if source == "other-pixels-per-rank":  # the same shape, dtype and targets; other pixels
        if int(os.environ["RANK"]) == 1:
            X_train = X_train.max() - X_train
    return X_train, y_train, X_test


def main():
    config = json.loads(sys.argv[1])
    out, task = config["out"], config.get("task", "classifier")
    rank = int(os.environ.get("RANK", "0"))
    pickled = count_pickling_collectives()
    try:
        X_train, y_train, X_test = data(task, config.get("n", 1200), config.get("data"), out)
        estimator = {
            "classifier": skrnn.RNNImageClassifier,
            "regressor": skrnn.RNNImageRegressor,
            "segmenter": skrnn.RNNSegmenter,
            "generator": skrnn.RNNImageGenerator,
            "recognizer": skrnn.RNNSequenceRecognizer,
        }[task](callbacks=[KillAt()], n_threads=1, **config.get("params", {}))
        estimator.fit(X_train, y_train)
        estimator.save(os.path.join(out, f"model{rank}.skrnn"))
        module = estimator.net_.module_
        weights = np.concatenate(
            [t.detach().double().cpu().numpy().ravel() for t in module.state_dict().values()]
        )
        if task == "generator":
            outputs = estimator.score_samples(X_test)
        elif hasattr(estimator, "predict_proba"):
            outputs = estimator.predict_proba(X_test)
        else:
            outputs = estimator.predict(X_test)
        np.savez(
            os.path.join(out, f"rank{rank}.npz"),
            weights=weights,
            outputs=np.asarray(outputs).astype(str if task == "recognizer" else np.float64),
            train_loss=np.array([row["train_loss"] for row in estimator.history_]),
            world_size=distributed.world_size(),
            pickled=np.array(pickled, dtype=str),
        )
        distributed.finish()
    except Exception as exc:
        with open(os.path.join(out, f"rank{rank}.error"), "w") as file:
            file.write(f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
        sys.exit(1)


if __name__ == "__main__":
    main()
