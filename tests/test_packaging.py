"""Installing the extras after the base package must not change what the base install chose."""

from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


def base_specifier(name: str) -> SpecifierSet:
    """What the base install allows for `name`: pyproject's dependencies and constraints.txt together."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"], *(line for line in (ROOT / "constraints.txt").read_text().splitlines()
                                         if line.strip() and not line.startswith("#"))]
    allowed = SpecifierSet()
    for line in lines:
        requirement = Requirement(line)
        if requirement.name.lower() == name:
            allowed &= requirement.specifier
    return allowed


@pytest.mark.parametrize("extra_package", ["gradio", "playwright", "hypothesis", "matplotlib"])
def test_the_base_install_takes_no_pillow_an_extra_would_downgrade(extra_package):
    try:
        requires = metadata.requires(extra_package) or []
    except metadata.PackageNotFoundError:
        pytest.skip(f"{extra_package} is not installed")
    ours = base_specifier("pillow")
    for line in requires:
        requirement = Requirement(line)
        if requirement.name.lower() != "pillow" or requirement.marker is not None:
            continue
        for spec in requirement.specifier:
            if spec.operator == "<":  # the extra's cap must already be ours
                assert not ours.contains(spec.version), f"{extra_package} needs pillow{spec}; we allow {ours}"


def test_docs_name_only_extras_that_exist():
    import re

    tomllib = pytest.importorskip("tomllib")
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    sources = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "src").rglob("*.py"))]
    for path in sources:
        for named in re.findall(r"reasondiff\\?\[([a-z,]+)\\?\]", path.read_text()):
            assert set(named.split(",")) <= extras, f"{path.name} names reasondiff[{named}]"


def test_the_readme_test_command_says_browser_tests_need_chromium():
    readme = (ROOT / "README.md").read_text()
    after = readme[readme.index("<!-- quickstart:test -->"):][:800]
    assert "skip unless Chromium is installed" in " ".join(after.split()) and "apt-get install chromium" in after
