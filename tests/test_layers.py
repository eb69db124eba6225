"""
The package's layering, checked from its source: no import cycle among the
modules of C{txclws} (imports under C{TYPE_CHECKING} and inside functions
included), a sans-I/O core that imports neither Twisted nor zope, and the
size limits of issue 13 (modules, classes, C{type: ignore} comments).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "txclws"

#: Issue 13: no module of the package over this many lines...
MAX_MODULE_LINES = 400

#: ...no class over this many (from its first line to its last, by C{ast})...
MAX_CLASS_LINES = 300

#: ...and fewer C{type: ignore} comments than this in the whole package.
MAX_TYPE_IGNORES = 40


def moduleName(path: Path) -> str:
    """
    The dotted name of the module at C{path}.
    """
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def importsOf(path: Path) -> set[str]:
    """
    Every module C{path} imports, wherever the import statement is.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    """
    The import graph among C{txclws}'s own modules.
    """
    modules = {moduleName(path): path for path in PACKAGE.rglob("*.py")}
    return {
        name: {target for target in importsOf(path) if target in modules} - {name}
        for name, path in modules.items()
    }


def findCycle(edges: dict[str, set[str]]) -> list[str] | None:
    """
    One import cycle in C{edges}, as a list of modules, or L{None}.
    """
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_findsCycles() -> None:
    """
    The checker finds a cycle when there is one, so a pass means something.
    """
    assert findCycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert findCycle({"a": {"b"}, "b": set()}) is None


def test_noImportCycle() -> None:
    """
    No module of C{txclws} imports itself through others.
    """
    assert findCycle(graph()) is None


def test_coreIsSansIO() -> None:
    """
    Nothing in C{txclws._core} imports Twisted or zope, or anything of
    txclws outside the core.
    """
    for path in (PACKAGE / "_core").glob("*.py"):
        for target in importsOf(path):
            assert not target.startswith(("twisted", "zope")), (path.name, target)
            if target.startswith("txclws"):
                assert target.startswith("txclws._core"), (path.name, target)


def test_sessionBelowTransports() -> None:
    """
    The session knows no transport: nothing in C{txclws._session} imports
    the front door, the factory or C{txclws.web}.
    """
    above = ("txclws._protocol", "txclws._factory", "txclws.web", "txclws.tap")
    for path in (PACKAGE / "_session").glob("*.py"):
        assert not importsOf(path) & set(above), path.name


def classSizes(source: str) -> dict[str, int]:
    """
    The length in lines of each class in C{source} (nested ones included),
    decorators left out, by qualified-enough name (C{Outer.Inner}).
    """
    sizes: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                name = prefix + child.name
                assert child.end_lineno is not None
                sizes[name] = child.end_lineno - child.lineno + 1
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return sizes


def test_classSizes() -> None:
    """
    The class measure counts every line of a class, nested classes
    included, so a pass of L{test_classesAreSmall} means something.
    """
    source = "class A:\n    x = 1\n\n    class B:\n        y = 2\n\n\nz = 3\n"
    assert classSizes(source) == {"A": 5, "A.B": 2}


def test_modulesAreSmall() -> None:
    """
    No module of C{txclws} is over L{MAX_MODULE_LINES} lines (issue 13:
    each small enough to read in one sitting).
    """
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert len(sizes) > 50
    assert {name: size for name, size in sizes.items() if size > MAX_MODULE_LINES} == {}


def test_classesAreSmall() -> None:
    """
    No class of C{txclws} is over L{MAX_CLASS_LINES} lines (issue 13: no
    god-class).
    """
    large = {
        f"{path.relative_to(PACKAGE)}:{name}": size
        for path in PACKAGE.rglob("*.py")
        for name, size in classSizes(path.read_text()).items()
        if size > MAX_CLASS_LINES
    }
    assert large == {}


def test_fewTypeIgnores() -> None:
    """
    Fewer than L{MAX_TYPE_IGNORES} lines of C{txclws} carry a
    C{type: ignore} comment (issue 13: a seam reached through behind an
    ignore is a missing interface).
    """
    count = sum(
        "type: ignore" in line
        for path in PACKAGE.rglob("*.py")
        for line in path.read_text().splitlines()
    )
    assert count < MAX_TYPE_IGNORES, count
