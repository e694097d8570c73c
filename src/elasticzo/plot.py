"""`elasticzo plot RUN_DIR`: loss and accuracy per epoch and the time per phase, from the run's metrics.jsonl."""

import json
from pathlib import Path

from elasticzo.trainer import PHASES


def read_metrics(run_dir: Path) -> list:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise ValueError(f"{run_dir} holds no metrics.jsonl (is it a run directory written by train --out?)")
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is damaged: {exc}") from exc
    if not rows:
        raise ValueError(f"{path} has no finished epoch yet")
    for row in rows:
        if not (isinstance(row, dict) and "epoch" in row and "train_loss" in row and "time_breakdown" in row):
            raise ValueError(f"{path} has a line without epoch, train_loss and time_breakdown: {row!r}")
    return rows


def plot_run(run_dir, output) -> Path:
    """Writes a figure with three panels: train/test loss, test accuracy and seconds per phase, per epoch."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("elasticzo plot needs matplotlib: pip install 'elasticzo[plot]'") from None
    matplotlib.use("Agg")  # files only: no display needed, works over ssh and on a headless Pi
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    epochs = [r["epoch"] for r in rows]
    fig, (loss_ax, acc_ax, time_ax) = plt.subplots(1, 3, figsize=(15, 4.2))
    loss_ax.plot(epochs, [r["train_loss"] for r in rows], marker="o", label="train")
    if all("test_loss" in r for r in rows):
        loss_ax.plot(epochs, [r["test_loss"] for r in rows], marker="o", label="test")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    loss_ax.legend()
    if all("test_accuracy" in r for r in rows):
        acc_ax.plot(epochs, [100 * r["test_accuracy"] for r in rows], marker="o", color="tab:green")
    acc_ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    bottom = [0.0] * len(rows)
    for phase in PHASES:
        values = [r["time_breakdown"].get(phase, 0.0) for r in rows]
        time_ax.bar(epochs, values, bottom=bottom, label=phase)
        bottom = [b + v for b, v in zip(bottom, values)]
    time_ax.set(xlabel="epoch", ylabel="seconds", title="time per phase")
    time_ax.legend(fontsize="small")
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    output = Path(output) if output else Path(run_dir) / "plot.png"
    fig.savefig(output, dpi=100)
    plt.close(fig)
    return output


def plot_command(args) -> int:
    print(plot_run(args.run_dir, args.output))
    return 0
