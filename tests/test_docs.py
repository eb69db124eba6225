"""
The documentation stays navigable: every relative link and anchor in
C{README.md} and C{docs/*.md} points at a file and heading that exist, every
page under C{docs/} is reachable from the README, and the README still
starts with the two commands a fresh machine (and C{.ci/run}) relies on.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = sorted((REPO / "docs").glob("*.md"))

#: The README's first two code lines, verbatim: install and run the daemon;
#: install and run the whole test suite (the line C{.ci/run} runs).
SERVER_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install . && "
    ".venv/bin/twistd -n clws --port 12345"
)
TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install '.[test]' && "
    ".venv/bin/python -m pytest"
)

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
#: An inline link or image: [text](target "title"), the text holding at
#: most one level of brackets; group 1 is the target.
_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]"
    r"\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def proseLines(text: str) -> list[tuple[int, str]]:
    """
    The lines of a markdown document outside fenced code blocks, numbered
    from 1.
    """
    lines = []
    inFence = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            inFence = not inFence
            continue
        if not inFence:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """
    The anchor GitHub gives a heading: its text (code spans and links
    reduced to their text), lowercased, with every character but letters,
    digits, C{_}, C{-} and spaces dropped and each space made a C{-}.
    """
    text = _CODE_SPAN.sub(lambda match: match.group(2), heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """
    Every heading anchor of the markdown file C{path}, repeated headings
    numbered C{-1}, C{-2}, ... as GitHub numbers them.
    """
    seen: dict[str, int] = {}
    found = set()
    for _, line in proseLines(path.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """
    The targets of the inline links (and images) of C{path}, with their
    line numbers; links inside code (fenced or inline) are not links.
    """
    found = []
    for number, line in proseLines(path.read_text(encoding="utf-8")):
        # A code span's text cannot hold a link, but link text may hold a
        # code span: keep a placeholder so the brackets still pair up.
        line = _CODE_SPAN.sub("code", line)
        found.extend((number, match.group(1)) for match in _LINK.finditer(line))
    return found


def brokenLink(source: Path, target: str) -> str | None:
    """
    Why the relative link C{target} of C{source} does not resolve, or
    C{None} if it does (or is not relative: it has a scheme).
    """
    if _SCHEME.match(target):
        return None
    pathPart, _, anchor = target.partition("#")
    resolved = (source.parent / pathPart).resolve() if pathPart else source
    if not resolved.exists():
        return f"no such file {resolved}"
    if REPO not in resolved.parents and resolved != REPO:
        return f"{resolved} is outside the repository"
    if not anchor:
        return None
    if resolved.suffix != ".md":
        return f"anchor #{anchor} into a file that is not markdown"
    if anchor not in anchors(resolved):
        return f"no heading #{anchor} in {resolved.relative_to(REPO)}"
    return None


def test_slugs() -> None:
    """
    Heading anchors follow GitHub's rule, code spans and punctuation
    included, so the anchors this module checks are the ones readers click.
    """
    assert slug("Testing resources (`txclws.testing`)") == (
        "testing-resources-txclwstesting"
    )
    assert slug("wss:// (TLS)") == "wss-tls"
    assert slug("Co-hosting with twisted.web") == "co-hosting-with-twistedweb"
    assert slug("What is shared, and what is not") == ("what-is-shared-and-what-is-not")


def test_brokenLinkDetected() -> None:
    """
    The checker itself finds a missing file and a missing heading, and
    accepts an existing heading, so a passing run means something.
    """
    page = REPO / "docs" / "library.md"
    assert brokenLink(page, "nowhere.md") is not None
    assert brokenLink(page, "security.md#no-such-heading") is not None
    assert brokenLink(page, "#resources-and-clients") is None
    assert brokenLink(page, "https://twisted.org/#anything") is None


@pytest.mark.parametrize(
    "path", [README, *PAGES], ids=lambda path: str(path.relative_to(REPO))
)
def test_relativeLinksResolve(path: Path) -> None:
    """
    Every relative link and anchor of a documentation page points at an
    existing file and, for an anchor, an existing heading of that file.
    """
    broken = [
        f"{path.relative_to(REPO)}:{number}: {target}: {why}"
        for number, target in links(path)
        if (why := brokenLink(path, target)) is not None
    ]
    assert broken == []


def test_everyPageLinkedFromReadme() -> None:
    """
    The README is the front page: every page under C{docs/} is linked from
    it, so none is reachable only by listing the folder.
    """
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for _, target in links(README)
        if not _SCHEME.match(target) and target.partition("#")[0]
    }
    assert [page.name for page in PAGES if page.resolve() not in linked] == []
    assert len(PAGES) >= 10


def test_readmeStartsWithTheTwoCommands() -> None:
    """
    The README's first lines are its title and one code block holding
    exactly the two commands: install and run the daemon, install and run
    the whole test suite.
    """
    start = README.read_text(encoding="utf-8").splitlines()[:6]
    assert start == [
        "# txclws",
        "",
        "```sh",
        SERVER_COMMAND,
        TEST_COMMAND,
        "```",
    ]


def test_ciRunsTheReadmeTestCommand() -> None:
    """
    C{.ci/run} runs the README's test command verbatim, as a line of its
    own, so what CI proves is what a reader of the README would run.
    """
    ciLines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert TEST_COMMAND in ciLines
