"""The generator families synthaug knows. A new family is one package and one entry in
``BUILTIN`` (or, from another package, an entry point in the group ``synthaug.families``, or
:func:`register` at run time): its sources, study section, presets and command-line options
come from the family itself."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from synthaug.diffusion.family import DIFFUSION
from synthaug.errors import SynthaugError
from synthaug.gan.family import STYLEGAN2
from synthaug.generator import GeneratorFamily
from synthaug.gmm.family import GMM
from synthaug.stages.sources import SOURCE_KINDS

BUILTIN: tuple[GeneratorFamily, ...] = (STYLEGAN2, DIFFUSION, GMM)
ENTRY_POINTS = "synthaug.families"
FAMILIES: dict[str, GeneratorFamily] = {}


def register(fam: GeneratorFamily) -> GeneratorFamily:
    """Make ``fam`` and its sources known to the stages, the study and the command line.
    Refused when its name, study section or a source name is taken by another family."""
    other = FAMILIES.get(fam.name)
    if other is not None and other is not fam:
        raise SynthaugError(f"family: {fam.name!r} is registered already")
    sections = {f.section: f.name for f in FAMILIES.values() if f is not fam}
    if fam.section in sections:
        raise SynthaugError(
            f"family {fam.name}: study section {fam.section!r} belongs to {sections[fam.section]}"
        )
    for kind in fam.sources:
        owner = SOURCE_KINDS.get(kind.name)
        if owner is not None and owner.painter.family != fam.name:
            raise SynthaugError(f"family {fam.name}: source {kind.name!r} is taken")
    FAMILIES[fam.name] = fam
    SOURCE_KINDS.update({kind.name: kind for kind in fam.sources})
    return fam


def unregister(name: str) -> None:
    """Forget a family registered at run time and its sources (tests, notebooks)."""
    fam = FAMILIES.pop(name)
    for kind in fam.sources:
        SOURCE_KINDS.pop(kind.name, None)


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


def by_section() -> dict[str, GeneratorFamily]:
    """The registered families by the study config section that trains them."""
    return {fam.section: fam for fam in FAMILIES.values()}


for _fam in BUILTIN:
    register(_fam)
for _entry in entry_points(group=ENTRY_POINTS):
    register(_entry.load())
