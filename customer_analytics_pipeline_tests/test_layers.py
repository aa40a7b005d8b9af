"""The package's layers import one way: dev/operations -> defs -> warehouse.

- ``warehouse/`` (the database layer) imports no Dagster and nothing of ``defs``, ``dev``
  or the root modules;
- ``defs/`` and the root modules (the code location) import nothing of ``dev``;
  ``settings.py`` imports only ``warehouse.connection`` of the package;
- only ``dev/`` imports the demo generator (``dev.demo``) or the ``dev`` extra's
  libraries (numpy, pandas, ...), which production installs do not have;
- ``operations/`` (the operators' commands) imports no Dagster module and, of the
  package, only ``operations``, ``warehouse`` and ``settings``: it connects through the
  warehouse layer and batches through ``warehouse.ticks``, never through ``defs``;
- ``dev/cli.py`` and ``operations/commands.py`` (``migrate``, ``refresh``, ``check``)
  load neither the demo generator nor the ``dev`` extra at import.

Checked statically with ``ast`` over every ``.py`` file of the package (nothing is
imported), then by importing in fresh interpreters. Also: a malformed setting fails
loading the code location naming its variable, and ruff passes on the repository.
"""

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "customer_analytics_pipeline"
REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPOSITORY / PACKAGE

DAGSTER_DISTRIBUTIONS = ("dagster",)  # and every dagster_* (dagster_postgres, dagster_webserver, ...)
# Libraries only the `dev` extra installs (pyproject.toml), absent from production
# installs (its pyyaml is not here: Dagster itself depends on it).
DEV_EXTRA_MODULES = ("numpy", "pandas", "pytest", "playwright")
DEMO = f"{PACKAGE}.dev.demo"
# `python -m customer_analytics_pipeline` is the command line: the one root module that
# may, and must, import dev.
COMMAND_LINE_ENTRY = f"{PACKAGE}.__main__"
SETTINGS = f"{PACKAGE}.settings"
SETTINGS_MAY_IMPORT = (f"{PACKAGE}.warehouse.connection",)
CLI = f"{PACKAGE}.dev.cli"
OPERATIONS = f"{PACKAGE}.operations"
OPERATIONS_MAY_IMPORT = (OPERATIONS, f"{PACKAGE}.warehouse", SETTINGS)
OPERATOR_COMMANDS = f"{OPERATIONS}.commands"


@dataclass(frozen=True)
class Import:
    module: str  # absolute dotted name
    line: int
    at_import_time: bool  # not inside a function body: runs when the module is imported


def module_name(path: Path, package_dir: Path) -> str:
    parts = path.relative_to(package_dir).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def package_modules(package_dir: Path) -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    modules = {
        module_name(path, package_dir): path
        for path in sorted(package_dir.rglob("*.py"))
        if "__pycache__" not in path.parts
    }
    assert len(modules) > 20, f"found only {sorted(modules)} under {package_dir}"
    return modules


def _resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name of ``from <level dots><module> import ...`` inside ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imports_of(path: Path, name: str) -> list[Import]:
    """Every import of a module: ``import``/``from`` statements (a ``from X import Y``
    counts as importing both X and X.Y, which may be a submodule), and
    ``importlib.import_module``/``__import__`` calls with a constant name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, at_import_time: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno, at_import_time) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, is_package, node.level, node.module)
            found.append(Import(base, node.lineno, at_import_time))
            found.extend(
                Import(f"{base}.{alias.name}", node.lineno, at_import_time) for alias in node.names if alias.name != "*"
            )
        elif isinstance(node, ast.Call):
            function = node.func
            function_name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
            if (
                function_name in ("import_module", "__import__")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and not node.args[0].value.startswith(".")
            ):
                found.append(Import(node.args[0].value, node.lineno, at_import_time))
        inside_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, at_import_time and not inside_function)

    visit(tree, True)
    return found


def is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def top_level(module: str) -> str:
    return module.split(".")[0]


def is_dagster(module: str) -> bool:
    return top_level(module) in DAGSTER_DISTRIBUTIONS or top_level(module).startswith("dagster_")


def imported_at_import_time(start: str, modules: dict[str, Path]) -> dict[str, str]:
    """The package modules loaded by importing ``start`` (importing a.b.c runs a, a.b and
    a.b.c), following only imports that run at import time; each with why it is loaded."""
    loaded: dict[str, str] = {}
    pending = [(start, "imported")]
    while pending:
        name, why = pending.pop()
        parts = name.split(".")
        for n in range(1, len(parts) + 1):
            module = ".".join(parts[:n])
            if module in modules and module not in loaded:
                loaded[module] = why
                pending.extend(
                    (i.module, f"{module}:{i.line}")
                    for i in imports_of(modules[module], module)
                    if i.at_import_time and is_within(i.module, PACKAGE)
                )
    return loaded


def layer_violations(package_dir: Path) -> list[str]:
    """Every import that breaks the layering, as ``file:line: rule``."""
    modules = package_modules(package_dir)
    violations = []
    for name, path in modules.items():
        where = path.relative_to(package_dir.parent)
        in_warehouse = is_within(name, f"{PACKAGE}.warehouse")
        in_dev = is_within(name, f"{PACKAGE}.dev")
        in_operations = is_within(name, OPERATIONS)
        for imported in imports_of(path, name):
            module, at = imported.module, f"{where}:{imported.line}: imports {imported.module}"
            if in_warehouse and is_dagster(module):
                violations.append(f"{at}: the warehouse layer must not import Dagster")
            if in_warehouse and is_within(module, PACKAGE) and module != PACKAGE and not is_within(
                module, f"{PACKAGE}.warehouse"
            ):
                violations.append(f"{at}: the warehouse layer imports only warehouse modules of the package")
            if in_operations and is_dagster(module):
                violations.append(f"{at}: operations/ must not import Dagster")
            if in_operations and is_within(module, PACKAGE) and module != PACKAGE and not any(
                is_within(module, allowed) for allowed in OPERATIONS_MAY_IMPORT
            ):
                violations.append(f"{at}: operations/ imports only operations, warehouse and settings of the package")
            if not in_dev and name != COMMAND_LINE_ENTRY and is_within(module, f"{PACKAGE}.dev"):
                violations.append(f"{at}: only dev/ (and __main__.py) may import the dev layer")
            if not in_dev and is_within(module, DEMO):
                violations.append(f"{at}: only dev/ may import the demo generator")
            if not in_dev and top_level(module) in DEV_EXTRA_MODULES:
                violations.append(f"{at}: only dev/ may import the `dev` extra's {top_level(module)}")
            if name == SETTINGS and is_within(module, PACKAGE) and module != PACKAGE and not any(
                is_within(module, allowed) for allowed in SETTINGS_MAY_IMPORT
            ):
                violations.append(f"{at}: settings.py imports only warehouse.connection of the package")
    for command_line in (CLI, OPERATOR_COMMANDS):
        if command_line not in modules:
            violations.append(f"{command_line} is missing")
            continue
        for module, why in imported_at_import_time(command_line, modules).items():
            if is_within(module, DEMO):
                violations.append(
                    f"importing {command_line} loads {module} ({why}): import the demo inside functions")
            for imported in imports_of(modules[module], module):
                if imported.at_import_time and top_level(imported.module) in DEV_EXTRA_MODULES:
                    violations.append(
                        f"importing {command_line} loads {module} ({why}), which imports {imported.module} "
                        f"at line {imported.line}"
                    )
    return violations


def test_imports_go_one_way():
    violations = layer_violations(PACKAGE_DIR)
    assert not violations, "layering violations:\n" + "\n".join(violations)


# Each rule, broken once in a copy of the package: the checker must see it.
INJECTED_VIOLATIONS = {
    "warehouse imports dagster": ("warehouse/views.py", "import dagster\n", "must not import Dagster"),
    "warehouse imports dagster_postgres": (
        "warehouse/checks/outcomes.py", "from dagster_postgres import PostgresRunStorage\n", "must not import Dagster"
    ),
    "warehouse imports defs": (
        "warehouse/refresh.py", "from customer_analytics_pipeline.defs import resources\n", "only warehouse modules"
    ),
    "warehouse imports dev, relatively": ("warehouse/refresh.py", "from ..dev import cli\n", "only warehouse modules"),
    "defs imports dev": (
        "defs/jobs.py", "from customer_analytics_pipeline.dev.cli import say\n", "only dev/ (and __main__.py)"
    ),
    "root module imports dev": (
        "definitions.py", "import customer_analytics_pipeline.dev.dagster_instance\n", "only dev/ (and __main__.py)"
    ),
    "defs imports the demo through its package": (
        "defs/schedules.py", "from customer_analytics_pipeline.dev import demo\n", "the demo generator"
    ),
    "defs imports numpy inside a function": (
        "defs/metadata.py", "def f():\n    import numpy\n", "`dev` extra's numpy"
    ),
    "settings imports defs": (
        "settings.py", "import customer_analytics_pipeline.defs.partitions\n", "only warehouse.connection"
    ),
    "cli imports the demo at module level": (
        "dev/cli.py", "from customer_analytics_pipeline.dev.demo import synthetic_data\n", "dev.cli loads"
    ),
    "cli imports numpy at module level": ("dev/cli.py", "import numpy as np\n", "which imports numpy"),
    "operations imports dagster": ("operations/commands.py", "import dagster\n", "operations/ must not import Dagster"),
    "operations imports dagster inside a function": (
        "operations/serve.py", "def f():\n    from dagster import DagsterInstance\n",
        "operations/ must not import Dagster",
    ),
    "operations imports defs to connect": (
        "operations/commands.py", "from customer_analytics_pipeline.defs.resources import PostgresResource\n",
        "operations/ imports only",
    ),
    "operations imports defs to slice batches": (
        "operations/commands.py", "from customer_analytics_pipeline.defs.schedules import batches\n",
        "operations/ imports only",
    ),
    "operations imports dev": (
        "operations/commands.py", "def f():\n    from customer_analytics_pipeline.dev import demo_commands\n",
        "only dev/ (and __main__.py)",
    ),
    "operator commands import numpy at module level": (
        "operations/commands.py", "import numpy as np\n", "which imports numpy"
    ),
    "cli imports the demo through another module": (
        "dev/cli.py", "from customer_analytics_pipeline.dev import demo_commands\n", "dev.cli loads"
    ),
    "cli imports the demo with importlib": (
        "dev/cli.py", "import importlib\nimportlib.import_module('customer_analytics_pipeline.dev.demo')\n",
        "dev.cli loads",
    ),
}


@pytest.mark.parametrize("case", INJECTED_VIOLATIONS, ids=list(INJECTED_VIOLATIONS))
def test_each_rule_catches_a_violation(case, tmp_path):
    file, code, expected = INJECTED_VIOLATIONS[case]
    copy = tmp_path / PACKAGE
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / file).open("a", encoding="utf-8") as appended:
        appended.write("\n" + code)
    violations = layer_violations(copy)
    assert any(expected in violation for violation in violations), violations


def test_the_cli_imports_demo_modules_only_inside_functions():
    """The lazy imports the rule above allows are really there (the rule is not vacuous)."""
    lazy = [i for i in imports_of(PACKAGE_DIR / "dev" / "cli.py", CLI)
            if is_within(i.module, DEMO) or is_within(i.module, f"{PACKAGE}.dev.demo_commands")]
    assert lazy and not any(i.at_import_time for i in lazy)


def run_python(code: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPOSITORY, env={**os.environ, **environment}, capture_output=True, text=True, timeout=300,
    )


LOADED_DEMO_OR_DEV_EXTRA = f"""
    import sys
    loaded = sorted(m for m in sys.modules
                    if m == "{DEMO}" or m.startswith("{DEMO}.") or m in {DEV_EXTRA_MODULES!r})
    print("\\n".join(loaded))
    sys.exit(1 if loaded else 0)
"""


def test_importing_the_cli_loads_no_demo_generator_and_no_dev_extra():
    result = run_python("import customer_analytics_pipeline.dev.cli\n" + textwrap.dedent(LOADED_DEMO_OR_DEV_EXTRA))
    assert result.returncode == 0, f"loaded:\n{result.stdout}\n{result.stderr}"
    # The probe sees them when they are loaded (demo_commands imports the generator).
    control = run_python(
        "import customer_analytics_pipeline.dev.demo_commands\n" + textwrap.dedent(LOADED_DEMO_OR_DEV_EXTRA)
    )
    assert control.returncode == 1 and f"{DEMO}.synthetic_data" in control.stdout, control


def test_importing_the_operator_commands_loads_no_dagster_definitions_and_no_demo():
    """The operators' commands in a fresh interpreter: nothing of ``defs`` (connections
    and batches come from the warehouse layer), of ``dev``, of the demo or the dev extra."""
    probe = f"""
        import sys
        import {OPERATOR_COMMANDS}
        loaded = sorted(m for m in sys.modules if m.startswith(("{PACKAGE}.defs", "{PACKAGE}.dev"))
                        or m in {DEV_EXTRA_MODULES!r})
        print("\\n".join(loaded))
        sys.exit(1 if loaded else 0)
    """
    result = run_python(probe)
    assert result.returncode == 0, f"loaded:\n{result.stdout}\n{result.stderr}"
    # The probe sees them when they are loaded.
    control = run_python(probe.replace(OPERATOR_COMMANDS, f"{PACKAGE}.defs.resources"))
    assert control.returncode == 1 and f"{PACKAGE}.defs.resources" in control.stdout, control


def test_migrate_loads_no_demo_generator_and_no_dev_extra(scratch_database_url):
    """``customer-analytics migrate --source-indexes``, run for real, applies the
    migrations without ever loading the demo generator or the dev extra."""
    import psycopg

    from customer_analytics_pipeline.warehouse.migrations import create_source_tables, pending_migrations

    with psycopg.connect(scratch_database_url, autocommit=True) as conn:
        create_source_tables(conn)
    result = run_python(
        "from customer_analytics_pipeline.dev.cli import main\n"
        "assert main(['migrate', '--source-indexes']) == 0\n" + textwrap.dedent(LOADED_DEMO_OR_DEV_EXTRA),
        DATABASE_URL=scratch_database_url,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    with psycopg.connect(scratch_database_url, autocommit=True) as conn:
        assert pending_migrations(conn) == []


def test_a_malformed_setting_fails_loading_the_code_location_naming_it():
    code = "import customer_analytics_pipeline.definitions"
    result = run_python(code, CUSTOMER_ANALYTICS_CUSTOMERS_PER_RUN="abc")
    assert result.returncode != 0
    assert "CUSTOMER_ANALYTICS_CUSTOMERS_PER_RUN" in result.stderr and "'abc'" in result.stderr, result.stderr
    # The same import with a valid value loads: the variable was the cause.
    valid = run_python(code, CUSTOMER_ANALYTICS_CUSTOMERS_PER_RUN="7")
    assert valid.returncode == 0, valid.stderr


def test_ruff_passes_on_the_repository():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(REPOSITORY)],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"ruff check failed:\n{result.stdout}\n{result.stderr}"
