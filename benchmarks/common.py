"""What the benchmark scripts share: the --quick flag (on too when CI is set) and the timer."""

import argparse
import os

from torch.utils.benchmark import Timer


def is_quick(doc: str, argv=None) -> bool:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timings (CI)")
    return parser.parse_args(argv).quick or bool(os.environ.get("CI"))


def plot_mean_std(groups: dict, threshold: float, ylabel: str, title: str, path) -> None:
    """One line per method, the mean over its seeds' evaluation curves ((step, value) lists,
    cut to the shortest) with a ±std band, and the threshold dotted; written to ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, curves in groups.items():
        if not curves:
            continue
        length = min(len(c) for c in curves)
        steps = np.array([s for s, _ in curves[0][:length]])
        values = np.array([[v for _, v in c[:length]] for c in curves])
        mean, std = values.mean(0), values.std(0)
        ax.plot(steps, mean, label=f"{label} ({len(curves)} seeds)")
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.axhline(threshold, color="gray", linestyle=":", label="threshold")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def median_us(fn, min_run_time: float, *args) -> float:
    """Median µs of fn(*args), from torch.utils.benchmark's blocked_autorange (warm-up included)."""
    timer = Timer("fn(*args)", globals=dict(fn=fn, args=args))
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e6
