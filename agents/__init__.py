"""Agents for go_gym: one protocol (SB3's ``predict``), a registry by name, and the agents.

    >>> import gymnasium as gym
    >>> import go_gym, agents
    >>> env = gym.make("GOPlacement-v0", graph="quick-v0/rnnlm-2")
    >>> agent = agents.make("m-etf", env)
    >>> obs, info = env.reset(seed=0)
    >>> action, _ = agent.predict(obs, deterministic=True)
    >>> _ = env.step(action)

- `agents.base`: the `Agent` protocol, `HeuristicAgent` and `SearchAgent`.
- `agents.registry`: `make`, `names`, and the ``go_gym.agents`` entry-point group.
- `agents.placement`: device placers (`PLACERS`): single-device, human-expert, METIS, Baechi's
  m-TOPO / m-ETF / m-SCT, HEFT, critical-path (CPOP) and random.
- `agents.scheduling`: scheduling priorities (`PRIORITIZERS`): fifo, critical-path,
  memory-aware.
- `agents.fusion`: fusion decisions (`FUSERS`): no-fusion, xla-greedy.
- `agents.search`: evaluation-budgeted searches over any per-op decision vector (random search,
  simulated annealing, BRKGA) and, for placements, boundary descent (single ops moved next
  to a neighbour on another device; the ``boundary-descent`` baseline starts from the human
  expert's placement), evaluated in batches with `go_gym.sim.simulate_many`.
- `agents.sb3`: a batched per-node distribution and a graph policy for stable-baselines3.
"""

from agents.base import Agent, EnvAgent, HeuristicAgent, SearchAgent
from agents.registry import BASELINES, ENTRY_POINT_GROUP, LEARNED, make, names

__all__ = [
    "BASELINES",
    "ENTRY_POINT_GROUP",
    "LEARNED",
    "Agent",
    "EnvAgent",
    "HeuristicAgent",
    "SearchAgent",
    "make",
    "names",
]
