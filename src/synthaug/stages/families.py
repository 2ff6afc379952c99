"""The generator families synthaug knows; a new family is one entry here."""

from __future__ import annotations

from pathlib import Path

from synthaug.diffusion.family import DIFFUSION
from synthaug.errors import SynthaugError
from synthaug.gan.family import STYLEGAN2
from synthaug.generator import GeneratorFamily
from synthaug.gmm.family import GMM

FAMILIES: dict[str, GeneratorFamily] = {fam.name: fam for fam in (STYLEGAN2, DIFFUSION, GMM)}


def family(name: str) -> GeneratorFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise SynthaugError(
            f"family: unknown generator family {name!r}; choose one of {', '.join(FAMILIES)}"
        ) from None


def family_of(run: Path | str) -> GeneratorFamily:
    """The family whose run folder ``run`` is."""
    for fam in FAMILIES.values():
        if fam.owns(Path(run)):
            return fam
    raise SynthaugError(
        f"{run}: not a generator run (no run.json); run `synthaug train-generator` first"
    )
