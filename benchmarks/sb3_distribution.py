"""SB3's stock MultiCategoricalDistribution vs go_gym's NodeCategorical, in one run.

    .venv/bin/python benchmarks/sb3_distribution.py [--nodes 1000 5000] [--choices 4]

Times one rollout-and-update worth of distribution work (build from logits, sample,
log-probability of the samples, entropy) for a batch of observations, and prints the ratio.
SB3's distribution splits the logits into one Categorical per node; ours keeps one
(B, N, a) Categorical.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from stable_baselines3.common.distributions import Distribution, MultiCategoricalDistribution

from agents.sb3 import NodeCategorical
from go_gym.cli import at_least


def _time(dist: Distribution, logits: torch.Tensor, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        d = dist.proba_distribution(logits)
        actions = d.sample()
        d.log_prob(actions).sum().item()
        entropy = d.entropy()  # SB3 lets a distribution have none; both here have one
        if entropy is not None:
            entropy.sum().item()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=at_least(1), nargs="+", default=[1000, 5000])
    parser.add_argument("--choices", type=at_least(1), default=4)
    parser.add_argument("--batch", type=at_least(1), default=64)
    parser.add_argument("--repeats", type=at_least(1), default=5)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    print(f"batch {args.batch}, {args.choices} choices per node, median of {args.repeats}")
    print(f"{'nodes':>7}{'SB3 stock (ms)':>16}{'NodeCategorical (ms)':>22}{'ratio':>8}")
    for n in args.nodes:
        logits = torch.randn(args.batch, n * args.choices)
        stock = _time(MultiCategoricalDistribution([args.choices] * n), logits, args.repeats)
        ours = _time(NodeCategorical(n, args.choices), logits, args.repeats)
        print(f"{n:>7}{stock * 1e3:>16.1f}{ours * 1e3:>22.2f}{stock / ours:>8.0f}x")


if __name__ == "__main__":
    main()
