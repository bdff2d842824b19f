"""Part 3 of issue #9, the first seed's experiment 2: the four pruner groups with fine-tuning,
minimising measured latency; its correlation table (4.2) and the share of ruined networks.

    python experiments/exp2.py
"""

from _run import search_experiment

# Fay-Hunt, table 4.2 (256 successful runs, 70 epochs of retraining each).
SEED = {"latency_ratio": [-0.827473, -0.500734, -0.138894, -0.503688],
        "top1": [-0.804794, -0.451589, -0.086224, -0.441157]}

if __name__ == "__main__":
    search_experiment("exp2", SEED, {"pareto": "exp2-pareto"})
