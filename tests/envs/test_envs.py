"""Every registered go_gym env: Gymnasium conformance, determinism, pickling, and errors."""

from __future__ import annotations

import json
import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import go_gym
from go_gym import Cluster, OpGraph, OpKind
from go_gym.generators import random_layered_graph
from go_gym.sim import lower_bound, simulate

ENV_IDS = sorted(go_gym.ENV_IDS)
GRAPH = "quick-v0/rnnlm-2"


def small_graph(n: int = 40, seed: int = 0) -> OpGraph:
    return random_layered_graph(n, seed=seed, width=4)


@pytest.fixture(params=ENV_IDS)
def env_id(request):
    return request.param


def test_registered_with_string_entry_points_and_json_spec(env_id):
    spec = gym.spec(env_id)
    assert isinstance(spec.entry_point, str) and spec.entry_point.startswith("go_gym.envs:")
    env = gym.make(env_id, graph=GRAPH)
    json.loads(env.spec.to_json())  # registered kwargs stay JSON-serialisable
    env.close()


def test_make_with_module_prefix_in_a_fresh_interpreter():
    import subprocess
    import sys

    code = "import gymnasium as gym; e = gym.make('go_gym:GOPlacement-v0'); print(e.reset(seed=0)[1]['graph'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip()


@pytest.mark.filterwarnings("ignore:.*Box observation space m.* value is:UserWarning")
def test_check_env(env_id):
    env = gym.make(env_id, graph=GRAPH, render_mode="ansi")
    check_env(env.unwrapped, skip_render_check=False)


def rollout(env: gym.Env, seed: int, steps: int = 3) -> list:
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = [obs["node_features"].sum(), info["graph"]]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace += [reward, info["step_time"], terminated]
        if terminated or truncated:
            obs, info = env.reset()
            trace.append(info["graph"])
    return trace


def test_same_seed_same_rollout(env_id):
    a = gym.make(env_id, graphs="quick-v0", episode_steps=2)
    b = gym.make(env_id, graphs="quick-v0", episode_steps=2)
    assert rollout(a, 7) == rollout(b, 7)


def test_pickle_round_trip(env_id):
    env = gym.make(env_id, graph=GRAPH)
    env.reset(seed=1)
    clone = pickle.loads(pickle.dumps(env))
    action = env.action_space.sample()
    clone.reset(seed=1)
    assert env.step(action)[1] == clone.step(action)[1]


def test_placement_reward_and_info_match_the_simulator():
    graph = small_graph()
    cluster = Cluster.preset("p100", 2)
    env = gym.make("GOPlacement-v0", graph=graph, cluster=cluster)
    _obs, info = env.reset(seed=0)
    bound = lower_bound(graph, cluster)
    single = simulate(graph, cluster, np.zeros(graph.n_ops, np.int64))
    assert info["lower_bound"] == bound
    assert info["reference_step_time"] == single.step_time
    placement = np.arange(graph.n_ops) % 2
    _, reward, terminated, truncated, info = env.step(placement)
    expected = simulate(graph, cluster, placement)
    assert info["step_time"] == expected.step_time and info["valid"] == expected.valid
    assert reward == pytest.approx(-np.sqrt(expected.step_time / bound), rel=1e-12)
    assert terminated and not truncated
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(placement)


def test_rewards_by_name():
    graph, cluster = small_graph(), Cluster.preset("p100", 2)
    placement = np.zeros(graph.n_ops, np.int64)
    t = simulate(graph, cluster, placement).step_time
    for name, expected in [("neg_step_time", -t), ("speedup", 1.0)]:
        env = gym.make("GOPlacement-v0", graph=graph, cluster=cluster, reward=name)
        env.reset(seed=0)
        assert env.step(placement)[1] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="unknown reward 'fast'"):
        gym.make("GOPlacement-v0", graph=graph, reward="fast")


def test_out_of_memory_ends_the_episode_with_the_penalty():
    graph = small_graph()
    tiny = Cluster.homogeneous(
        "tiny",
        2,
        peak_flops=1e13,
        mem_bandwidth=1e12,
        memory_bytes=1e3,
        launch_overhead_s=0.0,
        link_bandwidth=1e10,
        link_latency_s=0.0,
    )
    env = gym.make("GOPlacement-v0", graph=graph, cluster=tiny, episode_steps=5, oom_penalty=50.0)
    _, info = env.reset(seed=0)
    _, reward, terminated, _, info = env.step(np.zeros(graph.n_ops, np.int64))
    assert not info["valid"] and terminated
    assert reward == pytest.approx(-np.sqrt(50.0), rel=1e-12)
    assert info["reference_valid"] is False  # the reward is defined even so


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.zeros(3, np.int64), r"placement action has shape \(3,\), expected \(40,\)"),
        (np.full(40, 2), r"placement action\[0\] = 2 is outside 0..1"),
        (np.full(40, 0.5), "must hold integers"),
    ],
)
def test_actions_outside_the_space_raise_clear_errors(action, message):
    env = gym.make("GOPlacement-v0", graph=small_graph(), cluster="p100", n_devices=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.unwrapped.step(action)


def test_joint_action_must_be_a_dict_of_the_three():
    env = gym.make("GOJoint-v0", graph=small_graph(), n_devices=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"keys \['placement', 'priority', 'fusion'\]"):
        env.unwrapped.step({"placement": np.zeros(40, np.int64)})
    action = env.action_space.sample()
    assert np.isfinite(env.step(action)[1])


def test_a_suite_graph_takes_its_entrys_cluster_unless_told_otherwise():
    entry = go_gym.get_entry(GRAPH)
    env = gym.make("GOPlacement-v0", graph=GRAPH)
    assert env.unwrapped.cluster.n_devices == entry.n_devices
    assert gym.make("GOPlacement-v0", graph=GRAPH, n_devices=1).unwrapped.cluster.n_devices == 1
    # 0 devices is an error, not "the entry's count"
    with pytest.raises(ValueError, match=r"supports 1\.\.8 devices, got 0"):
        gym.make("GOPlacement-v0", graph=GRAPH, n_devices=0)


def test_colocated_ops_follow_their_first_member():
    base = small_graph(12, seed=3)
    coloc = np.full(base.n_ops, -1)
    coloc[[4, 7, 9]] = 0
    graph = base.replace(name="coloc", colocation=coloc)
    env = gym.make("GOPlacement-v0", graph=graph, n_devices=2)
    env.reset(seed=0)
    action = np.zeros(graph.n_ops, np.int64)
    action[[7, 9]] = 1  # overridden by op 4's decision (device 0)
    ours = env.step(action)[4]["step_time"]
    same = simulate(graph, env.unwrapped.cluster, np.zeros(graph.n_ops, np.int64)).step_time
    assert ours == same


def test_multi_graph_mode_pads_and_masks():
    graphs = [small_graph(20, 1), small_graph(35, 2)]
    env = gym.make("GOPlacement-v0", graphs=graphs, n_devices=2)
    seen = set()
    for seed in range(12):
        obs, info = env.reset(seed=seed)
        n = info["n_ops"]
        seen.add(n)
        assert obs["node_features"].shape[0] == 35
        assert obs["node_mask"].sum() == n and obs["node_mask"][:n].all()
        assert not obs["node_features"][n:].any()
        env.step(env.action_space.sample())
    assert seen == {20, 35}


def test_generator_graphs_need_padding_sizes():
    with pytest.raises(ValueError, match="needs max_nodes and max_edges"):
        gym.make("GOPlacement-v0", graphs=lambda rng: small_graph(10, int(rng.integers(9))))
    env = gym.make(
        "GOPlacement-v0",
        graphs=lambda rng: small_graph(30, int(rng.integers(1000))),
        max_nodes=30,
        max_edges=200,
        n_devices=2,
    )
    obs, _info = env.reset(seed=3)
    assert obs["node_features"].shape == (30, 15)


def test_iterative_refinement_observes_the_previous_decision():
    env = gym.make("GOPlacement-v0", graph=small_graph(), n_devices=2, episode_steps=3)
    obs, _ = env.reset(seed=0)
    assert not obs["previous_action"].any()
    action = np.arange(40) % 2
    obs, _, terminated, _, info = env.step(action)
    assert (obs["previous_action"][0] == action).all() and not terminated
    assert obs["previous_result"][0] == pytest.approx(info["step_time"] / info["lower_bound"])


def test_observation_is_encoded_once_per_graph_and_copied_per_call(monkeypatch):
    import go_gym.envs.graph_env as graph_env

    calls = []
    real = graph_env.encode
    monkeypatch.setattr(graph_env, "encode", lambda *a: calls.append(a) or real(*a))
    env = gym.make("GOPlacement-v0", graph=small_graph(), n_devices=2, episode_steps=3)
    obs1, _ = env.reset(seed=0)
    obs2 = env.step(env.action_space.sample())[0]
    env.reset(seed=1)
    assert len(calls) == 1
    assert (obs1["node_features"] == obs2["node_features"]).all()
    obs1["node_features"][:] = 0  # the caller owns what it gets
    assert env.step(env.action_space.sample())[0]["node_features"].any()


def test_fixed_decisions_of_the_single_task_envs():
    graph = small_graph()
    placement = np.arange(graph.n_ops) % 2
    env = gym.make("GOScheduling-v0", graph=graph, n_devices=2, placement=placement)
    env.reset(seed=0)
    priority = np.zeros(graph.n_ops, np.int64)
    got = env.step(priority)[4]["step_time"]
    assert got == simulate(graph, env.unwrapped.cluster, placement, priority).step_time
    with pytest.raises(ValueError, match="decides placement; do not also fix it"):
        gym.make("GOPlacement-v0", graph=graph, placement=placement)


def test_render_modes():
    env = gym.make("GOPlacement-v0", graph=GRAPH, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    assert (frame != 255).any()  # something was drawn
    text = gym.make("GOPlacement-v0", graph=GRAPH, render_mode="ansi")
    text.reset(seed=0)
    text.step(text.action_space.sample())
    assert "lower bound" in text.render()


def test_async_vector_env():
    envs = gym.make_vec("GOPlacement-v0", num_envs=2, vectorization_mode="async", graph=GRAPH)
    envs.reset(seed=0)
    _obs, reward, terminated, _truncated, _info = envs.step(envs.action_space.sample())
    assert reward.shape == (2,) and terminated.all()
    envs.close()


def test_op_kind_observation_uses_the_vocabulary():
    env = gym.make("GOPlacement-v0", graph=GRAPH)
    obs, _ = env.reset(seed=0)
    assert obs["op_kind"].max() < len(OpKind)


def test_a_generator_keeps_only_its_last_few_graphs():
    env = gym.make(
        "GOPlacement-v0",
        graphs=lambda rng: small_graph(30, int(rng.integers(10**9))),
        max_nodes=30,
        max_edges=200,
        n_devices=2,
    )
    from go_gym.envs.graph_env import SAMPLED_CONTEXTS

    for seed in range(3 * SAMPLED_CONTEXTS):
        env.reset(seed=seed)
    assert len(env.unwrapped._contexts) == SAMPLED_CONTEXTS  # not one per reset, forever
    pool = gym.make("GOPlacement-v0", graphs=[small_graph(30, s) for s in range(12)], n_devices=2)
    for seed in range(40):
        pool.reset(seed=seed)
    assert len(pool.unwrapped._contexts) == 12  # a pool's graphs all stay


def test_default_cluster_of_several_graphs():
    # quick-v0 runs on 2 P100s, synthetic-v0 on 4: no silent choice by the first graph
    mixed = ["quick-v0/rnnlm-2", "synthetic-v0/layered-500-s0"]
    with pytest.raises(ValueError, match=r"different clusters.*rnnlm-2: p100 x2.*p100 x4"):
        gym.make("GOPlacement-v0", graphs=mixed)
    assert gym.make("GOPlacement-v0", graphs=mixed, n_devices=4).unwrapped.cluster.n_devices == 4
    same = gym.make("GOPlacement-v0", graphs=["quick-v0/rnnlm-2", "quick-v0/gnmt-3"])
    assert same.unwrapped.cluster.name == "p100x2"
    # a generator and OpGraphs get the documented default, a 4-GPU P100 machine
    generated = gym.make(
        "GOPlacement-v0", graphs=lambda rng: small_graph(30), max_nodes=30, max_edges=200
    )
    assert generated.unwrapped.cluster.name == "p100x4"
    assert gym.make("GOPlacement-v0", graphs=[small_graph()]).unwrapped.cluster.name == "p100x4"


def test_no_step_after_an_out_of_memory_end():
    graph = small_graph()
    tiny = Cluster.homogeneous(
        "tiny", 2, peak_flops=1e13, mem_bandwidth=1e12, memory_bytes=1e3,
        launch_overhead_s=1e-6, link_bandwidth=1e10, link_latency_s=1e-6,
    )  # fmt: skip
    env = gym.make("GOPlacement-v0", graph=graph, cluster=tiny, episode_steps=3)
    env.reset(seed=0)
    *_, terminated, _, info = env.step(np.zeros(graph.n_ops, np.int64))
    assert terminated and not info["valid"]
    with pytest.raises(RuntimeError, match="episode is over"):
        env.unwrapped.step(np.zeros(graph.n_ops, np.int64))
    env.reset(seed=0)
    env.step(np.zeros(graph.n_ops, np.int64))  # a reset starts a new episode


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"graphs": "quick-v0", "placement": np.zeros(618, np.int64)},
            "'quick-v0/gnmt-3' has 1494",
        ),
        ({"graph": GRAPH, "placement": np.full(618, 0.5)}, "fixed placement must hold integers"),
        ({"graph": GRAPH, "placement": np.full(618, 5)}, r"fixed placement\[0\] = 5 is outside"),
        ({"graph": GRAPH, "priority_levels": 2.5}, "priority_levels must be an integer >= 1"),
        ({"graph": GRAPH, "episode_steps": 2.0}, "episode_steps must be an integer >= 1"),
        ({"graph": GRAPH, "max_nodes": 0}, "max_nodes must be an integer >= 1"),
        ({"graph": GRAPH, "max_nodes": 10}, "'quick-v0/rnnlm-2' has 618 ops"),
    ],
)
def test_bad_options_fail_at_construction(kwargs, message):
    """Errors at make(), naming the option, not at the reset that first meets a graph they
    do not fit (or never, with the value silently rounded)."""
    env_id = "GOPlacement-v0" if "placement" not in kwargs else "GOScheduling-v0"
    with pytest.raises(ValueError, match=message):
        gym.make(env_id, **kwargs)


def test_a_fixed_array_cannot_serve_a_generator_and_graphs_is_not_one_graph():
    with pytest.raises(ValueError, match="fixed placement is one array for one graph"):
        gym.make(
            "GOScheduling-v0",
            graphs=lambda rng: small_graph(30),
            max_nodes=30,
            max_edges=200,
            placement=np.zeros(30, np.int64),
        )
    with pytest.raises(TypeError, match="pass one OpGraph as graph="):
        gym.make("GOPlacement-v0", graphs=small_graph())


def test_a_fixed_placement_reports_what_is_simulated():
    """Colocated ops follow their group's first member in a fixed placement as in an action,
    and `fixed_decisions` says so instead of echoing the array given."""
    base = small_graph(12, seed=3)
    coloc = np.full(base.n_ops, -1)
    coloc[[4, 7, 9]] = 0
    graph = base.replace(colocation=coloc)
    given = np.arange(graph.n_ops) % 2
    env = gym.make("GOScheduling-v0", graph=graph, n_devices=2, placement=given)
    env.reset(seed=0)
    fixed = env.unwrapped.fixed_decisions["placement"]
    assert fixed[7] == fixed[9] == given[4] and fixed[8] == given[8]
    step_time = env.step(np.zeros(graph.n_ops, np.int64))[4]["step_time"]
    expected = simulate(graph, env.unwrapped.cluster, fixed, np.zeros(graph.n_ops, np.int64))
    assert expected.valid and step_time == expected.step_time


def test_a_graph_that_costs_nothing_is_refused():
    zero = go_gym.graph_from_json(
        {
            "name": "zero",
            "nodes": [
                {"id": 0, "name": "a", "compute_us": 0, "out_bytes": 0},
                {"id": 1, "name": "b", "compute_us": 0, "out_bytes": 0},
            ],
            "edges": [[0, 1]],
        }
    )
    with pytest.raises(ValueError, match="'zero' takes no time"):
        gym.make("GOPlacement-v0", graph=zero)


def test_a_measured_graph_of_ops_shorter_than_a_launch_is_not_refused():
    """Measured times below the launch overhead: the fused bound (what GOFusion-v0 and
    GOJoint-v0 normalise by) is still positive and below every plan's step time."""
    graph = OpGraph(
        name="diamond-us",
        op_names=["a", "b", "c", "d"],
        op_kind=[OpKind.ELEMENTWISE] * 4,
        edge_src=[0, 0, 1, 2],
        edge_dst=[1, 2, 3, 3],
        measured_us=[3.0, 4.0, 5.0, 3.0],
        bytes_written=[1e3] * 4,
        edge_bytes=[1e3] * 4,
    )
    cluster = Cluster.preset("p100", 2)  # 5 us launches
    for env_id in ("GOFusion-v0", "GOJoint-v0"):
        env = gym.make(env_id, graph=graph, cluster=cluster)
        _, info = env.reset(seed=0)
        # a group is never faster than its slowest member, 5 us
        assert info["lower_bound"] == pytest.approx(5e-6, rel=1e-12)
    env = gym.make("GOFusion-v0", graph=graph, cluster=cluster, fusion_levels=3)
    for decision in np.ndindex(*([3] * graph.n_ops)):
        env.reset(seed=0)
        info = env.step(np.array(decision))[4]
        assert info["step_time"] >= info["lower_bound"]


@pytest.mark.parametrize(
    ("env_id", "kwargs", "message"),
    [
        ("GOScheduling-v0", {}, r"GOScheduling-v0 \(SchedulingEnv\) decides priority"),
        ("GOJoint-v0", {}, r"GOJoint-v0 \(JointEnv\) decides priority"),
        ("GOPlacement-v0", {"priority": np.zeros(618, np.int64)}, "was given priority="),
    ],
)
def test_the_placeto_profile_refuses_priorities_at_construction(env_id, kwargs, message):
    with pytest.raises(ValueError, match=message + ".*profile='placeto' takes no priority"):
        gym.make(env_id, graph=GRAPH, profile="placeto", **kwargs)
    # without priorities the profile runs
    env = gym.make("GOFusion-v0", graph=GRAPH, profile="placeto")
    env.reset(seed=0)
    assert env.step(env.action_space.sample())[4]["valid"]


def test_the_joint_action_dict_is_in_sorted_key_order():
    """As the GOJoint-v0 docstring says: Gymnasium sorts a Dict's keys."""
    env = gym.make("GOJoint-v0", graph=GRAPH)
    assert list(env.action_space.spaces) == ["fusion", "placement", "priority"]
    assert "Dict(fusion=MultiDiscrete" in (type(env.unwrapped).__doc__ or "")


def test_reset_can_choose_the_graph():
    env = gym.make("GOPlacement-v0", graphs=["quick-v0/rnnlm-2", "quick-v0/transformer-xl-2"])
    for seed in range(4):
        _, info = env.reset(seed=seed, options={"graph": "quick-v0/transformer-xl-2"})
        assert info["graph"] == "quick-v0/transformer-xl-2" and info["n_ops"] == 248
    obs, _ = env.reset(seed=0, options={"graph": small_graph(30)})  # any graph that fits
    assert obs["node_mask"].sum() == 30
    with pytest.raises(ValueError, match=r"unknown reset options \['graf'\]"):
        env.reset(options={"graf": GRAPH})
    with pytest.raises(ValueError, match="more than this env's max_nodes=618"):
        env.reset(options={"graph": small_graph(700)})


def test_evaluate_rows_must_be_of_the_current_graph():
    env = gym.make("GOPlacement-v0", graph=small_graph(), n_devices=2, max_nodes=50)
    env.reset(seed=0)
    core = env.unwrapped
    assert core.evaluate({"placement": np.zeros((2, 40), np.int64)}).shape == (2,)
    with pytest.raises(ValueError, match=r"rows have shape \(2, 50\), expected \(2, 40\)"):
        core.evaluate({"placement": np.zeros((2, 50), np.int64)})  # padded rows
