"""Part 3 of issue #9, the first seed's experiment 3: the four pruner groups with fine-tuning,
maximising top-1; its correlation table (4.3) and the share of ruined networks.

    python experiments/exp3.py
"""

from _run import search_experiment

# Fay-Hunt, table 4.3 (70 epochs of retraining each).
SEED = {"latency_ratio": [-0.764499, -0.18715, -0.143377, -0.378644],
        "top1": [-0.661244, -0.213514, -0.066348, -0.283732]}

if __name__ == "__main__":
    search_experiment("exp3", SEED, {"pareto": "exp3-pareto"})
