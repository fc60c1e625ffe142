"""README.md opens with the two set-up commands, and CI runs the second one verbatim."""

from __future__ import annotations

import re

from conftest import ROOT


def _setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_setup_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.index("```bash") < 200
    commands = _setup_commands()
    assert len(commands) == 2
    assert "qa serve" in commands[0] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _setup_commands()[1] in ci.splitlines()


def _links(path) -> list[str]:
    """The relative link targets of a Markdown file (web addresses and in-page anchors left out)."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # code blocks hold no links
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not t.startswith(("http://", "https://", "#"))]


def _anchors(path) -> set[str]:
    """GitHub-style anchors of a Markdown file's headings."""
    anchors = set()
    for heading in re.findall(r"(?m)^#+ (.+)$", path.read_text(encoding="utf-8")):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_every_link_in_readme_and_docs_resolves():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in _links(page):
            file_part, _, anchor = target.partition("#")
            resolved = (page.parent / file_part).resolve() if file_part else page
            if not resolved.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


def test_readme_is_a_five_minute_read():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move detail into docs/"
    docs = {p.name for p in (ROOT / "docs").glob("*.md")}
    linked = {t.partition("#")[0].removeprefix("docs/") for t in _links(ROOT / "README.md")}
    assert docs <= linked, f"docs pages README does not link: {sorted(docs - linked)}"
