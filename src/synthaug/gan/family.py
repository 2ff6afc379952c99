"""StyleGAN2 as a generator family (``synthaug.generator.GeneratorFamily``)."""

from __future__ import annotations

import json
from pathlib import Path

from synthaug.gan.checkpoint import RUN_META, SUMMARY, list_snapshots, snapshot_nimg
from synthaug.gan.networks import VARIANTS
from synthaug.gan.run import RunInfo
from synthaug.gan.sample import StyleGAN2Sampler, load_generator, variant_outputs
from synthaug.gan.train import train
from synthaug.generator import RunDescription, Snapshot, TrainingHealth, TrainRequest

FAMILY = "stylegan2"


class StyleGAN2Family:
    """Joint, mask and conditional StyleGAN2 generators."""

    name = FAMILY
    variants = VARIANTS

    def owns(self, run: Path) -> bool:
        path = Path(run) / RUN_META
        if not path.is_file():
            return False
        try:
            return json.loads(path.read_text()).get("family", FAMILY) == FAMILY
        except json.JSONDecodeError:
            return True  # ours by layout; RunInfo.read names the corrupt file

    def train(self, request: TrainRequest) -> Path:
        return train(request)

    def describe(self, run: Path) -> RunDescription:
        info = RunInfo.read(run)
        return RunDescription.of(info, FAMILY, variant_outputs(info.variant))

    def snapshots(self, run: Path) -> list[Snapshot]:
        return [Snapshot(p, snapshot_nimg(p)) for p in list_snapshots(Path(run))]

    def load(self, run: Path, snapshot: Path | None = None) -> StyleGAN2Sampler:
        return StyleGAN2Sampler(load_generator(run, snapshot))

    def health(self, run: Path) -> TrainingHealth | None:
        return TrainingHealth.from_summary(Path(run) / SUMMARY)


STYLEGAN2 = StyleGAN2Family()
