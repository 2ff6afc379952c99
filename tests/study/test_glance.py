"""The verdict at a glance: numbers with 3 significant digits, at most five sentences that
never claim a capped comparison, one figure that grows with its rows, a terminal table and
the report that opens with them."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from synthaug.report.glance import (
    FIGURE_NAME,
    MAX_ROWS_PER_FIGURE,
    MAX_SENTENCES,
    fmt3,
    fmt_p,
    glance_section,
    glance_sentences,
    glance_table,
    plot_glance,
)
from synthaug.report.html import _table_html, _table_md, make_report
from synthaug.stats.analysis import analyse


def _table(
    shifts: dict[tuple[str, str, int], float],
    datasets=("phantom-lesion", "phantom-brain"),
    sources=("real-mask-diffusion", "joint"),
    levels=(2, 6),
    folds: int = 5,
    capped: frozenset = frozenset(),
    flagged: frozenset = frozenset(),
    noise: float = 0.004,
) -> pd.DataFrame:
    """A results table: the real-only baseline per (dataset, fold), then each (dataset,
    source, n) with ``shifts`` added; ``capped`` cells have a U-Net at its step cap in fold 0,
    ``flagged`` ones a generator flagged unusable."""
    rng = np.random.default_rng(0)
    rows = []
    for d in datasets:
        for f in range(folds):
            base = rng.uniform(0.6, 0.8)
            cell = {"dataset": d, "fold": f, "seed": 0, "class_name": "mean",
                    "test_patients": 4, "train_patients": 12, "val_patients": 4}  # fmt: skip
            rows.append({**cell, "source": "none", "n": 0, "dice": base, "capped": False})
            for s in sources:
                for n in levels:
                    key = (d, s, n)
                    rows.append({**cell, "source": s, "n": n, "capped": key in capped and f == 0,
                                 "generator_usable": key not in flagged,
                                 "dice": base + shifts.get(key, 0.0) + rng.normal(0, noise)})  # fmt: skip
    return pd.DataFrame(rows)


GAIN = ("phantom-lesion", "joint", 6)
CAPPED = ("phantom-brain", "joint", 2)


@pytest.fixture(scope="module")
def stats():
    df = _table({GAIN: 0.05, CAPPED: 0.09}, capped=frozenset({CAPPED}))
    return analyse(df)


def _row(stats, key):
    c = stats.comparisons
    return c[(c["dataset"] == key[0]) & (c["source"] == key[1]) & (c["n"] == key[2])].iloc[0]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0004828, "0.000483"),
        (12.345, "12.3"),
        (float("nan"), "—"),
        (None, "—"),
        (0.9996, "1.00"),  # rounding does not add a digit
        (-0.04129, "-0.0413"),
        (0.05, "0.0500"),
        (1234.5, "1234"),  # no scientific notation
        (7, "7"),
    ],
)
def test_fmt3_gives_three_significant_digits(value, text):
    assert fmt3(value) == text


def test_fmt3_signs_and_p_values():
    assert fmt3(0.041, signed=True) == "+0.0410"
    assert fmt3(-0.01, signed=True) == "-0.0100"
    assert fmt_p(0.0004) == "< 0.001" and fmt_p(0.0312) == "0.0312" and fmt_p(math.nan) == "—"


def test_sentences_are_few_and_name_the_significant_comparison(stats):
    gain = _row(stats, GAIN)
    assert gain["significant"] and gain["direction"] == "gain"
    sentences = glance_sentences(stats)
    assert 1 <= len(sentences) <= MAX_SENTENCES
    text = " ".join(sentences)
    assert "adding 6 joint patients" in text and "On phantom-lesion" in text
    assert "significant gain" in text
    assert f"{len(stats.comparisons)} comparisons" in text  # the family Holm corrected over
    assert "detects only changes of about" in text  # what the design can detect (median MDE)
    for number in re.findall(r"[+−-]?\d+\.\d+", text):  # 3 significant digits at most
        assert len(number.lstrip("+−-").lstrip("0.").replace(".", "")) <= 3, number


def test_a_capped_comparison_is_never_a_gain_or_harm(stats):
    capped = _row(stats, CAPPED)
    # The largest shift of the table: significant were it not capped.
    assert capped["capped"] and capped["direction"] == "none" and capped["p_holm"] < 0.05
    sentences = glance_sentences(stats)
    about = [s for s in sentences if "adding 2 joint patients" in s and "phantom-brain" in s]
    assert about, sentences  # the largest |shift| is described...
    assert all("no gain or harm is claimed" in s for s in about)  # ...without a claim
    assert not any("significant gain" in s or "significant harm" in s for s in about)
    assert any("step cap" in s and "1 of" in s for s in sentences)  # the capped-cells sentence
    line = next(x for x in glance_table(stats).splitlines() if "phantom-brain · joint · n=2" in x)
    assert line.rstrip().endswith("none (capped)")


def test_an_unusable_generator_is_decided_with_a_caution():
    key = ("phantom-lesion", "real-mask-diffusion", 6)
    stats = analyse(_table({key: 0.06}, flagged=frozenset({key})))
    text = " ".join(glance_sentences(stats))
    # The analysis decides it (a real finding about that generator); the glance cautions.
    assert "flagged unusable" in text and "findings about that generator" in text
    line = next(x for x in glance_table(stats).splitlines() if "real-mask-diffusion · n=6" in x
                and "phantom-lesion" in x)  # fmt: skip
    assert "unusable generator" in line


def test_the_table_has_one_line_per_comparison(stats):
    lines = glance_table(stats).splitlines()
    assert len(lines) == 1 + len(stats.comparisons)
    assert lines[0].split()[:2] == ["comparison", "shift"]
    at = lines[0].index("decision")  # aligned columns: every decision starts below its header
    assert all(x[at - 2 : at] == "  " and x[at] != " " for x in lines[1:])
    assert any(line.startswith("phantom-lesion · joint · n=6") for line in lines)


def _height(path) -> int:
    with Image.open(path) as image:
        return image.size[1]


def test_the_figure_grows_with_its_rows(stats, tmp_path):
    small = dataclasses.replace(stats, comparisons=stats.comparisons.iloc[:1])
    one = plot_glance(small, tmp_path / "one.png")
    many = plot_glance(stats, tmp_path / "many.png")
    assert [p.name for p in one] == ["one.png"] and [p.name for p in many] == ["many.png"]
    assert _height(many[0]) > _height(one[0]) + 5 * 20  # 8 rows against 1
    with Image.open(many[0]) as image:
        assert image.size[0] <= 1400  # readable in a 1400-px window without scaling


def test_many_rows_are_split_by_dataset(stats, tmp_path):
    copies = [
        stats.comparisons.assign(dataset=f"ds{k:02d}") for k in range(MAX_ROWS_PER_FIGURE // 8 + 2)
    ]
    big = dataclasses.replace(stats, comparisons=pd.concat(copies, ignore_index=True))
    paths = plot_glance(big, tmp_path / "glance.png")
    assert len(paths) == 2 and all(p.is_file() for p in paths)
    assert paths[1].name == "glance-2.png"
    assert _height(paths[0]) < 2400  # capped: at most MAX_ROWS_PER_FIGURE rows a figure


def test_real_patients_become_part_of_the_rows(stats, tmp_path):
    comps = stats.comparisons.assign(real_patients=4)
    comps.loc[comps["n"] == 6, "real_patients"] = 8
    with_real = dataclasses.replace(stats, comparisons=comps)
    table = glance_table(with_real)
    assert "phantom-lesion · joint · r=8 real · n=6" in table
    assert "to 8 real ones" in " ".join(glance_sentences(with_real))
    assert plot_glance(with_real, tmp_path / "real.png")[0].is_file()


def test_the_section_writes_its_figure(stats, tmp_path):
    title, sentences, figures = glance_section(stats, tmp_path)
    assert title and sentences == glance_sentences(stats)
    assert [name for _, name in figures] == [FIGURE_NAME] and (tmp_path / FIGURE_NAME).is_file()


def test_no_comparison_gives_one_sentence_and_no_figure(stats, tmp_path):
    empty = dataclasses.replace(stats, comparisons=stats.comparisons.iloc[:0])
    assert len(glance_sentences(empty)) == 1
    assert plot_glance(empty, tmp_path / "g.png") == []
    assert glance_table(empty).endswith("(no comparisons)")


def test_report_tables_use_three_significant_digits_and_scroll():
    df = pd.DataFrame({"name": ["a"], "value": [0.123456], "count": [15.0], "ok": [True]})
    table = _table_html(df)
    assert table.startswith("<div class='scroll'>") and "0.123<" in table and "0.1235" not in table
    assert ">15<" in table and ">yes<" in table
    assert _table_md(df).splitlines()[-1] == "| a | 0.123 | 15 | yes |"


def test_the_report_opens_with_the_glance(tmp_path):
    results = tmp_path / "results.csv"
    _table({GAIN: 0.05}).to_csv(results, index=False)
    page = make_report(results, tmp_path / "report").read_text()
    body = page[page.index("<body>") :]
    assert body.index("The verdict at a glance") < body.index("<h2>", body.index("<h2>") + 1)
    assert f"src='{FIGURE_NAME}'" in page and (tmp_path / "report" / FIGURE_NAME).is_file()
    assert "overflow-x:auto" in page and "max-width:100%" in page
    assert "The verdict at a glance" in (tmp_path / "report" / "report.md").read_text()
