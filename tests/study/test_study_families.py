"""A study with every generator family: StyleGAN2, the diffusion painter and the gmm baseline
side by side (its own module: it shares nothing with test_study.py's finished study, so it
runs beside it under pytest-xdist)."""

from __future__ import annotations

import json

from synthaug.report.html import make_report
from synthaug.stages.sources import GeneratorRef
from synthaug.study.config import parse_study
from synthaug.study.layout import StudyLayout
from synthaug.study.records import read_results
from synthaug.study.runner import run_study
from tests.study.test_study import _config


def test_a_study_with_diffusion_sources_runs_and_reports(study_store, tmp_path):
    raw = _config(
        study_store,
        # with StyleGAN2 (the mask generator of mask-diffusion) beside diffusion and gmm;
        # a StyleGAN2 painter's source in a study: the finished study's
        sources=["real-mask-diffusion", "mask-diffusion", "real-mask-gmm"],
        n_levels=[0, 1],
        diffusion={"preset": "cpu-micro", "kimg": 0.05, "allow_unusable": True, "sample_steps": 3},
    )
    results = run_study(parse_study(raw), tmp_path / "study", workers=2)
    df = read_results(results)
    assert {"real-mask-diffusion", "mask-diffusion", "real-mask-gmm"} < set(df["source"])
    layout = StudyLayout(tmp_path / "study")
    painter = layout.generator_run("toy", 0, GeneratorRef("diffusion", "painter"))
    assert (painter / "run.json").is_file() and (painter / "quality.json").is_file()
    assert json.loads((painter / "run.json").read_text())["preset"]["sample_steps"] == 3
    html_path = make_report(results, tmp_path / "report")
    text = html_path.read_text()
    for slug in ("real-mask-diffusion", "mask-diffusion", "real-mask-gmm"):
        assert f"samples-toy-{slug}.png" in text  # the families side by side
    mask_gan = layout.generator_run("toy", 0, GeneratorRef("stylegan2", "mask"))
    assert (mask_gan / "quality.json").is_file()  # the StyleGAN2 family in the same study
    assert "optimistic upper bound" in text  # the sources table says what the baseline is
    assert "diffusion painter" in text  # its health row beside the GANs'
