"""One function per pipeline step, typed options in, typed result out; each writes its artifact
atomically. The command line and the study's jobs are thin layers over these.

    prepare_dataset      dataset folder → slice store                      (PreparedStore)
    train_generator      one fold's training patients → run, scored       (GeneratorRun)
    generate             a source's generators → synthetic MSD dataset    (GeneratedSet)
    train_unet           real (+ n synthetic) patients → U-Net, test Dice (SegRun)
    assess_synthetic     synthetic sets → image-quality metrics           (Assessment)
"""

from synthaug.generator import TrainRequest
from synthaug.seg.train import SegOptions
from synthaug.stages import families  # noqa: F401 (registers the families and their sources)
from synthaug.stages.assess import Assessment, AssessOptions, assess_synthetic
from synthaug.stages.generate import GeneratedSet, GenerateOptions, generate
from synthaug.stages.prepare import PreparedStore, prepare_dataset
from synthaug.stages.segment import SegRun, train_unet
from synthaug.stages.sources import SourceSpec, parse_filter, parse_source, source_names
from synthaug.stages.train_generator import (
    GeneratorRun,
    chosen_snapshot,
    score_run,
    train_generator,
)

__all__ = [
    "AssessOptions",
    "Assessment",
    "GenerateOptions",
    "GeneratedSet",
    "GeneratorRun",
    "PreparedStore",
    "SegOptions",
    "SegRun",
    "SourceSpec",
    "TrainRequest",
    "assess_synthetic",
    "chosen_snapshot",
    "generate",
    "parse_filter",
    "parse_source",
    "prepare_dataset",
    "score_run",
    "source_names",
    "train_generator",
    "train_unet",
]
