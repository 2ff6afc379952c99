"""What a GAN run is: its metadata (run.json) and the networks it implies."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from synthaug.data.provenance import TrainedOn
from synthaug.gan.checkpoint import RUN_META, read_run_meta
from synthaug.gan.networks import (
    Discriminator,
    Generator,
    SegmentationDiscriminator,
    VariantSpec,
    build_networks,
)
from synthaug.gan.presets import GanPreset


@dataclass(kw_only=True)
class RunInfo(TrainedOn):
    """Everything needed to rebuild a run's networks and to interpret its samples."""

    variant: str
    preset: dict
    seed: int
    kimg: float
    world_size: int = 1
    family: str = "stylegan2"

    @property
    def spec(self) -> VariantSpec:
        return VariantSpec(self.variant, len(self.modalities), len(self.labels))

    def gan_preset(self) -> GanPreset:
        fields = dict(self.preset)
        fields["betas"] = tuple(fields["betas"])
        fields.pop("variant_channel_base", None)  # runs from before variant_settings
        return GanPreset(**fields)

    def build(self) -> tuple[Generator, Discriminator | SegmentationDiscriminator]:
        p = self.gan_preset()
        return build_networks(
            self.variant,
            self.resolution,
            len(self.modalities),
            len(self.labels),
            z_dim=p.z_dim,
            w_dim=p.w_dim,
            mapping_layers=p.mapping_layers,
            channel_base=p.channel_base,
            channel_max=p.channel_max,
            mbstd_group=p.mbstd_group,
            cond_embed_dim=p.cond_embed_dim,
            d_channel_base=p.d_channel_base,
            d_architecture=p.d_architecture,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def read(cls, run: Path | str) -> RunInfo:
        return cls(**read_run_meta(Path(run)))


def run_meta_path(run: Path | str) -> Path:
    return Path(run) / RUN_META
