"""The README is a short front page, the manual in docs/ links only to files that exist, and
no document or package file cites the tracker or the private spec."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]


def _text_files(folder):
    """Every UTF-8 text file under `folder` (sources, help texts, data lists), caches aside."""
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            try:
                path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            files.append(path)
    return files


PACKAGE_FILES = _text_files(ROOT / "keras_mvf")

# Inline Markdown links and images: [text](target) or ![alt](target "title").
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# "issue 7", "Issues 2", "issue #7", "PR 12", or a bare "#12" in prose. A "#" right after a
# word character or a slash is part of a name such as keras-team/keras#20585 (an upstream
# project's tracker), which may be cited.
TRACKER = re.compile(
    r"\bissues?\s+#?\d+|\b(?:PR|pull request)\s+#?\d+|(?<![\w/.&-])#\d+\b", re.IGNORECASE
)


def _relative_links(path):
    targets = LINK.findall(path.read_text(encoding="utf-8"))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t, re.IGNORECASE)]


def test_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; the manual belongs in docs/"


def test_manual_pages_exist():
    names = {path.name for path in DOCS}
    assert {"README.md", "models.md", "data.md", "training.md", "cli.md"} <= names
    readme_links = _relative_links(README)
    assert "docs/README.md" in readme_links


@pytest.mark.parametrize("page", PAGES, ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_point_to_files(page):
    links = _relative_links(page)
    anchored = [link for link in links if "#" in link]
    assert not anchored, f"{page.name}: links with anchors break when headings change: {anchored}"
    missing = [link for link in links if not (page.parent / link).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def _hits(paths, pattern):
    hits = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return hits


def test_the_package_is_scanned():
    names = {path.name for path in PACKAGE_FILES}
    assert {"cli.py", "mvf_module.py", "kinetics400_classes.txt"} <= names


def test_no_tracker_issue_references():
    hits = _hits(PAGES + PACKAGE_FILES, TRACKER)
    assert not hits, "tracker references; say what the thing is instead:\n" + "\n".join(hits)


def test_no_citation_of_the_private_spec():
    hits = _hits(PAGES + PACKAGE_FILES, re.compile(r"SPEC\.md"))
    assert not hits, "SPEC.md is not part of the project; cite docs/architecture.md:\n" + (
        "\n".join(hits)
    )


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("the targets of issue 7", True),
        ("Issue 7's targets", True),
        ("(issues 2 and 7)", True),
        ("fixed in #12.", True),
        ("see PR 31", True),
        ("keras-team/keras#20585: two reductions", False),
        ("https://github.com/keras-team/keras/issues/20585", False),
        ("the issue is 7 times slower", False),
        ("colour '#1f77b4'", False),
        ("# 1x1 convolution", False),
    ],
)
def test_tracker_pattern(text, found):
    assert bool(TRACKER.search(text)) == found
