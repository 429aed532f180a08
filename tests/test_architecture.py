"""The house rules, checked on the source: one job per package, imports only go down, one name per meaning.

Floors, lowest first (a module may import its own floor and those below; the
registry names what core modules must not import, by string):

0. ``errors``, ``settings``, ``registry``, ``clip_tokenizer`` (plain data), ``atomic`` (writing a file whole)
1. ``checkpoints``, ``profiles``, ``images``, ``masks``, ``protocol``, ``conversation``, ``routing``, ``retry``
2. ``brain``, ``painter``, ``world``, ``restore``, ``library``
3. ``tasks``, ``assistant``, ``convert``, ``embedding``
4. ``data``; 5. ``eval``; 6. ``train``; 7. ``serve``, ``testing``; 8. ``cli``
"""

import ast
from collections import defaultdict
from pathlib import Path

import llmga

SRC = Path(llmga.__file__).parent
FLOORS = {
    "llmga": 0, "errors": 0, "settings": 0, "registry": 0, "clip_tokenizer": 0, "atomic": 0,
    "checkpoints": 1, "profiles": 1, "images": 1, "masks": 1, "protocol": 1, "conversation": 1, "routing": 1,
    "retry": 1,
    "brain": 2, "painter": 2, "world": 2, "restore": 2, "library": 2,
    "tasks": 3, "assistant": 3, "convert": 3, "embedding": 3,
    "data": 4, "eval": 5, "train": 6, "serve": 7, "testing": 7, "cli": 8, "__main__": 8,
}


def modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports() -> dict[str, set[str]]:
    """Every llmga module each module imports (at the top or inside functions)."""
    known = modules()
    graph = defaultdict(set)
    for name, path in known.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]) if node.level \
                    else node.module or ""
                targets = [f"{base.rstrip('.')}.{alias.name}" for alias in node.names] + [base.rstrip(".")]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("llmga"):
                    graph[name].add(target)
    return graph


def floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS[parts[1] if len(parts) > 1 else "llmga"]


def test_every_module_has_a_floor():
    assert not [m for m in modules() if (m.split(".") + ["llmga"])[1] not in FLOORS]


def test_imports_only_go_down_a_floor_or_stay_on_it():
    upward = [(a, b) for a, targets in imports().items() for b in targets if floor(b) > floor(a)]
    assert upward == []


def test_there_are_no_import_circles():
    graph = imports()
    done, stack, circles = set(), [], []

    def visit(node):
        if node in stack:
            circles.append(stack[stack.index(node):] + [node])
            return
        if node in done:
            return
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            visit(target)
        stack.pop()
        done.add(node)

    for module in sorted(modules()):
        visit(module)
    assert circles == []


def test_core_modules_do_not_name_the_world():
    core = ["profiles.py", "checkpoints.py", "brain/__init__.py", "brain/transformers_brain.py", "assistant.py"]
    for name in core:
        text = (SRC / name).read_text()
        assert "llmga.world" not in text and "from ..world" not in text and "from .world" not in text, name
        assert "world-" not in text and '"world"' not in text, name


def test_one_name_one_meaning():
    """No two modules share a base name (a ``cli/`` module holds the commands of the package it is named after)."""
    names = defaultdict(list)
    for path in SRC.rglob("*.py"):
        if path.name not in ("__init__.py", "__main__.py"):
            names[path.stem].append(path.relative_to(SRC))
    assert {stem: paths for stem, paths in names.items() if len(paths) > 1} == {}
    assert not list(SRC.rglob("cli.py"))
