"""The GO agent refuses what it used to take silently or crash on: records of one graph in
another setting, unreadable or corrupted checkpoints, settings that break training, options
that do nothing, resumptions that are not the interrupted run, fine-tuning that forgets its
pre-training."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import agents
import go_gym  # noqa: F401  (registers the env ids)
from agents.base import core_env, decision_key
from agents.go import train
from agents.go.checkpoint import (
    DEFAULT_CHECKPOINT,
    load_checkpoint,
    policy_from_checkpoint,
    save_checkpoint,
    weights_checksum,
)
from agents.go.model import GOConfig
from agents.go.ppo import PPOConfig, PPOTrainer, graph_key, legacy_graph_key, make_policy
from tests.agents.conftest import small_cluster
from tests.agents.go.conftest import SMALL

torch.set_num_threads(1)

FAST = {"samples": 4, "epochs": 1, "hidden": 16}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    return parser


def _train(
    out: Path, *extra: str, synthetic: int = 1, budget: int = 10, hidden: str | None = "16"
) -> int:
    """``go-gym train`` on small synthetic graphs (iterations of K + 1 = 5 evaluations)."""
    args = ["--graphs", "", "--synthetic", str(synthetic), "--synthetic-ops", "30"]
    args += ["--samples", "4", "--epochs", "1", "--quiet"]
    args += ["--hidden", hidden] if hidden is not None else []
    args += ["--out", str(out), "--budget", str(budget), *extra]
    return train.run(_parser().parse_args(args))


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


# --- 1. records per graph *and* setting ------------------------------------------------------


def test_records_and_predictions_are_kept_per_cluster(graph40) -> None:
    """Before: a record was keyed by graph and device count, so a fit on the K80-like pair
    answered for the P100-like pair: best() gave the other cluster's time and predict spent
    nothing and returned the other cluster's decision."""
    e1 = gym.make("GOPlacement-v0", graph=graph40, cluster=small_cluster(2))
    e2 = gym.make("GOPlacement-v0", graph=graph40, cluster=small_cluster(2, bandwidth=1e7))
    c1, c2 = core_env(e1), core_env(e2)
    assert graph_key(c1) != graph_key(c2) and decision_key(c1) != decision_key(c2)
    assert legacy_graph_key(c1) == legacy_graph_key(c2)  # what the old key could not tell
    agent = agents.make("go", e1, budget=10, **FAST)
    agent.fit(e2)
    assert agent.best(c2) is not None and agent.best(c1) is None
    obs, _ = e1.reset(seed=0)
    action, _ = agent.predict(obs)
    assert c1.evaluations == 10  # trained on e1's own setting
    best = agent.best(c1)
    assert best is not None
    np.testing.assert_array_equal(action, c1.action_from(best[1]))
    assert len(agent.trainer.records) == 2


def test_keys_tell_fixed_decisions_tasks_and_clusters_apart(graph40) -> None:
    cluster = small_cluster(2)
    ones = np.ones(40, np.int64)
    keys = {
        "placement": gym.make("GOPlacement-v0", graph=graph40, cluster=cluster),
        "joint": gym.make("GOJoint-v0", graph=graph40, cluster=cluster),
        "scheduling on one device": gym.make("GOScheduling-v0", graph=graph40, cluster=cluster),
        "scheduling on the other": gym.make(
            "GOScheduling-v0", graph=graph40, cluster=cluster, placement=ones
        ),
        "three devices": gym.make("GOPlacement-v0", graph=graph40, cluster=small_cluster(3)),
        "more memory": gym.make(
            "GOPlacement-v0", graph=graph40, cluster=small_cluster(2, memory_bytes=2e12)
        ),
    }
    ids = {name: graph_key(core_env(env)) for name, env in keys.items()}
    assert len(set(ids.values())) == len(ids), ids
    assert len({decision_key(core_env(env)) for env in keys.values()}) == len(ids)
    again = gym.make("GOScheduling-v0", graph=graph40, cluster=cluster, placement=ones)
    assert graph_key(core_env(again)) == ids["scheduling on the other"]  # stable


def test_search_predictions_stay_per_setting(graph40) -> None:
    """The base predict cache (`decision_key`): a search fitted on the graph with another
    fixed placement does not answer for the agent's own env."""
    e1 = gym.make("GOScheduling-v0", graph=graph40, cluster=small_cluster(2))
    e2 = gym.make(
        "GOScheduling-v0", graph=graph40, cluster=small_cluster(2), placement=np.arange(40) % 2
    )
    agent = agents.make("random-search", e1, budget=6)
    agent.fit(e2)
    obs, _ = e1.reset(seed=0)
    agent.predict(obs)
    assert core_env(e1).evaluations == 6  # searched its own setting
    assert len(agent._cache) == 2


def test_resume_refuses_another_task(tmp_path, capsys) -> None:
    """Before: --task joint, then --task placement --resume ran on, mixing the records."""
    assert _train(tmp_path, "--task", "joint") == 0
    before = _files(tmp_path)
    assert _train(tmp_path, "--task", "placement", "--resume", budget=20) == 2
    err = capsys.readouterr().err
    assert "it was trained for --task joint (placement, priority, fusion)" in err
    assert "these options give --task placement (placement)" in err
    assert _files(tmp_path) == before


def test_resume_reads_checkpoints_with_keys_of_the_old_format(tmp_path, capsys) -> None:
    """A checkpoint written before the setting digest (keys ``<graph>:<devices>``) resumes
    as before, its best decisions restored; another device count is still refused."""
    assert _train(tmp_path / "straight", budget=20, synthetic=2) == 0
    old = tmp_path / "old"
    assert _train(old, budget=10, synthetic=2) == 0
    state = load_checkpoint(old / "checkpoint.pt")
    state["graph_keys"] = [k.rsplit(":", 1)[0] for k in state["graph_keys"]]
    state["best"] = {k.rsplit(":", 1)[0]: v for k, v in state["best"].items()}
    del state["checksum"]
    torch.save(state, old / "checkpoint.pt")
    assert _train(old, "--resume", "--synthetic-devices", "4", budget=20, synthetic=2) == 2
    assert "synthetic-0 ran on 2 devices, here on 4" in capsys.readouterr().err
    assert _train(old, "--resume", budget=20, synthetic=2) == 0
    resumed = load_checkpoint(old / "checkpoint.pt")
    straight = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    for name, weights in straight["model"].items():
        assert torch.equal(resumed["model"][name], weights), name
    assert resumed["graph_keys"] == straight["graph_keys"]  # written in the new format
    assert {k: (v["time"], v["evaluations"]) for k, v in resumed["best"].items()} == {
        k: (v["time"], v["evaluations"]) for k, v in straight["best"].items()
    }  # restored through the old keys: their evaluations count from the start


# --- 2. checkpoints that are not readable ------------------------------------------------------


def _bad_files(directory: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """Files that used to give raw torch errors (or load silently), and what the error says."""
    directory.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    text = directory / "text.pt"
    text.write_text("not a checkpoint\n")
    empty = directory / "empty.pt"
    empty.write_bytes(b"")
    cut = directory / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    module = directory / "module.pt"
    torch.save(torch.nn.Linear(2, 2), module)
    no_weights = directory / "no-weights.pt"
    torch.save({"model": {}, "model_config": SMALL.to_dict()}, no_weights)
    flipped = directory / "flipped.pt"
    state = torch.load(good, weights_only=True)
    name = max(state["model"], key=lambda k: state["model"][k].numel())
    raw = state["model"][name].numpy().tobytes()
    at = data.find(raw)
    assert at > 0
    middle = at + len(raw) // 2
    flipped.write_bytes(
        data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 8]) + data[middle + 8 :]
    )
    return {
        "text": (text, "not a torch checkpoint"),
        "empty": (empty, "the file is empty"),
        "truncated": (cut, "truncated or corrupted"),
        "module": (module, "pickled Python objects"),
        "no weights": (no_weights, "weights do not fit the network"),
        "flipped": (flipped, "is corrupted: its weights do not match the checksum"),
    }


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    directory = tmp_path_factory.mktemp("bad")
    trainer = PPOTrainer(make_policy(SMALL, seed=0), PPOConfig(samples=4), seed=0)
    good = save_checkpoint(directory / "good.pt", trainer.state_dict())
    return _bad_files(directory / "files", good)


BAD = ["text", "empty", "truncated", "module", "no weights", "flipped"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_checkpoints_are_value_errors_naming_the_file(bad_checkpoints, graph40, kind) -> None:
    path, message = bad_checkpoints[kind]
    env = gym.make("GOPlacement-v0", graph=graph40, cluster=small_cluster(2))
    for load in (
        policy_from_checkpoint,
        lambda p: agents.make("go", env, checkpoint=str(p)),
        lambda p: agents.make("go-zeroshot", env, checkpoint=str(p)),
    ):
        with pytest.raises(ValueError, match=message) as info:
            load(path)
        assert str(path) in str(info.value)
        assert "weights_only=False" not in str(info.value)


@pytest.mark.parametrize("kind", BAD)
def test_train_refuses_bad_checkpoints_before_writing(
    tmp_path, capsys, bad_checkpoints, kind
) -> None:
    path, message = bad_checkpoints[kind]
    out = tmp_path / "init"
    assert _train(out, "--init", str(path)) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and not out.exists()
    resumed = tmp_path / "resume"
    resumed.mkdir()
    (resumed / "checkpoint.pt").write_bytes(path.read_bytes())
    before = _files(resumed)
    assert _train(resumed, "--resume") == 2
    err = capsys.readouterr().err
    assert (message if kind != "no weights" else "holds a policy alone") in err
    assert _files(resumed) == before  # nothing written


def test_checkpoints_carry_a_checksum_and_old_ones_load(tmp_path, graph40) -> None:
    trainer = PPOTrainer(make_policy(SMALL, seed=0), PPOConfig(samples=4), seed=0)
    state = trainer.state_dict()
    path = save_checkpoint(tmp_path / "ck.pt", {**state, "checksum": "stale"})
    loaded = load_checkpoint(path)
    assert loaded["checksum"] == weights_checksum(state["model"])  # computed anew
    reordered = dict(reversed(list(state["model"].items())))
    assert weights_checksum(reordered) == loaded["checksum"]
    shipped = load_checkpoint(DEFAULT_CHECKPOINT)  # written before checksums: still loads
    assert "checksum" not in shipped
    env = gym.make("GOPlacement-v0", graph=graph40, cluster=small_cluster(2))
    obs, _ = env.reset(seed=0)
    assert agents.make("go-zeroshot", env).predict(obs)[0].shape == (40,)


# --- 3. settings that break training -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_grad_norm", 0.0),
        ("max_grad_norm", -1.0),
        ("entropy_coef", math.nan),
        ("entropy_coef", -0.1),
        ("samples", 4.5),
        ("samples", True),
        ("epochs", 2.0),
        ("epochs", 0),
        ("min_deviations", -1.0),
        ("min_deviations", math.nan),
        ("lr", math.inf),
        ("lr", math.nan),
        ("clip", math.nan),
        ("target_kl", math.inf),
        ("greedy_row", "yes"),
        ("deciding_nodes_only", 1),
    ],
)
def test_ppo_config_refuses_values_that_break_training(field, value) -> None:
    with pytest.raises(ValueError, match=rf"PPOConfig\.{field} must be"):
        PPOConfig(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("heads", 0),
        ("hidden", 0),
        ("hidden", -8),
        ("ffn", 0),
        ("max_devices", 0),
        ("max_choices", -1),
        ("segment", 2.5),
        ("attn_layers", 0),
        ("sage_layers", -1),
        ("layer_head", math.nan),
        ("tie_roles", "no"),
    ],
)
def test_go_config_refuses_values_that_break_the_network(field, value) -> None:
    with pytest.raises(ValueError, match=rf"GOConfig\.{field} must be"):
        GOConfig(**{field: value})


def test_defaults_stay_valid() -> None:
    assert PPOConfig() == PPOConfig(**PPOConfig().to_dict())
    assert GOConfig() == GOConfig.from_dict(GOConfig().to_dict())
    PPOConfig(entropy_coef=0, min_deviations=0.0, target_kl=None, lr=1)  # ints where floats go


# --- 4. options that go-gym train ignored -----------------------------------------------------


def test_train_refuses_options_it_would_ignore(tmp_path, capsys) -> None:
    base = tmp_path / "base"
    assert _train(base, "--seed", "3") == 0
    ckpt = str(base / "checkpoint.pt")
    for extra, message in [
        (["--hidden", "128"], "--hidden 128 shapes a fresh policy; checkpoint"),
        (["--segment", "16"], "--segment 16 shapes a fresh policy; checkpoint"),
    ]:
        out = tmp_path / "x"
        args = ["--graphs", "", "--synthetic", "1", "--synthetic-ops", "30", "--quiet"]
        args += ["--samples", "4", "--epochs", "1", "--out", str(out), "--init", ckpt, *extra]
        assert train.run(_parser().parse_args(args)) == 2
        assert message in capsys.readouterr().err and not out.exists()
    before = _files(base)
    assert _train(base, "--resume", "--init", ckpt, budget=20) == 2
    assert "give one of them" in capsys.readouterr().err
    assert _train(base, "--resume", "--seed", "5", budget=20) == 2
    assert "trained with seed 3 (here 5)" in capsys.readouterr().err
    assert _train(base, "--resume", budget=20) == 2  # the default seed, 0, is another
    assert "give --seed 3" in capsys.readouterr().err
    assert _files(base) == before
    assert _train(base, "--resume", "--seed", "3", budget=20) == 0
    assert load_checkpoint(base / "checkpoint.pt")["seed"] == 3
    # the checkpoint's own hidden size is no conflict
    assert _train(tmp_path / "same", "--init", ckpt, "--hidden", "16") == 0


def test_resume_names_the_device_counts_that_differ(tmp_path, capsys) -> None:
    assert _train(tmp_path, "--synthetic-devices", "2,4", synthetic=2) == 0
    assert _train(tmp_path, "--resume", "--synthetic-devices", "2,8", synthetic=2) == 2
    err = capsys.readouterr().err
    assert "its graphs differ: synthetic-1 ran on 4 devices, here on 8" in err
    assert "synthetic-0" not in err.split("differ:")[1].split("(")[0]


# --- 5. fine-tuning keeps the record of the pre-training -------------------------------------


def test_fine_tuned_policies_keep_their_pretraining(tmp_path) -> None:
    pre = tmp_path / "pre"
    assert _train(pre, synthetic=2, budget=20) == 0
    fine = tmp_path / "fine"
    args = ["--init", str(pre / "policy.pt"), "--synthetic-ops", "31"]
    assert _train(fine, *args) == 0
    for name in ("policy.pt", "checkpoint.pt"):
        state = load_checkpoint(fine / name)
        assert state["trained_on"] == ["synthetic-0"]
        assert state["pretrained_on"] == [["synthetic-0", "synthetic-1"]]
        assert state["pretraining_evaluations"] == [20]
    # resumed, it keeps them; fine-tuned again, they chain (the latest stage first)
    assert _train(fine, "--synthetic-ops", "31", "--resume", budget=15) == 0  # no --init
    assert load_checkpoint(fine / "policy.pt")["pretrained_on"] == [["synthetic-0", "synthetic-1"]]
    again = tmp_path / "again"
    assert _train(again, "--init", str(fine / "checkpoint.pt"), budget=5) == 0
    state = load_checkpoint(again / "policy.pt")
    assert state["pretrained_on"] == [["synthetic-0"], ["synthetic-0", "synthetic-1"]]
    assert state["pretraining_evaluations"] == [15, 20] and state["evaluations"] == 5
    # a run from scratch has no such entries
    assert "pretrained_on" not in load_checkpoint(pre / "policy.pt")


# --- 6. agent options that do nothing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "options", "error", "message"),
    [
        ("GOScheduling-v0", {"refine_share": 0.3}, ValueError, "refine_share=0.3: for placement"),
        ("GOScheduling-v0", {"layer_head": 1.0}, ValueError, "layer_head=1.0: for placement"),
        ("GOFusion-v0", {"placement_actions": "tree"}, ValueError, "placement_actions='tree'"),
        ("GOScheduling-v0", {"tie_roles": True}, ValueError, "tie_roles=True: for placement"),
        ("GOPlacement-v0", {"warm_deviations": 4.0}, ValueError, "give warm_start= too"),
        ("GOPlacement-v0", {"hidden": 0}, ValueError, "hidden must be an integer >= 1"),
        ("GOPlacement-v0", {"layer_head": math.nan}, ValueError, "layer_head must be a finite"),
        ("GOPlacement-v0", {"tie_roles": "no"}, ValueError, "tie_roles must be True or False"),
        ("GOPlacement-v0", {"budget": 1.7}, ValueError, "budget must be an integer >= 0"),
        ("GOPlacement-v0", {"budget": -5}, ValueError, "budget must be an integer >= 0"),
        ("GOPlacement-v0", {"refine_share": math.nan}, ValueError, "refine_share must be"),
        ("GOPlacement-v0", {"samples": 2.5}, ValueError, "PPOConfig.samples must be"),
        ("GOPlacement-v0", {"foo": 1}, TypeError, r"GOAgent .*unexpected option\(s\) \['foo'\]; it accepts \['budget'"),
    ],
)  # fmt: skip
def test_go_refuses_options_that_would_do_nothing(graph40, env_id, options, error, message) -> None:
    env = gym.make(env_id, graph=graph40, cluster=small_cluster(2))
    for name in ("go", "go-warm") if "warm_deviations" not in options else ("go",):
        with pytest.raises(error, match=message):
            agents.make(name, env, **options)


def test_go_takes_placement_defaults_and_warm_settings_where_they_mean_something(graph40) -> None:
    env = gym.make("GOScheduling-v0", graph=graph40, cluster=small_cluster(2))
    agents.make("go", env, refine_share=0.0, tie_roles=False, placement_actions="device")
    agents.make("go", env, warm_start="fifo", warm_deviations=4.0, hidden=16)
    agent = agents.make(
        "go", env, hidden=16, budget=np.int64(8), **{k: v for k, v in FAST.items() if k != "hidden"}
    )
    assert agent.budget == 8
    with pytest.raises(ValueError, match="fit budget must be an integer >= 0"):
        agent.fit(env, -1)


# --- 7. checkpoints that do not fit the run, found before any output ------------------------


def test_train_refuses_a_checkpoint_without_the_tasks_before_writing(tmp_path, capsys) -> None:
    out = tmp_path / "joint"
    assert _train(out, "--task", "joint", "--init", str(DEFAULT_CHECKPOINT), hidden=None) == 2
    err = capsys.readouterr().err
    assert "--init" in err and "the policy has no pass for ['priority', 'fusion']" in err
    assert not out.exists()


def test_train_refuses_to_resume_a_policy_file(tmp_path, capsys) -> None:
    assert _train(tmp_path / "run") == 0
    out = tmp_path / "resume"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes((tmp_path / "run" / "policy.pt").read_bytes())
    before = _files(out)
    assert _train(out, "--resume", budget=20) == 2
    err = capsys.readouterr().err
    assert "holds a policy alone (no optimizer, generator)" in err and "--init" in err
    assert _files(out) == before


# --- 8. --iterations on resume -----------------------------------------------------------------


def test_resume_after_its_iterations_runs_none(tmp_path) -> None:
    """Before: a finished ``--budget 102 --iterations 2`` run resumed with the same command
    ran iteration 3."""
    args = ("--iterations", "2")
    assert _train(tmp_path, *args, budget=102) == 0
    assert load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == 2
    assert _train(tmp_path, *args, "--resume", budget=102) == 0
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["iteration"] == 2 and state["evaluations"] == 10
    assert len((tmp_path / "progress.csv").read_text().splitlines()) == 1 + 2
    assert _train(tmp_path, "--iterations", "3", "--resume", budget=102) == 0  # one more
    assert load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == 3
