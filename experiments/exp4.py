"""Part 4 of issue #9, the first seed's experiment 4: its fastest model's pruning fixed (figure
3.11), fine-tuning epochs and learning rate searched for top-1.

    python experiments/exp4.py
"""

from _run import search_experiment

if __name__ == "__main__":
    search_experiment("exp4", {}, {"best_so_far": "exp4-best-so-far"}, params=["epochs", "learning_rate"])
