"""Sources of synthetic pairs and their filters, as named in configs and on the command line."""

from __future__ import annotations

import pytest

from synthaug.errors import SynthaugError
from synthaug.stages.sources import parse_filter, parse_source


def test_filter_and_source_parsing():
    assert parse_filter("consistency>=0.5") == 0.5
    assert parse_filter(" consistency >= 1 ") == 1.0
    spec = parse_source("real-mask-conditional[consistency>=0.50]")
    assert spec.base == "real-mask-conditional" and spec.min_consistency == 0.5
    assert spec.name == "real-mask-conditional[consistency>=0.5]"
    assert spec.slug == "real-mask-conditional.consistency-ge-0.5"
    assert [g.variant for g in spec.generators] == ["conditional"]
    assert [g.variant for g in parse_source("mask-conditional").generators] == [
        "mask",
        "conditional",
    ]
    plain = parse_source("joint")
    assert plain.min_consistency is None and plain.slug == plain.name == "joint"


@pytest.mark.parametrize(
    "text", ["consistency>0.5", "dice>=0.5", "consistency>=1.5", "consistency>=x", ""]
)
def test_bad_filters_are_refused(text):
    with pytest.raises(SynthaugError, match="filter"):
        parse_filter(text)


@pytest.mark.parametrize("text", ["diffusion", "joint[consistency>=0.5", "joint[dice>=0.2]"])
def test_bad_sources_are_refused(text):
    with pytest.raises(SynthaugError):
        parse_source(text)
