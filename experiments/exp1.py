"""Part 2 of issue #9, the first seed's experiment 1: no fine-tuning, minimise measured latency
over the four pruner groups of table 3.2, Bayesian optimisation; the correlation table (4.1) and
the binned-mean figure (4.1: every pruner's sparsity against mean latency, on one chart).

    python experiments/exp1.py
"""

from _run import PRUNERS, ROOT, RUNS, search_experiment, trials

# Fay-Hunt, table 4.1 (1,631 runs on CIFAR-10 and the NCS2).
SEED = {"latency_ratio": [-0.80726, -0.40775, -0.11259, -0.552583], "top1": [-0.152767, -0.104505, 0.004462, -0.071923]}


def binned_figure(bins: int = 10) -> None:
    from edgetune.plotting import pyplot, save
    from edgetune.report.analysis import binned_means

    frame = trials(RUNS / "exp1")
    fig, axes = pyplot().subplots(1, 2, figsize=(11, 3.8), dpi=100)
    for ax, metric, label in ((axes[0], "latency_ratio", "mean latency / unpruned"), (axes[1], "top1", "mean top-1 %")):
        for p in PRUNERS:
            b = binned_means(frame, f"param.{p}", metric, bins)
            ax.plot((b["lo"] + b["hi"]) / 2, b["mean"], marker="o", ms=3, label=p.removeprefix("filter_pruner_"))
        ax.set_xlabel("desired sparsity (bin centre)")
        ax.set_ylabel(label)
    axes[0].legend(title="pruner", fontsize=8)
    fig.suptitle("Experiment 1: each pruner's sparsity against the mean of each bin (120 trials, no fine-tuning)",
                 fontsize=9)
    save(fig, ROOT / "docs" / "images" / "results-exp1-binned.png")


if __name__ == "__main__":
    search_experiment("exp1", SEED, {})
    binned_figure()
