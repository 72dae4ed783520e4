"""Every relative link and image in the tracked Markdown files points at a file that exists (and a heading that
exists, for ``#anchor`` links), so no page refers to a document the repository does not hold."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parent.parent
SKIPPED_FOLDERS = {".venv", "data", "runs", "node_modules", ".git"}
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HTML_LINK = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)=["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:...


def markdown_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "*.md"], cwd=REPO, capture_output=True, check=True,
                                timeout=60).stdout.decode().split("\0")
        files = [REPO / name for name in listed if name]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every Markdown file outside data folders
        files = [p for p in REPO.rglob("*.md") if not SKIPPED_FOLDERS & set(p.relative_to(REPO).parts)]
    return sorted(p for p in files if p.is_file())


def prose(text: str, code_spans: bool = False) -> str:
    """The text without fenced code blocks and, unless asked, inline code spans (links there are examples)."""
    kept, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(line if code_spans else re.sub(r"`+[^`]*`+", "", line))
    return "\n".join(kept)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    for line in prose(path.read_text(encoding="utf-8"), code_spans=True).splitlines():
        match = HEADING.match(line)
        if match:
            base = slug(match.group(1))
            count = counts.get(base, 0)
            counts[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    found |= set(re.findall(r"""<a\s+(?:name|id)=["']([^"']+)["']""", path.read_text(encoding="utf-8")))
    return found


def links(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text) + HTML_LINK.findall(text)


def shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def broken_links(path: Path) -> list[str]:
    problems = []
    for target in links(path):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not destination.exists():
            problems.append(f"{target}: {shown(destination)} does not exist")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            problems.append(f"{target}: no heading #{anchor} in {shown(destination)}")
    return problems


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path):
    assert broken_links(path) == []


def test_the_checker_catches_broken_files_and_anchors(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "method.md").write_text("# Method\n\n## 4. Model: the `decoder`\n\n## Notes\n\n## Notes\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](docs/method.md) [ok](docs/method.md#4-model-the-decoder) [ok](docs/method.md#notes-1)\n"
                    "![gone](docs/missing.png) [bad](docs/method.md#5-losses) [web](https://example.org/x)\n"
                    "`[code](not/a/link.md)`\n```\n[block](not/either.md)\n```\n[self](#nothing-here)\n")
    problems = broken_links(page)
    assert len(problems) == 3
    assert "docs/missing.png" in problems[0] and "#5-losses" in problems[1] and "#nothing-here" in problems[2]


MENTIONED_PAGE = re.compile(r"(?<![\w./-])((?:\.\./)*[\w-]+(?:/[\w.-]+)*/[\w.-]+\.md)\b")


def test_pages_named_in_text_exist():
    """A path to a Markdown page written as text ("see docs/environment.md") names a page of the repository."""
    missing = []
    for path in markdown_files() + [REPO / "requirements.txt"]:
        for mention in MENTIONED_PAGE.findall(path.read_text(encoding="utf-8")):
            if not ((REPO / mention).exists() or (path.parent / mention).exists()):
                missing.append(f"{shown(path)}: {mention}")
    assert missing == []
