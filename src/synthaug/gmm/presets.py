"""GMM painter presets: how far the painting departs from the training images' statistics."""

from __future__ import annotations

from dataclasses import dataclass

from synthaug.generator import PresetRegistry


@dataclass(frozen=True)
class GmmPreset:
    """Domain-randomisation strengths of the label-to-image painter (resolution-free).

    pv_sigma_px: the range of the partial-volume Gaussian blur (pixels, drawn per slice);
    bias: the standard deviation of the log bias field (a smooth multiplicative field, drawn
    per slice on a ``bias_grid``² grid); noise: the within-class noise as a multiple of the
    class's measured standard deviation; elastic_px: the standard deviation of a smooth
    displacement applied to the mask before painting (0 = the mask as given);
    contrast_jitter: extra spread of the class means, as a multiple of their spread between
    training patients.
    """

    name: str
    # noise 0.5 and a light blur, measured on the tissue phantom's fold 0 (validation
    # reference, docs/generators.md): a class's measured std already holds its partial-volume
    # edges and bias, so adding it all again as pixel noise (noise 1, blur 0.5-1 px) gave
    # FID 7.6x the real baseline against 1.6x.
    pv_sigma_px: tuple[float, float] = (0.0, 0.3)
    bias: float = 0.1
    bias_grid: int = 4
    noise: float = 0.5
    elastic_px: float = 0.0
    elastic_grid: int = 5
    contrast_jitter: float = 0.5


GMM_PRESETS: PresetRegistry[GmmPreset] = PresetRegistry(
    "gmm",
    (
        GmmPreset(name="default"),
        # the masks deformed too: more shape variety than the training masks hold
        GmmPreset(name="elastic", elastic_px=1.5),
    ),
)


def gmm_preset(name: str) -> GmmPreset:
    return GMM_PRESETS.named(name)
