"""The README's "Architecture" section names every package folder, and only folders that exist;
test folders mirror folders of the repository. A new subpackage gets its line there (what it is
for, in one line) in the commit that adds it."""

from __future__ import annotations

import re

from tests.conftest import ROOT

ROOMS = ("stream", "synth", "sinks")


def listed_folders() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    return [f for f in re.findall(r"^- `([a-z_/]+)/`", section, flags=re.M) if f.split("/")[0] in ROOMS]


def package_folders() -> set[str]:
    return {p.parent.relative_to(ROOT).as_posix() for room in ROOMS for p in (ROOT / room).rglob("*.py")
            if "__pycache__" not in p.parts}


def test_the_architecture_section_lists_every_package_folder_and_no_other() -> None:
    listed = listed_folders()
    assert len(listed) == len(set(listed)), f"listed twice: {sorted(f for f in listed if listed.count(f) > 1)}"
    packages = package_folders()
    assert set(listed) - packages == set(), "README Architecture lists folders that hold no modules"
    assert packages - set(listed) == set(), "package folders missing from README Architecture (one line each)"


def test_test_folders_mirror_folders_of_the_repository() -> None:
    folders = {p.parent.relative_to(ROOT / "tests").as_posix() for p in (ROOT / "tests").rglob("test_*.py")}
    mirrored = {f for f in folders if f != "." and (ROOT / f).is_dir()}
    assert folders - mirrored - {"."} == set(), "test folders that mirror no folder (tests/X/ tests X/)"
