"""The ONSS schemas under contracts/onss/ are the published ones, byte for byte.

The reference copies sit beside the repository (shared/reference-contracts/) on a development
machine, or wherever HUB_REFERENCE_CONTRACTS points. The contract tests validate against the
repository's copies, so they hold on any clone; this test ties those copies to the publication.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COPIES = sorted((REPO / "contracts" / "onss").rglob("*.xsd"))


def _reference_dir() -> Path | None:
    for candidate in (os.environ.get("HUB_REFERENCE_CONTRACTS"), REPO.parent / "shared" / "reference-contracts"):
        if candidate and Path(candidate, "onss").is_dir():
            return Path(candidate)
    return None


def test_the_published_schemas_the_adapters_speak_are_in_the_repository():
    names = {p.name for p in COPIES}
    assert {"PersonnelFileConsultationRequest_20231.xsd", "PersonnelFileConsultationAnswer_20223.xsd",
            "DmfAConsultationRequest_20224.xsd", "DmfAConsultationAnswer_20224.xsd"} <= names


@pytest.mark.parametrize("copy", COPIES, ids=lambda p: p.name)
def test_copy_is_identical_to_the_publication(copy):
    reference = _reference_dir()
    if reference is None:
        pytest.skip("reference contracts not on this machine (set HUB_REFERENCE_CONTRACTS)")
    published = reference / copy.relative_to(REPO / "contracts")
    assert published.is_file(), f"{copy.name} is not a published ONSS schema"
    assert copy.read_bytes() == published.read_bytes()
