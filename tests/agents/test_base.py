"""The built-in agents' checks: options refused when an agent is made (not at its first
``predict`` or ``fit``, nor silently ignored), and ``predict`` refusing an observation of
another graph than the one its env holds (it decides from the env, not the observation)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import agents
import go_gym  # noqa: F401  (registers the envs)
from agents.base import core_env
from go_gym.generators import random_layered_graph
from tests.agents.conftest import small_cluster

ENV_IDS = {
    "placement": "GOPlacement-v0",
    "scheduling": "GOScheduling-v0",
    "fusion": "GOFusion-v0",
    "joint": "GOJoint-v0",
}
SEARCHES = ("random-search", "annealing", "brkga", "boundary-descent")


def _env(task: str, graph=None, **kw) -> gym.Env:  # type: ignore[no-untyped-def]
    graph = random_layered_graph(30, seed=0) if graph is None else graph
    return gym.make(ENV_IDS[task], graph=graph, cluster=small_cluster(2), **kw)


@pytest.fixture(scope="module")
def envs() -> dict[str, gym.Env]:
    return {task: _env(task) for task in ENV_IDS}


def _makeable(envs: dict[str, gym.Env]) -> list[tuple[str, str]]:
    """Every (baseline, task) pair the registry can make."""
    pairs = []
    for name in agents.BASELINES:
        for task, env in envs.items():
            try:
                agents.make(name, env)
            except ValueError:
                continue  # cannot act on this task
            pairs.append((name, task))
    return pairs


def test_every_baseline_refuses_an_unknown_option_when_made(envs) -> None:
    """Before: heuristics and searches took any keyword and failed at predict/fit with
    ``TypeError: place_m_sct() got an unexpected keyword argument``, or ignored it where
    the heuristic called takes no options (fifo on the scheduling env, xla-greedy on fusion)."""
    pairs = _makeable(envs)
    assert ("fifo", "scheduling") in pairs and ("xla-greedy", "fusion") in pairs
    assert ("tf-default", "joint") in pairs and ("brkga", "fusion") in pairs
    for name, task in pairs:
        with pytest.raises(TypeError, match=r"unexpected option\(s\) \['bogus_kw'\]; it accepts"):
            agents.make(name, envs[task], bogus_kw=1)


@pytest.mark.parametrize(
    ("name", "task", "message"),
    [
        (
            "m-sct",
            "placement",
            r"HeuristicAgent\(placement='m-sct'\) on PlacementEnv got unexpected option\(s\) "
            r"\['bogus_kw'\]; it accepts \['max_lp_ops'\] \(options go to the 'm-sct' placer",
        ),
        (
            "fifo",
            "scheduling",
            r"HeuristicAgent\(priority='fifo'\) on SchedulingEnv .* it accepts \[\] \(options go "
            r"to the placer only, and SchedulingEnv does not place\)",
        ),
        (
            "metis",
            "joint",
            r"HeuristicAgent\(placement='metis'\) on JointEnv .* it accepts \['imbalance'\]",
        ),
        (
            "annealing",
            "scheduling",
            r"SearchAgent\(method='annealing'\) .* it accepts \['batch_size', 'block_fraction', "
            r"'order', 't_end', 't_start'\] \(options go to annealing, besides budget, init",
        ),
        (
            "boundary-descent",
            "placement",
            r"SearchAgent\(method='boundary-descent'\) .* it accepts \['balance_moves', "
            r"'batch_size', 'max_combine'\]",
        ),
    ],
)
def test_option_errors_name_the_agent_and_what_it_accepts(envs, name, task, message) -> None:
    with pytest.raises(TypeError, match=message):
        agents.make(name, envs[task], bogus_kw=1)


def test_options_the_functions_take_still_reach_them(envs) -> None:
    env = envs["placement"]
    obs, _ = env.reset(seed=0)
    # human-expert's family: inception-v3 is a single device whatever the graph
    expert = agents.make("human-expert", env, family="inception-v3")
    assert not np.asarray(expert.predict(obs)[0]).any()
    agents.make("metis", envs["joint"], imbalance=0.1).predict(envs["joint"].reset(seed=0)[0])
    search = agents.make("annealing", env, budget=5, batch_size=2, t_start=0.1, init="m-sct")
    assert search.fit(env).evaluations == 5
    descent = agents.make("boundary-descent", env, budget=5, batch_size=2)
    assert descent.fit(env).evaluations <= 5


@pytest.mark.parametrize(
    ("name", "task", "init", "message"),
    [
        ("boundary-descent", "placement", "nope", r"init 'nope' is not a placement heuristic"),
        ("annealing", "scheduling", "m-sct", r"init 'm-sct' is not a priority heuristic"),
        ("brkga", "fusion", "fifo", r"init 'fifo' is not a fusion heuristic; known: \['no-fus"),
    ],
)
def test_search_init_must_name_a_heuristic_of_the_task(envs, name, task, init, message) -> None:
    """Before: a bad ``init`` was accepted and only failed when ``fit`` made the heuristic."""
    with pytest.raises(ValueError, match=message):
        agents.make(name, envs[task], budget=4, init=init)
    agents.make("annealing", envs["scheduling"], budget=4, init="critical-path")


# --- predict reads the env, so the observation must be of its graph ---------------------------
def _wider(graph):  # type: ignore[no-untyped-def]
    """The graph with 4x the flops: same ops and edges, another workload (as
    quick-train-v0/amoebanet-f16 is to quick-v0/amoebanet)."""
    return graph.replace(name=f"{graph.name}-x4", flops=graph.flops * 4)


@pytest.mark.parametrize("name", ["m-sct", "heft", "single-device", "annealing"])
def test_predict_refuses_an_observation_of_another_graph(name) -> None:
    """Before: an observation of another graph got the env's graph's decision (the same
    action for a graph of the same size, a wrong-length one for another size)."""
    env = _env("placement")
    same_size = _env("placement", _wider(random_layered_graph(30, seed=0)))
    other_size = _env("placement", random_layered_graph(24, seed=2))
    agent = agents.make(name, env, **({"budget": 4} if name == "annealing" else {}))
    obs, _ = env.reset(seed=0)
    action, _ = agent.predict(obs)
    assert np.asarray(action).shape == (30,)
    for other, why in [(same_size, "its node_features entry differs"), (other_size, "24 ops")]:
        other_obs, _ = other.reset(seed=0)
        with pytest.raises(ValueError, match=why) as info:
            agent.predict(other_obs)
        message = str(info.value)
        assert "not of it" in message and "reset that env to the observation's graph" in message
    with pytest.raises(ValueError, match="not a go_gym observation dict"):
        agent.predict(np.zeros(30))


def test_predict_in_the_runners_order_and_on_every_graph_of_a_multi_graph_env() -> None:
    """The runner's order (fit, reset, predict, step), and a multi-graph env: each reset's
    graph is decided, and an observation kept from an earlier episode is refused."""
    graphs = [random_layered_graph(30, seed=0), random_layered_graph(24, seed=2)]
    env = gym.make("GOPlacement-v0", graphs=graphs, cluster=small_cluster(2))
    core = core_env(env)
    agent = agents.make("annealing", env, budget=4)
    agent.fit(env, 4)
    seen: dict[int, dict[str, np.ndarray]] = {}
    for seed in range(12):
        obs, info = env.reset(seed=seed)
        seen[info["n_ops"]] = obs
        action, _ = agent.predict(obs)
        assert np.asarray(action).shape == (30,)  # padded to the env's largest graph
        assert np.isfinite(env.step(action)[1])
    assert set(seen) == {30, 24}
    stale = seen[24] if core.graph.n_ops == 30 else seen[30]
    with pytest.raises(ValueError, match="not of it"):
        agent.predict(stale)


def test_predict_accepts_batched_padded_and_refinement_observations() -> None:
    """What predict took before still works: a vectorised env's batch of the graph, the
    graph padded to other sizes, and the extra entries of ``episode_steps > 1``."""
    graph = random_layered_graph(30, seed=0)
    env = _env("placement", graph)
    agent = agents.make("m-etf", env)
    obs, _ = env.reset(seed=0)
    expected, _ = agent.predict(obs)
    batched = {k: np.stack([v, v]) for k, v in obs.items()}
    assert np.array_equal(agent.predict(batched)[0], expected)
    assert np.array_equal(agent.predict({k: v[None] for k, v in obs.items()})[0], expected)
    padded = _env("placement", graph, max_nodes=50, max_edges=200).reset(seed=0)[0]
    assert padded["node_mask"].shape == (50,)
    assert np.array_equal(agent.predict(padded)[0], expected)
    refining = _env("placement", graph, episode_steps=3).reset(seed=0)[0]
    assert "previous_action" in refining
    assert np.array_equal(agent.predict(refining)[0], expected)
    # a batch holding another graph's row is refused as a whole
    other = _env("placement", _wider(graph)).reset(seed=0)[0]
    mixed = {k: np.stack([obs[k], other[k]]) for k in obs}
    with pytest.raises(ValueError, match="node_features entry differs"):
        agent.predict(mixed)
    # another cluster: the device features (and the number of choices) differ
    three = gym.make("GOPlacement-v0", graph=graph, cluster=small_cluster(3)).reset(seed=0)[0]
    with pytest.raises(ValueError, match="device_features"):
        agent.predict(three)
