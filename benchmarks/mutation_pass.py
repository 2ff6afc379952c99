"""A quick mutation pass: replace one statement of a guarded function by ``pass`` and check
that the tests guarding it go red. Prints each surviving mutant (a line whose removal no
test notices) and the kill rate per target.

    python benchmarks/mutation_pass.py [--only stats|families] [--limit N]

Works on a copy of ``src/`` in a temporary folder (the checkout is never edited) and runs the
target's tests with that copy first on ``PYTHONPATH``. Single-line statements only; docstrings
and ``pass`` are skipped. Takes ~10-20 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (source file, functions to mutate, tests that guard them)
TARGETS = {
    "stats": [
        ("synthaug/stats/core.py",
         ["holm_adjust", "nadeau_bengio", "corrected_interval", "signed_rank", "hodges_lehmann",
          "friedman_exact_p", "expand_baseline", "correlated_bayes", "min_detectable_effect"],
         ["tests/study/test_stats.py", "tests/study/test_primary.py", "tests/study/test_analysis.py"]),
        ("synthaug/stats/analysis.py",
         ["_decide", "split_rho", "_paired", "_compare", "_holm_decisions", "mde_factor"],
         ["tests/study/test_stats.py", "tests/study/test_primary.py", "tests/study/test_analysis.py",
          "tests/test_repeated_folds.py"]),
    ],
    "families": [
        ("synthaug/lifecycle.py",
         ["open_run", "_refuse_other_data", "_explicit", "check_length", "open_store",
          "resume_checkpoint", "training_rows", "train_run", "check_finite", "snapshot",
          "load_checkpoint_state"],
         ["tests/stages/test_resume_settings.py", "tests/test_gmm.py", "tests/test_toy_family.py",
          "tests/test_diffusion.py", "tests/gan/test_training.py", "tests/test_lifecycle.py"]),
        ("synthaug/generator.py",
         ["refuse_changed_settings", "with_settings", "from_record", "read", "of_run"],
         ["tests/stages/test_resume_settings.py", "tests/test_lifecycle.py", "tests/test_gmm.py",
          "tests/test_toy_family.py"]),
        ("synthaug/gmm/paint.py", None, ["tests/test_gmm.py"]),
    ],
}  # fmt: skip


def mutants(path: Path, functions: list[str] | None) -> list[int]:
    """Line numbers of single-line statements inside the named functions (all: None)."""
    tree = ast.parse(path.read_text())
    lines: list[int] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if functions is not None and node.name not in functions:
            continue
        for stmt in ast.walk(node):
            if not isinstance(stmt, ast.stmt) or stmt is node or stmt.lineno != stmt.end_lineno:
                continue
            if isinstance(stmt, ast.Pass | ast.FunctionDef):
                continue
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # a docstring
            lines.append(stmt.lineno)
    return sorted(set(lines))


def run_tests(src: Path, tests: list[str]) -> bool:
    """True when the tests pass (the mutant survived)."""
    env = {**os.environ, "PYTHONPATH": f"{src}:{ROOT}", "SYNTHAUG_QUIET": "1"}
    existing = [t for t in tests if (ROOT / t).exists()]
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-n", "2",
           "-m", "not slow", *existing]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=900)
    return result.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=sorted(TARGETS))
    parser.add_argument("--limit", type=int, default=None, help="mutants per file at most")
    args = parser.parse_args()
    groups = [args.only] if args.only else list(TARGETS)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "src", src)
        for group in groups:
            for rel, functions, tests in TARGETS[group]:
                path = src / rel
                original = path.read_text()
                lines = mutants(path, functions)
                if args.limit:
                    lines = lines[:: max(1, len(lines) // args.limit)][: args.limit]
                survived, started = [], time.perf_counter()
                for lineno in lines:
                    text = original.splitlines(keepends=True)
                    line = text[lineno - 1]
                    indent = line[: len(line) - len(line.lstrip())]
                    text[lineno - 1] = f"{indent}pass  # mutant\n"
                    path.write_text("".join(text))
                    if run_tests(src, tests):
                        survived.append((lineno, line.strip()))
                        print(f"  SURVIVED {rel}:{lineno}: {line.strip()}", flush=True)
                path.write_text(original)
                killed = len(lines) - len(survived)
                print(f"{group} {rel}: {killed}/{len(lines)} mutants killed "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
