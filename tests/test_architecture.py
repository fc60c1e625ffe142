"""docs/architecture.md's module map names every module of qa/ and nothing that is not there."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _map_entries() -> set[str]:
    """The modules the map names, as paths under qa/ (a file under a sub-package heading is that package's)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("```", 2)[1]
    entries, package = set(), ""
    for line in block.splitlines()[2:]:
        match = re.match(r"( *)(\S+)", line)
        if not match:
            continue
        indent, name = len(match.group(1)), match.group(2)
        if indent == 2:
            package = name if name.endswith("/") else ""
            if name.endswith(".py"):
                entries.add(name)
        elif indent == 4 and package:
            if name.endswith("/"):
                subpackage = package + name
                entries.add(subpackage)
            elif name.endswith(".py"):
                entries.add(package + name)
        elif indent == 6 and name.endswith(".py"):
            entries.add(subpackage + name)
    return entries


def test_module_map_matches_the_tree():
    modules = {
        str(path.relative_to(ROOT / "qa"))
        for path in (ROOT / "qa").rglob("*.py")
        if not (path.name == "__init__.py" and path.parent != ROOT / "qa" and path.parent.name != "formats")
    }
    named = {entry for entry in _map_entries() if entry.endswith(".py")}
    assert sorted(modules - named) == [], "modules missing from docs/architecture.md"
    assert sorted(named - modules) == [], "docs/architecture.md names modules that do not exist"


def test_every_subpackage_is_in_the_map():
    packages = {str(path.parent.relative_to(ROOT / "qa")) + "/" for path in (ROOT / "qa").rglob("__init__.py")}
    packages.discard("./")
    named = {entry for entry in _map_entries() if entry.endswith("/")} | {
        entry.rsplit("/", 1)[0] + "/" for entry in _map_entries() if "/" in entry
    }
    assert sorted(packages - named) == []
