"""`python -m go_gym.zoo.build`: its documented commands, ``--only`` across suites, and the
errors `get_graph` gives for ids that are not ids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from go_gym.zoo import build
from go_gym.zoo.suites import SUITES, get_entry, get_graph


def test_docstring_examples_name_real_graphs() -> None:
    doc = build.__doc__ or ""
    for line in doc.splitlines():
        if "python -m go_gym.zoo.build" not in line or "--only" not in line:
            continue
        command = line.split("#")[0].split()
        names = [command[i + 1] for i, a in enumerate(command) if a == "--only"]
        suites = [command[i + 1] for i, a in enumerate(command) if a == "--suite"]
        suites = suites or list(build.STORED_SUITES)
        for name in names:
            assert any(name in {e.name for e in SUITES[s].values()} for s in suites), (
                f"{line.strip()!r}: no graph {name!r} in {suites}"
            )
    # a plain build rebuilds every stored suite, and the docstring says which those are
    for suite in build.STORED_SUITES:
        assert suite in doc
    assert "go-paper-v0 and quick-v0 files" not in doc


def test_only_without_suite_builds_just_the_suites_that_have_the_graph(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    # wavenet-1x6 is in quick-train-v0 only (the last stored suite)
    assert build.main(["--only", "wavenet-1x6", "--out", str(tmp_path)]) == 0
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["quick-train-v0/wavenet-1x6.gograph"]


def test_only_with_an_unknown_name_fails_before_writing_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # amoebanet is in go-paper-v0 and quick-v0, not in quick-train-v0: nothing may be built
    with pytest.raises(SystemExit) as exc:
        build.main(["--only", "amoebanet", "--only", "wavenet", "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "'wavenet'" in err and "wavenet-2x6" in err
    assert not any(tmp_path.iterdir())
    with pytest.raises(SystemExit):
        build.main(["--suite", "quick-v0", "--only", "wavenet-1x6", "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())


def test_graph_ids_that_are_not_strings_are_type_errors() -> None:
    with pytest.raises(TypeError, match="load_graph"):
        get_graph(Path("quick-v0/gnmt-3"))
    with pytest.raises(TypeError, match="string"):
        get_graph(None)
    with pytest.raises(TypeError, match="string"):
        get_entry(3)  # type: ignore[arg-type]


def test_a_bare_graph_name_suggests_the_full_ids() -> None:
    with pytest.raises(KeyError, match="did you mean 'quick-v0/gnmt-3'"):
        get_graph("gnmt-3")
    with pytest.raises(KeyError) as exc:
        get_entry("gnmt-2")
    assert "'go-paper-v0/gnmt-2'" in str(exc.value) and "'quick-train-v0/gnmt-2'" in str(exc.value)
    with pytest.raises(KeyError, match="known suites") as exc:
        get_entry("nope")
    assert "did you mean" not in str(exc.value)
    assert re.search(r"known suites: go-paper-v0", str(exc.value))
