"""Sequential MNIST, online: images stream in pixel chunks; the label is predicted at the end.

Each 28x28 image is flattened to 784 pixels in [0, 1], zero-padded to a multiple of ``chunk``
(20 pixels: 40 steps) and fed ``chunk`` pixels per step; the state is reset at each image. The
label is the target of the last ``label_steps`` steps of an image (the authors score the last
half of the steps), -1 (none) before. Test accuracy: the exact recurrence over whole test images,
the prediction at the last step.

Data: with ``train-*`` and ``t10k-*`` IDX files in ``mnist_dir``, the standard 60k/10k split;
with only the ``t10k-*`` files (10k images), train = its first 8000, test = its last 2000.
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from lmrescore.errors import InputError
from lmrescore.online.runs import OnlineConfig, make_learner

SPLIT_AT = 8000  # t10k-only data: images [0, 8000) train, [8000, 10000) test


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a uint8 array of its declared shape."""
    if not path.is_file():
        gz = path.with_name(path.name + ".gz")
        if not gz.is_file():
            raise InputError(f"{path}(.gz): no such MNIST file")
        path = gz
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise InputError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise InputError(f"{path}: {body.size} values, header says {shape}")
    return body.reshape(shape)


def load_mnist(mnist_dir: str | Path) -> dict[str, tuple[Tensor, Tensor]]:
    """{"train": (images (N, 784) float in [0, 1], labels (N,)), "test": ...}; see module doc."""
    d = Path(mnist_dir)

    def pair(prefix: str) -> tuple[Tensor, Tensor]:
        x = read_idx(d / f"{prefix}-images-idx3-ubyte")
        y = read_idx(d / f"{prefix}-labels-idx1-ubyte")
        if len(x) != len(y):
            raise InputError(f"{d}: {prefix} has {len(x)} images but {len(y)} labels")
        return torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255), \
            torch.from_numpy(y.astype(np.int64))

    test = pair("t10k")
    if (d / "train-images-idx3-ubyte").exists() or (d / "train-images-idx3-ubyte.gz").exists():
        return {"train": pair("train"), "test": test}
    x, y = test
    return {"train": (x[:SPLIT_AT], y[:SPLIT_AT]), "test": (x[SPLIT_AT:], y[SPLIT_AT:])}


def to_steps(images: Tensor, chunk: int) -> Tensor:
    """(N, 784) -> (N, L, chunk), zero-padded, L = ceil(784 / chunk)."""
    pad = (-images.shape[1]) % chunk
    return torch.nn.functional.pad(images, (0, pad)).unflatten(1, (-1, chunk))


@torch.no_grad()
def test_accuracy(model: Any, steps: Tensor, labels: Tensor, batch: int = 500) -> list[float]:
    """Per-run accuracy of the last-step prediction, exact recurrence; steps (N, L, chunk)."""
    correct = torch.zeros(model.runs)
    for i in range(0, len(steps), batch):
        x = steps[i: i + batch, :, None].expand(-1, -1, model.runs, -1)  # (b, L, R, chunk)
        state = model.zero_state(len(x))
        for t in range(x.shape[1]):
            state = model.step(state, x[:, t])
        correct += (model.logits(state).argmax(-1) == labels[i: i + batch, None]).sum(0)
    return (correct / len(steps)).tolist()


def run_seqmnist(config: OnlineConfig, mnist_dir: str | Path, chunk: int = 20,
                 label_steps: int = 20, eval_every: int = 4000, test_images: int = 0,
                 ) -> dict[str, Any]:
    """Train ``config.runs`` seeds online on the training images, in one fixed shuffled order.

    Args:
        config: the run; ``config.steps`` online steps (0: one pass over the training images).
        mnist_dir: folder with the IDX files.
        chunk: pixels per step.
        label_steps: last steps of each image whose target is the label.
        eval_every: test every this many steps (and at the end).
        test_images: score only the first this many test images (0: all).

    Returns:
        {"steps", "eval_steps", "test_acc": per run a list (one per evaluation),
         "final": per run the last test accuracy, "seconds", "steps_per_s", "data"}.
    """
    data = load_mnist(mnist_dir)
    train_x, train_y = data["train"]
    test_x, test_y = data["test"]
    if test_images:
        test_x, test_y = test_x[:test_images], test_y[:test_images]
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(config.seed))
    seq = to_steps(train_x[order], chunk)  # (N, L, chunk)
    length = seq.shape[1]
    labels = train_y[order]
    test_steps = to_steps(test_x, chunk)
    total = config.steps or len(seq) * length
    model, learner = make_learner(config, input_size=chunk, classes=10)
    no_target = torch.full((config.runs,), -1)
    eval_steps, accs = [], []
    tic, eval_seconds = time.perf_counter(), 0.0
    for t in tqdm(range(total), desc=config.name, unit="step", mininterval=30):
        image, pos = divmod(t, length)
        image %= len(seq)
        target = labels[image].expand(config.runs) if pos >= length - label_steps else no_target
        learner.observe(seq[image, pos].expand(config.runs, -1), target, pos == 0)
        if (t + 1) % eval_every == 0 or t + 1 == total:
            e = time.perf_counter()
            eval_steps.append(t + 1)
            accs.append(test_accuracy(model, test_steps, test_y))
            eval_seconds += time.perf_counter() - e
    seconds = time.perf_counter() - tic - eval_seconds
    per_run = torch.tensor(accs).T.tolist()
    return {"steps": total, "eval_steps": eval_steps, "test_acc": per_run,
            "final": [r[-1] for r in per_run], "seconds": seconds,
            "steps_per_s": total / seconds,
            "data": {"train_images": len(train_x), "test_images": len(test_x), "chunk": chunk,
                     "label_steps": label_steps}}
