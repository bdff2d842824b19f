"""The package's shape, checked rather than hoped for: the import layers, a configuration tree
that loads no PyTorch, small modules and functions, registries whose names the schemas share."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "edgetune"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# A function or module may be longer where a comment containing this says why.
EXEMPT = "length:"


def test_the_import_contracts_hold():
    """pyproject.toml's import-linter contracts: layers from the CLI down to config and errors,
    and a configuration tree that imports neither PyTorch nor Optuna."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], check=False, cwd=ROOT,
                          capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout


def test_no_module_imports_one_that_imports_it_back():
    """Siblings joined by `:` in a layer may import each other; the contract then no longer says
    which way, so this says there is only one: no import cycle through any number of modules
    (function-local imports included)."""
    import grimp
    import networkx as nx

    graph = grimp.build_graph("edgetune")
    edges = nx.DiGraph((m, i) for m in graph.modules for i in graph.find_modules_directly_imported_by(m))
    cycles = [sorted(c) for c in nx.strongly_connected_components(edges) if len(c) > 1]
    assert not cycles, cycles


def test_importing_the_configuration_loads_neither_torch_nor_optuna():
    code = ("import sys, edgetune.config, edgetune.catalog\n"
            "from edgetune.config import load_experiment, parse_schedule, parse_sweep\n"
            "parse_sweep({'method': 'bayes', 'parameters': {'a': {'min': 0.0, 'max': 0.5}}})\n"
            "parse_schedule({'pruners': {'p': {'class': 'filters-l1', 'desired_sparsity': 0.5, "
            "'weights': ['conv1.weight']}}})\n"
            "print(sorted(m for m in ('torch', 'optuna', 'torch_pruning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def _exempt(lines: list[str], start: int, end: int) -> bool:
    return any(EXEMPT in line for line in lines[max(start - 3, 0):end])


def test_modules_and_functions_stay_small():
    too_long = []
    for path in sorted(SRC.rglob("*.py")):
        lines = path.read_text().splitlines()
        if len(lines) > MAX_MODULE_LINES and not any(EXEMPT in line for line in lines[:15]):
            too_long.append(f"{path.relative_to(ROOT)}: {len(lines)} lines")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > MAX_FUNCTION_LINES and not _exempt(lines, node.lineno, node.end_lineno):  # type: ignore[arg-type]
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines")
    assert not too_long, "\n".join(too_long)


def test_every_extra_a_plugin_names_is_defined():
    """An error that says `pip install 'edgetune[X]'` must name an extra pyproject.toml defines
    (it once said `edgetune[core]`, which none defines)."""
    from edgetune import catalog

    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    tables = [catalog.COMPRESSION_METHODS, catalog.SEARCH_STRATEGIES, catalog.RUNTIMES, catalog.DATASETS,
              catalog.REPORT_RENDERERS, catalog.TRACKERS, catalog.EXECUTORS]
    named = {p.extra for table in tables for p in table.values() if p.extra is not None}
    assert named <= extras, named - extras
    named_in_code = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "MissingExtraError" and len(
                    node.args) == 2 and isinstance(node.args[1], ast.Constant):
                named_in_code.add(node.args[1].value)
    assert named_in_code - {None} <= extras, named_in_code - extras


def test_a_missing_core_package_says_reinstall_not_a_phantom_extra():
    code = ("import sys; sys.modules['onnxruntime'] = None\n"
            "from edgetune.catalog import RUNTIMES, load\n"
            "try:\n    load(RUNTIMES, 'onnxruntime', 'runtime', 'benchmark.runtime')\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.startswith("MissingExtraError") and "onnxruntime" in out
    assert "[core]" not in out and "pip install --force-reinstall edgetune" in out


@pytest.mark.parametrize("table", ["COMPRESSION_METHODS", "SEARCH_STRATEGIES", "RUNTIMES", "DATASETS",
                                   "REPORT_RENDERERS", "TRACKERS", "EXECUTORS"])
def test_every_registered_plugin_can_be_found(table):
    """Each row names a module and attribute that exist (the optional ones where installed)."""
    import importlib

    from edgetune import catalog

    for name, plugin in getattr(catalog, table).items():
        try:
            module = importlib.import_module(plugin.module)
        except ImportError as exc:  # an optional backend not installed here: it must be one the row names
            assert exc.name and exc.name.split(".")[0] in plugin.packages, (name, exc)
            continue
        assert hasattr(module, plugin.attribute), (table, name)
