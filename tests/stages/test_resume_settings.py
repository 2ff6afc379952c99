"""One resume rule for every generator family: ``--resume --set NAME=VALUE`` with a value
other than the run's recorded one is refused with one message, and writes nothing; the same
value resumes."""

from __future__ import annotations

import pytest

# (family, variant, preset, a setting, its value at the start, another value)
CASES = [
    ("stylegan2", "conditional", "cpu-micro", "lr", "0.002", "0.004"),
    ("diffusion", "painter", "cpu-micro", "lr", "0.001", "0.0005"),
    ("gmm", "painter", "default", "noise", "0.5", "0.9"),
]


def _files(run) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("family", "variant", "preset", "name", "start", "other"), CASES)
def test_a_changed_setting_on_resume_is_refused_and_writes_nothing(
    run_cli, toy_store, tmp_path, family, variant, preset, name, start, other
):
    run = tmp_path / "run"
    args = [
        "train-generator", "--family", family, "--variant", variant,
        "--store", toy_store.path, "--fold", "0", "--preset", preset, "--out", run,
        "--no-quality", "--threads", "1",
    ]  # fmt: skip
    first = run_cli(*args, "--kimg", "0.016", "--set", f"{name}={start}")
    assert first.code == 0, first.err
    before = _files(run)

    changed = run_cli(*args, "--kimg", "0.032", "--resume", "--set", f"{name}={other}")
    assert changed.code != 0
    assert changed.err_lines == [changed.err.strip()]  # one line
    assert "cannot resume with changed settings" in changed.err
    assert f"{name}: recorded {float(start)!r}, --set {float(other)!r}" in changed.err
    assert _files(run) == before  # nothing written

    same = run_cli(*args, "--kimg", "0.032", "--resume", "--set", f"{name}={start}")
    assert same.code == 0, same.err
