"""What the benchmark scripts share: the --quick flag (on too when CI is set) and the timer."""

import argparse
import os

from torch.utils.benchmark import Timer


def is_quick(doc: str, argv=None) -> bool:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timings (CI)")
    return parser.parse_args(argv).quick or bool(os.environ.get("CI"))


def median_us(fn, min_run_time: float, *args) -> float:
    """Median µs of fn(*args), from torch.utils.benchmark's blocked_autorange (warm-up included)."""
    timer = Timer("fn(*args)", globals=dict(fn=fn, args=args))
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e6
