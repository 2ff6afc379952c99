"""The ``synthaug`` command: one sub-command per pipeline stage, a thin layer over the Python API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from synthaug import __version__
from synthaug.errors import SynthaugError
from synthaug.progress import console

app = typer.Typer(
    name="synthaug",
    help="Does GAN-synthesised image–mask data help your small segmentation dataset? "
    "Stages: phantom → prepare → train-gan → generate → train-seg → study/report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# Options shared by the commands that measure mask–image consistency.
ReferenceUnet = Annotated[
    Path | None,
    typer.Option(
        help="model.pt of a real-only train-seg run that judges consistency "
        "(default: train one on the fold's real patients and cache it)."
    ),
]
UnetPreset = Annotated[str, typer.Option(help="Preset of the reference U-Net.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"synthaug {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """synthaug command line."""


def _parse_pair(text: str, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise SynthaugError(
            f"{name}: expected two comma-separated numbers like -1000,1000, got {text!r}"
        ) from None
    return lo, hi


@app.command()
def phantom(
    out: Annotated[Path, typer.Option(help="Output folder (MSD v1 layout).")],
    patients: Annotated[int, typer.Option(help="Number of virtual patients.")] = 24,
    task: Annotated[
        str, typer.Option(help="tissue (CSF/GM/WM/lesion) or lesion (core/oedema).")
    ] = "tissue",
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same dataset.")
    ] = 0,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
) -> None:
    """Build the embedded semi-synthetic brain MRI dataset offline (MNI152 from nilearn)."""
    from synthaug.data.phantom import make_phantom

    t0 = time.perf_counter()
    path = make_phantom(
        out, patients=patients, task=task, seed=seed, workers=workers, overwrite=overwrite
    )
    console.print(
        f"phantom: {patients} patients ({task}) written to {path} in {time.perf_counter() - t0:.1f} s"
    )


@app.command()
def prepare(
    dataset: Annotated[
        Path, typer.Option(help="Dataset folder: MSD v1, nnU-Net v2 raw or BraTS-style.")
    ],
    out: Annotated[Path, typer.Option(help="Slice store folder to create.")],
    resolution: Annotated[int, typer.Option(help="Output slice size in pixels.")] = 64,
    axis: Annotated[str, typer.Option(help="Slicing axis: axial, coronal or sagittal.")] = "axial",
    folds: Annotated[int, typer.Option(help="Patient-level folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the fold assignment.")] = 0,
    repeats: Annotated[
        int,
        typer.Option(
            help="Repeat the k-fold split R times with other seeds (repeated k-fold "
            "cross-validation: R × folds splits, repeat 0 the plain split of --seed); the "
            "analysis then uses the Bouckaert–Frank correction."
        ),
    ] = 1,
    val_fraction: Annotated[
        float, typer.Option(help="Fraction of non-test patients held out for validation.")
    ] = 0.2,
    layout: Annotated[str, typer.Option(help="auto, msd, nnunet or brats.")] = "auto",
    normalization: Annotated[
        str,
        typer.Option(
            help="Per-modality method, comma-separated (auto, mr, ct, none); one applies to all."
        ),
    ] = "auto",
    ct_window: Annotated[str, typer.Option(help="CT window in HU, low,high.")] = "-1000,1000",
    mr_percentiles: Annotated[
        str, typer.Option(help="MR foreground percentiles, low,high.")
    ] = "0.5,99.5",
    crop: Annotated[str, typer.Option(help="foreground or none.")] = "foreground",
    drop_empty: Annotated[
        bool,
        typer.Option(help="Train without slices lacking labelled foreground (tests keep them)."),
    ] = False,
    drop_edge: Annotated[
        float,
        typer.Option(help="Train without this fraction of slices at each end (tests keep them)."),
    ] = 0.0,
    group: Annotated[
        str,
        typer.Option(
            help="Cases → patients, the unit of the folds: auto (ACDC frames, BraTS time "
            "points), none, or a regex whose first group is the patient."
        ),
    ] = "auto",
    repair_nonfinite: Annotated[
        bool, typer.Option(help="Replace NaN/Inf voxels instead of failing.")
    ] = False,
    geometry_tolerance: Annotated[
        float, typer.Option(help="Image/label geometry tolerance.")
    ] = 1e-3,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing store (only once the new one is complete).")
    ] = False,
) -> None:
    """Check, normalise and slice a dataset into a slice store with patient-level folds."""
    from synthaug.data.options import PrepareOptions
    from synthaug.stages import prepare_dataset

    opts = PrepareOptions(
        resolution=resolution, axis=axis, folds=folds, seed=seed, repeats=repeats,
        val_fraction=val_fraction, normalization=[m.strip() for m in normalization.split(",")],
        ct_window=_parse_pair(ct_window, "ct_window"),
        mr_percentiles=_parse_pair(mr_percentiles, "mr_percentiles"), crop=crop,
        drop_empty=drop_empty, drop_edge=drop_edge, repair_nonfinite=repair_nonfinite,
        geometry_tolerance=geometry_tolerance, layout=layout, workers=workers, group=group,
    )  # fmt: skip
    t0 = time.perf_counter()
    summary = prepare_dataset(dataset, out, opts, overwrite=overwrite).summary
    console.print(_prepared_line(summary, out, time.perf_counter() - t0))


def _prepared_line(s: dict, out: Path, seconds: float) -> str:
    """What ``prepare`` made, in one line."""
    splits = (
        f"{s['folds']} folds ({s['folds_per_repeat']} folds × {s['repeats']} repeats)"
        if s["repeats"] > 1
        else f"{s['folds']} folds"
    )
    return (
        f"prepare: {s['patients']} patients, {s['slices']} slices of {s['resolution']}×{s['resolution']}, "
        f"channels {s['modalities']}, labels {s['labels']}, {splits} → {out} ({seconds:.1f} s)"
    )


@app.command()
def info(store: Annotated[Path, typer.Argument(help="A slice store folder.")]) -> None:
    """Print a slice store's summary (patients, slices, channels, labels, folds) as JSON."""
    from synthaug.data.store import SliceStore

    typer.echo(json.dumps(SliceStore(store).summary(), indent=2))


# Options of the training commands (train-generator, and train-gan for StyleGAN2).
StoreOpt = Annotated[Path, typer.Option(help="Slice store from `synthaug prepare`.")]
FoldOpt = Annotated[int, typer.Option(help="Fold whose training patients the generator sees.")]
OutOpt = Annotated[Path, typer.Option(help="Run folder (checkpoints, grids, metrics).")]
KimgOpt = Annotated[float, typer.Option(help="Training length in thousands of real images.")]
ResumeOpt = Annotated[bool, typer.Option(help="Continue the run in --out from its last snapshot.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of weights, noise and minibatches.")]
SnapshotOpt = Annotated[
    float | None, typer.Option(help="Snapshot interval in kimg (default: the preset's).")
]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
PrecisionOpt = Annotated[
    str | None,
    typer.Option(
        help="auto, fp32 or bf16 (autocast of the forward pass; auto: bf16 where this CPU or GPU "
        "runs it fast and the family's quality was measured to hold, else fp32; default: the "
        "preset's)."
    ),
]
ThreadsOpt = Annotated[int | None, typer.Option(help="CPU threads for torch (default: torch's).")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Replace one preset setting, NAME=VALUE (repeatable), e.g. --set lecam_weight=0.3 "
        "--set d_lr_scale=0.5; the run records the preset it trained with.",
    ),
]


def _settings(pairs: list[str] | None) -> dict[str, str]:
    settings = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise SynthaugError(f"--set {pair!r}: expected NAME=VALUE, e.g. lecam_weight=0.3")
        settings[name.strip()] = value.strip()
    return settings


QualityOpt = Annotated[
    bool,
    typer.Option(
        help="Afterwards score every snapshot against the fold's validation patients (in-domain "
        "FID, precision/recall, diversity, memorisation) and mark the best one for generate."
    ),
]


def _refuse_options_not_taken(fam, options: dict) -> None:
    """A training option the family has no use for is refused, not ignored."""
    from synthaug.generator import REQUEST_OPTIONS
    from synthaug.stages.families import FAMILIES

    for name in REQUEST_OPTIONS:
        if options.get(name) is not None and name not in fam.options:
            takers = [f.name for f in FAMILIES.values() if name in f.options]
            raise SynthaugError(
                f"--{name.replace('_', '-')}: the {fam.name} family does not take it "
                f"(families that do: {', '.join(takers) or 'none'})"
            )


def _train(family: str, options: dict, threads: int | None, quality: bool) -> None:
    import torch

    from synthaug.quality.snapshots import format_snapshot_quality
    from synthaug.stages import TrainRequest, train_generator
    from synthaug.stages.families import family as family_named
    from synthaug.stages.train_generator import is_main_process

    if threads:
        torch.set_num_threads(threads)
    fam = family_named(family)
    if options.get("preset") is None:
        options["preset"] = fam.default_preset
    _refuse_options_not_taken(fam, options)
    request = TrainRequest(**options)
    result = train_generator(request, family, score=quality, tolerate_score_errors=True)
    if not is_main_process():
        return  # under torchrun only rank 0 writes artifacts and reports
    health = result.health
    console.print(
        f"train: {family} {request.variant} reached {health.nimg / 1000:.2f} kimg at "
        f"{health.images_per_second:.1f} img/s → {result.run} (samples: {result.run / 'grids'})"
    )
    if result.scores is not None:
        typer.echo(format_snapshot_quality(result.scores))
    elif result.score_error:  # the run itself is fine; say why it was not scored
        console.print(f"[yellow]warning:[/] snapshots not scored: {escape(result.score_error)}")


@app.command("train-generator")
def train_generator_cmd(
    family: Annotated[
        str, typer.Option(help="stylegan2, diffusion or gmm (no training: class statistics).")
    ],
    variant: Annotated[
        str,
        typer.Option(
            help="stylegan2: joint, mask or conditional; diffusion: painter (images for given "
            "masks) or joint; gmm: painter."
        ),
    ],
    store: StoreOpt,
    fold: FoldOpt,
    out: OutOpt,
    preset: Annotated[
        str | None,
        typer.Option(
            help="The family's preset, e.g. cpu-tiny, gpu-256 (default: cpu-tiny; gmm: default)."
        ),
    ] = None,
    kimg: KimgOpt = 10.0,
    resume: ResumeOpt = False,
    seed: SeedOpt = 0,
    snapshot_kimg: SnapshotOpt = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = None,
    sample_steps: Annotated[
        int | None,
        typer.Option(
            help="diffusion: denoising steps when the run is sampled (default: the preset's; "
            "fixed when the run starts)."
        ),
    ] = None,
    threads: ThreadsOpt = None,
    quality: QualityOpt = True,
    settings: SetOpt = None,
) -> None:
    """Train a generator of any family on one fold's training patients."""
    options = dict(
        store=str(store), fold=fold, variant=variant, out=str(out), preset=preset, kimg=kimg,
        seed=seed, resume=resume, snapshot_kimg=snapshot_kimg, device=device, precision=precision,
        sample_steps=sample_steps, settings=_settings(settings),
    )  # fmt: skip
    _train(family, options, threads, quality)


@app.command("train-gan")
def train_gan(
    store: StoreOpt,
    fold: FoldOpt,
    variant: Annotated[
        str,
        typer.Option(
            help="joint (image+mask), mask (mask only) or conditional (image given mask)."
        ),
    ],
    out: OutOpt,
    preset: Annotated[str, typer.Option(help="cpu-tiny, cpu-small or gpu-256.")] = "cpu-tiny",
    kimg: KimgOpt = 10.0,
    resume: ResumeOpt = False,
    seed: SeedOpt = 0,
    snapshot_kimg: SnapshotOpt = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = None,
    threads: ThreadsOpt = None,
    quality: QualityOpt = True,
    settings: SetOpt = None,
) -> None:
    """Train a StyleGAN2 generator on one fold's training patients (torchrun for several processes)."""
    options = dict(
        store=str(store), fold=fold, variant=variant, out=str(out), preset=preset, kimg=kimg,
        seed=seed, resume=resume, snapshot_kimg=snapshot_kimg, device=device, precision=precision,
        settings=_settings(settings),
    )  # fmt: skip
    _train("stylegan2", options, threads, quality)


@app.command()
def generate(
    run: Annotated[
        Path,
        typer.Option(help="The run that makes the images (e.g. a conditional or painter run)."),
    ],
    source: Annotated[
        str,
        typer.Option(
            help="joint, mask-conditional, real-mask-conditional, real-mask-diffusion, "
            "mask-diffusion, joint-diffusion or real-mask-gmm."
        ),
    ],
    patients: Annotated[int, typer.Option(help="Synthetic patients to write.")],
    out: Annotated[Path, typer.Option(help="Output folder (MSD v1 dataset).")],
    mask_run: Annotated[
        Path | None, typer.Option(help="Mask-variant run (source mask-conditional).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same patients.")] = 0,
    truncation: Annotated[float, typer.Option(help="Truncation psi (1 = none).")] = 1.0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
    snapshot: Annotated[
        Path | None,
        typer.Option(help="Generator snapshot (default: the best scored one, else the latest)."),
    ] = None,
    filter: Annotated[
        str | None,
        typer.Option(
            "--filter",
            help="Keep only pairs a real-only U-Net agrees with, e.g. 'consistency>=0.5'.",
        ),
    ] = None,
    reference_unet: ReferenceUnet = None,
    unet_preset: UnetPreset = "cpu-tiny",
    max_factor: Annotated[
        float, typer.Option(help="--filter gives up after generating this many × the slices asked.")
    ] = 20.0,
    precision: PrecisionOpt = None,
) -> None:
    """Sample synthetic patients (S slices each, S = median real slice count) as an MSD dataset."""
    from synthaug.stages import GenerateOptions
    from synthaug.stages import generate as run_generate

    result = run_generate(
        GenerateOptions(
            run=str(run),
            source=source,
            patients=patients,
            out=str(out),
            mask_run=str(mask_run) if mask_run else None,
            seed=seed,
            truncation=truncation,
            overwrite=overwrite,
            snapshot=str(snapshot) if snapshot else None,
            filter=filter,
            reference_unet=str(reference_unet) if reference_unet else None,
            unet_preset=unet_preset,
            max_factor=max_factor,
            precision=precision,
        )
    )
    kept = result.filter
    accepted = (
        f"; filter {filter} accepted {kept['accepted']} of {kept['generated']} pairs "
        f"({kept['acceptance_rate']:.1%})"
        if kept
        else ""
    )
    console.print(
        f"generate: {patients} synthetic patients ({source}) → {result.path} "
        f"(preview: {result.preview}){accepted}"
    )


@app.command()
def quality(
    store: Annotated[Path, typer.Option(help="Slice store the synthetic data imitates.")],
    fold: Annotated[int, typer.Option(help="Fold: its REAL training slices are the reference.")],
    synthetic: Annotated[Path, typer.Option(help="Synthetic dataset from `synthaug generate`.")],
    out: Annotated[Path, typer.Option(help="Write all metrics here (JSON).")],
    extractor: Annotated[
        str,
        typer.Option(
            help="domain (in-domain encoders, trained and cached) or inception (your weights file)."
        ),
    ] = "domain",
    inception_weights: Annotated[
        Path | None,
        typer.Option(
            help="FID Inception weights (pt_inception-2015-12-05); default $SYNTHAUG_INCEPTION_WEIGHTS."
        ),
    ] = None,
    patients: Annotated[
        int | None, typer.Option(help="Use the first N synthetic patients (default all).")
    ] = None,
    reference_unet: ReferenceUnet = None,
    unet_preset: UnetPreset = "cpu-tiny",
    cache: Annotated[
        Path | None, typer.Option(help="Cache folder for encoders (default: STORE/cache).")
    ] = None,
) -> None:
    """FID/KID per modality and joint, precision/recall, mask–image consistency, label statistics."""
    from synthaug.quality.evaluate import format_quality
    from synthaug.stages import AssessOptions, assess_synthetic

    (result,) = assess_synthetic(
        AssessOptions(
            store=str(store),
            fold=fold,
            synthetic=(str(synthetic),),
            outs=(str(out),),
            extractor=extractor,
            inception_weights=str(inception_weights) if inception_weights else None,
            patients=patients,
            reference_unet=str(reference_unet) if reference_unet else None,
            unet_preset=unet_preset,
            cache=str(cache) if cache else None,
        )
    )
    typer.echo(format_quality(result.metrics))
    console.print(f"quality: → {result.out}")


@app.command("quality-snapshots")
def quality_snapshots(
    run: Annotated[Path, typer.Argument(help="GAN run folder from `synthaug train-gan`.")],
    samples: Annotated[
        int | None,
        typer.Option(help="Generated slices per snapshot (default: the fold's validation slices)."),
    ] = None,
) -> None:
    """In-domain FID/KID, precision/recall and diversity at every snapshot; picks the best."""
    from synthaug.quality.snapshots import format_snapshot_quality
    from synthaug.stages import score_run
    from synthaug.stages.train_generator import SNAPSHOT_SCORES

    result = score_run(run, samples=samples)
    typer.echo(format_snapshot_quality(result))
    console.print(f"quality-snapshots: → {run / SNAPSHOT_SCORES}")


@app.command("train-seg")
def train_seg_cmd(
    store: Annotated[Path, typer.Option(help="Slice store.")],
    fold: Annotated[
        int,
        typer.Option(
            help="Fold: trains on its training patients, selects on its validation patients, tests on its test patients (all real)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Run folder.")],
    seed: Annotated[int, typer.Option(help="Seed of weights and minibatches.")] = 0,
    synthetic: Annotated[
        Path | None, typer.Option(help="Synthetic dataset from `synthaug generate`.")
    ] = None,
    n_patients: Annotated[
        int, typer.Option(help="Add the first N synthetic patients (0 = real only).")
    ] = 0,
    preset: Annotated[
        str, typer.Option(help="U-Net preset: cpu-micro, cpu-tiny, cpu-small, gpu-256.")
    ] = "cpu-tiny",
    max_steps: Annotated[
        int | None,
        typer.Option(
            help="Override the preset's step cap (a safety net: early stopping on the real "
            "validation patients should end training; a run whose best model is at the cap is "
            "flagged capped)."
        ),
    ] = None,
    synthetic_fraction: Annotated[
        float | None,
        typer.Option(
            help="Draw this share of every minibatch from the synthetic slices (default: "
            "uniform over all slices), so real slices are seen as often as without them."
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue an unfinished run in --out.")] = False,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    precision: PrecisionOpt = "auto",
) -> None:
    """Train a MONAI U-Net on real (+ n synthetic) patients; report Dice on real test patients."""
    from synthaug.precision import check_precision
    from synthaug.stages import SegOptions, train_unet

    r = train_unet(
        SegOptions(
            store=str(store),
            fold=fold,
            out=str(out),
            seed=seed,
            synthetic=str(synthetic) if synthetic else None,
            n_patients=n_patients,
            preset=preset,
            device=device,
            resume=resume,
            max_steps=max_steps,
            synthetic_fraction=synthetic_fraction,
            precision=check_precision(precision),
        )
    )
    stopped = r.results.stopped_by
    console.print(
        f"train-seg: mean foreground Dice on {r.test_patients} real test patients "
        f"= {r.test_mean_dice:.3f} (best step {r.best_step} of {r.results.steps}, "
        f"ended by {stopped}, {r.results.precision}) → {r.out / 'results.json'}"
    )
    if r.results.capped:
        console.print(
            "train-seg: warning: the best model is at the step cap: validation Dice may still "
            "be rising. Raise --max-steps; a study draws no gain or harm from such a cell."
        )


@app.command()
def study(
    config: Annotated[
        Path, typer.Option(help="STUDY.yaml (datasets, sources, n_levels, folds, seeds, presets).")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Study folder (default: runs/<study name>).")
    ] = None,
    executor: Annotated[str, typer.Option(help="local (worker processes) or ray.")] = "local",
    workers: Annotated[int, typer.Option(help="Parallel one-thread workers.")] = 2,
    ray_address: Annotated[
        str | None, typer.Option(help="Address of an existing Ray cluster (executor ray).")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the plan, its estimated compute and its power; run nothing."
        ),
    ] = False,
) -> None:
    """Run (or resume) the whole grid; finished cells are never recomputed."""
    from synthaug.study.config import design_warnings, load_study
    from synthaug.study.dry_run import describe_plan
    from synthaug.study.runner import run_study

    cfg = load_study(config)
    folder = out or Path("runs") / cfg.name
    if dry_run:
        typer.echo(describe_plan(cfg, folder, workers))
        return
    for warning in design_warnings(cfg):
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    path = run_study(cfg, folder, executor, workers, ray_address)
    console.print(
        f"study: results → {path}; next: synthaug stats {path} / synthaug report {path} --out DIR"
    )


@app.command()
def stats(
    results: Annotated[Path, typer.Argument(help="results.csv (or the study folder).")],
    design: Annotated[
        str | None,
        typer.Option(
            help="per-source (each source its own family, datasets as blocks) or paper (the "
            "paper's pooled dataset × source blocks); default: the study's."
        ),
    ] = None,
    alpha: Annotated[float | None, typer.Option(help="Significance level.")] = None,
    rope: Annotated[
        float | None,
        typer.Option(help="Practical equivalence: ± the metric's units (default 0.01 Dice)."),
    ] = None,
    primary: Annotated[
        str | None,
        typer.Option(
            help="The test that decides: corrected-t (Nadeau-Bengio / Bouckaert-Frank, Holm "
            "over all comparisons) or bayes (Bayesian correlated t-test, P >= 0.95); default: "
            "the study's."
        ),
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="dice, slice_dice, hd95 or nsd; default: the study's.")
    ] = None,
    class_name: Annotated[
        str | None,
        typer.Option("--class", help="A class name, or mean (mean over foreground classes)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole analysis as JSON.")
    ] = False,
) -> None:
    """Each n against real-only (corrected t primary, Bayesian, Wilcoxon as sensitivity),
    Friedman, sources against each other, power."""
    from synthaug.report.verdict import format_statistics
    from synthaug.study.records import analyse_results

    result = analyse_results(
        results, design=design, alpha=alpha, rope=rope, primary=primary, metric=metric,
        class_name=class_name,
    )  # fmt: skip
    typer.echo(json.dumps(result.as_dict(), indent=2) if as_json else format_statistics(result))


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="results.csv (or the study folder).")],
    out: Annotated[Path, typer.Option(help="Report folder (index.html, report.md, figures).")],
) -> None:
    """Write the HTML + Markdown report: Dice vs n, CD diagram, gains/harms, samples, timings."""
    from synthaug.report.html import make_report

    path = make_report(results, out)
    console.print(f"report: {path.resolve()}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Run folder for every artifact of the demo.")] = Path(
        "runs/demo"
    ),
    quick: Annotated[
        bool, typer.Option(help="A two-minute version for tests (32×32, tiny networks).")
    ] = False,
    budget: Annotated[
        str | None,
        typer.Option(
            help="cpu (20-40 minutes on 2 cores; generators short of their targets) or quality "
            "(every generator trained to its targets: hours on 2 cores, minutes on a GPU). "
            "Default: quality on a GPU, else cpu."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Parallel one-thread workers.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """The main job on the embedded phantom: phantom → prepare → GANs → generate → U-Nets → stats → report."""
    from synthaug.demo import run_demo

    run_demo(out, quick=quick, workers=workers, seed=seed, budget=budget)


def main() -> None:
    """Entry point: run the app, turning SynthaugError into one line and a non-zero exit."""
    try:
        app()
    except SynthaugError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
