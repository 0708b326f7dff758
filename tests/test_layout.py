"""The package's parts depend on each other one way (README, "How it
works"): these tests read every module's imports and fail on a circle or
on an import that points upstream."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import sessioncheck

ROOT = Path(sessioncheck.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports, anywhere in it."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def _package_files():
    import sessioncheck.scenarios
    import sessioncheck.stores

    roots = {"sessioncheck": ROOT, "sessioncheck.stores": Path(sessioncheck.stores.__file__).parent,
             "sessioncheck.scenarios": Path(sessioncheck.scenarios.__file__).parent}
    for prefix, folder in roots.items():
        for path in folder.rglob("*.py"):
            yield prefix, folder, path


def _modules() -> dict[str, set[str]]:
    """module name -> the sessioncheck modules it imports (anywhere in it)."""
    import sessioncheck.scenarios
    import sessioncheck.stores

    roots = {"sessioncheck": ROOT, "sessioncheck.stores": Path(sessioncheck.stores.__file__).parent,
             "sessioncheck.scenarios": Path(sessioncheck.scenarios.__file__).parent}
    out: dict[str, set[str]] = {}
    for prefix, folder in roots.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([prefix, *parts])
            if prefix == "sessioncheck" and parts and parts[0] in ("stores", "scenarios"):
                continue
            deps: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    if node.module.startswith("sessioncheck"):
                        deps.add(node.module)
                elif isinstance(node, ast.Import):
                    deps |= {a.name for a in node.names if a.name.startswith("sessioncheck")}
            out[name] = deps
    return out


def _part(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def test_no_relative_or_old_import_names():
    old = ("harness", "store_impl", "scenarios")
    bad = []
    for _, _, path in _package_files():
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.ImportFrom) and n.level > 0 for n in ast.walk(tree)):
            bad.append(f"{path}: a relative import")
        bad += [f"{path}: imports {m}" for m in _imports(path) if m.split(".")[0] in old]
    assert not bad, bad


def test_protocol_imports_no_store_and_no_engine():
    deps = _modules()["sessioncheck.protocol"]
    assert not deps, f"the protocol must import nothing of the package: {sorted(deps)}"


def test_reporting_and_checking_do_not_reach_into_the_engine_internals():
    mods = _modules()
    for name, deps in mods.items():
        if name.startswith("sessioncheck.checking"):
            assert not [d for d in deps if d.startswith(("sessioncheck.controlled", "sessioncheck.reporting"))], name
        if name.startswith("sessioncheck.controlled"):
            assert not [d for d in deps if d.startswith("sessioncheck.reporting")], name
        if name.startswith("sessioncheck.reporting"):
            bad = [d for d in deps if d.startswith("sessioncheck.controlled")
                   and d not in ("sessioncheck.controlled.program", "sessioncheck.controlled.trace")]
            assert not bad, f"{name} takes {bad} from the engine; it should read the trace and program only"


def test_scenarios_do_not_import_their_runner():
    for name, deps in _modules().items():
        if name.startswith("sessioncheck.scenarios."):
            assert "sessioncheck.scenario" not in deps, name


def test_no_import_circles_between_parts():
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, deps in mods.items():
        graph.setdefault(name, set()).update(d for d in deps if d in mods and d != name)
    # a circle of top-level imports is an ImportError waiting to happen;
    # imports inside functions count too, since they state a dependency
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        seen[n] = 1
        stack.append(n)
        for d in graph.get(n, ()):
            # a package's __init__ and its own modules are one unit
            if d.startswith(n + ".") or n.startswith(d + "."):
                continue
            if seen.get(d) == 1:
                circle = stack[stack.index(d):] + [d]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if not seen.get(d):
                visit(d)
        stack.pop()
        seen[n] = 2

    for n in sorted(graph):
        if not seen.get(n):
            visit(n)


def test_the_import_name_survives_a_project_with_its_own_harness_package(tmp_path):
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "__init__.py").write_text("MINE = True\n")
    code = ("import harness, sessioncheck; from sessioncheck import Capabilities, SessionState, check_store; "
            "assert harness.MINE; print(sessioncheck.__version__)")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == sessioncheck.__version__
