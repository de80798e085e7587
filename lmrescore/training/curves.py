"""PNG plots of training curves."""

from __future__ import annotations

from pathlib import Path

from lmrescore.atomic import atomic_save


def plot_curves(history: list[dict[str, float]], path: str | Path, title: str = "") -> None:
    """Train and validation perplexity per epoch (log scale), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [r["train_ppl"] for r in history], "o-", label="train")
    ax.plot(epochs, [r["valid_ppl"] for r in history], "s-", label="valid")
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    atomic_save(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
