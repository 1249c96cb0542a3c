"""Installing snnlab the way a chapter's Colab cell does, into an environment like Colab's.

Colab already has torch (a CUDA build we must not replace: reinstalling it downloads
gigabytes and can break the runtime) and ipywidgets 7.7. The first code cell of every
chapter (written by ``tools/sync_colab.py``) runs ``%pip install -q "snnlab @ git+URL"``.
These tests check that

* the cell's pip command names nothing but snnlab and upgrades nothing (fast);
* run against a copy of this checkout, in a fresh virtual environment that already has
  torch and ipywidgets 7.7.x and none of requirements.txt's pins, it installs snnlab
  without touching torch or ipywidgets, every ``snnlab`` module imports, and the
  chapter 1 widget (``ipywidgets.interactive``) builds and redraws when a slider moves
  (``slow``: a pip install, about a minute).

Torch is not downloaded: the new environment sees this one's torch (and the packages
torch needs) through a ``.pth`` file naming a folder of links, the way Colab's system
packages are seen by pip: installed, so left alone.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
COLAB_IPYWIDGETS = "ipywidgets==7.7.*"
# Options that would make pip reinstall or upgrade what Colab already has.
REINSTALLING = ("-U", "--upgrade", "--force-reinstall", "-I", "--ignore-installed",
                "--upgrade-strategy")


def _first_code_source(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def _pip_arguments(cell_source: str) -> list[str]:
    """The arguments after ``%pip install`` in a Colab install cell (one such line)."""
    lines = [line.strip() for line in cell_source.splitlines() if line.strip().startswith("%pip install")]
    assert len(lines) == 1, f"expected one '%pip install' line in the Colab cell, found {len(lines)}"
    return shlex.split(lines[0].removeprefix("%pip install"))


# ------------------------------------------------------------------ the cell itself


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_colab_cell_installs_only_snnlab_and_upgrades_nothing(path):
    arguments = _pip_arguments(_first_code_source(path))
    packages = [a for a in arguments if not a.startswith("-")]
    assert [Requirement(p).name for p in packages] == ["snnlab"], (
        f"the Colab cell of {path.name} installs {packages}: only snnlab, so Colab's torch stays"
    )
    options = [a.split("=")[0] for a in arguments if a.startswith("-")]
    reinstalling = [o for o in options if o in REINSTALLING]
    assert not reinstalling, f"the Colab cell of {path.name} asks pip to {reinstalling}: Colab's torch would be replaced"
    assert "torch" not in _first_code_source(path).replace("Colab's torch", "")


def test_snnlab_accepts_any_recent_torch():
    """pyproject's torch requirement has a lower bound only, so Colab's torch satisfies it."""
    requires = [Requirement(r) for r in metadata.requires("snnlab") or [] if "extra ==" not in r]
    torch = next(r for r in requires if r.name == "torch")
    operators = {spec.operator for spec in torch.specifier}
    assert operators <= {">="}, f"snnlab requires {torch}: an upper bound or a pin would replace Colab's torch"


# ------------------------------------------------------------------ a Colab-like environment


def _distribution_closure(name: str) -> list[metadata.Distribution]:
    """``name``'s distribution and everything it needs here, as installed in this environment."""
    found, todo = {}, [name]
    while todo:
        try:
            dist = metadata.distribution(todo.pop())
        except metadata.PackageNotFoundError:
            continue  # an optional dependency not installed here
        key = dist.metadata["Name"].lower()
        if key in found:
            continue
        found[key] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return list(found.values())


def _link_preinstalled(folder: Path, name: str) -> None:
    """Fill ``folder`` with links to ``name`` and its dependencies as installed here."""
    folder.mkdir()
    for dist in _distribution_closure(name):
        site = Path(dist.locate_file(""))
        tops = {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            target = folder / top
            if (site / top).exists() and not target.exists():
                target.symlink_to(site / top)


def _run(command: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{shlex.join(map(str, command))} failed:\n{(result.stdout + result.stderr)[-4000:]}"
    return result


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A fresh venv with this environment's torch visible and ipywidgets 7.7.x installed."""
    home = tmp_path_factory.mktemp("colab")
    venv = home / "venv"
    _run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    _link_preinstalled(home / "preinstalled", "torch")
    (site / "colab_preinstalled.pth").write_text(str(home / "preinstalled") + "\n", encoding="utf-8")
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", COLAB_IPYWIDGETS])
    return python, home


def _installed_version(python: Path, name: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    return _run([python, "-c", code]).stdout.strip()


def _package_copy(dest: Path) -> Path:
    """What pip builds snnlab from (pyproject.toml, README.md, snnlab/), outside this checkout.

    Building in a copy leaves no build/ or egg-info folder in the working tree.
    """
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "snnlab", dest / "snnlab", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture(scope="module")
def installed(colab):
    """Run the chapters' Colab pip command, with this checkout in place of the git URL."""
    python, home = colab
    torch_before = _installed_version(python, "torch")
    arguments = _pip_arguments(_first_code_source(CHAPTERS[0]))
    source = _package_copy(home / "snnlab-src")
    arguments = [f"snnlab @ {source.as_uri()}" if a.startswith("snnlab") else a for a in arguments]
    report = home / "pip-report.json"
    _run([python, "-m", "pip", "install", "--disable-pip-version-check", "--report", report, *arguments])
    installed = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    return python, home, torch_before, installed


@pytest.mark.slow
def test_colab_install_keeps_torch_and_ipywidgets(installed):
    python, home, torch_before, names = installed
    assert "snnlab" in names
    assert "torch" not in names and not any(n.startswith("nvidia-") for n in names), (
        f"pip installed torch or its CUDA libraries: {sorted(names)}"
    )
    assert _installed_version(python, "torch") == torch_before
    torch_file = _run([python, "-c", "import torch; print(torch.__file__)"]).stdout.strip()
    assert str(home / "preinstalled") in torch_file, f"torch now comes from {torch_file}"
    assert _installed_version(python, "ipywidgets").startswith("7.7."), "Colab's ipywidgets 7.7 was replaced"


# Runs inside the Colab-like venv: import every module of the installed snnlab.
IMPORT_ALL = """
import importlib, pkgutil, snnlab
names = [m.name for m in pkgutil.walk_packages(snnlab.__path__, "snnlab.")
         if not m.name.endswith("__main__")]  # that one runs the CLI
for name in names:
    importlib.import_module(name)
print(snnlab.__file__, len(names))
"""


@pytest.mark.slow
def test_every_snnlab_module_imports(installed):
    python, home, _, _ = installed
    out = _run([python, "-c", IMPORT_ALL], cwd=home, env=_colab_env()).stdout.split()
    assert str(home / "venv") in out[0], f"snnlab was imported from {out[0]}, not the new environment"
    assert int(out[1]) >= 20, f"only {out[1]} snnlab modules found in the installed package"


def _colab_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(SNNLAB_PROFILE="tiny", SNNLAB_PROGRESS="0", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    return env


# Runs inside the Colab-like venv: chapter 1's code cells in an IPython shell (magics work),
# up to the cell that builds the widget; then every slider is moved and the figure must
# be redrawn without an error.
WIDGET_SCRIPT = r"""
import json, sys
import ipywidgets
from IPython.core.interactiveshell import InteractiveShell

def interactives(value):
    if isinstance(value, ipywidgets.interactive):
        yield value
    if isinstance(value, ipywidgets.Box):
        for child in value.children:
            yield from interactives(child)

shell = InteractiveShell.instance()
errors = []
shell.showtraceback = lambda *args, **kwargs: errors.append(repr(sys.exc_info()[1]))
cells = [c for c in json.load(open(sys.argv[1]))["cells"] if c["cell_type"] == "code"]
for cell in cells:
    if "skip-execution" in cell["metadata"].get("tags", []):
        continue
    source = "".join(cell["source"])
    result = shell.run_cell(source)
    if not result.success:
        sys.exit(f"a cell failed: {source[:200]!r}: {errors or result.error_in_exec}")
    found = [w for value in list(shell.user_ns.values()) for w in interactives(value)]
    if found:
        break
else:
    sys.exit("chapter 1 built no ipywidgets.interactive")
moved = 0
for widget in found:
    for control in widget.kwargs_widgets:
        if isinstance(control, (ipywidgets.FloatSlider, ipywidgets.IntSlider)):
            before = widget.result
            control.value = control.max if control.value != control.max else control.min
            if errors or widget.result is before:
                sys.exit(f"moving {control.description} to {control.max} did not redraw: {errors}")
            moved += 1
print(ipywidgets.__version__, len(found), moved)
"""


@pytest.mark.slow
def test_chapter1_widget_works_with_ipywidgets_7(installed):
    python, home, _, _ = installed
    script = home / "widget_check.py"
    script.write_text(WIDGET_SCRIPT, encoding="utf-8")
    chapter1 = next(p for p in CHAPTERS if p.name.startswith("01_"))
    version, widgets, sliders = _run([python, script, chapter1], cwd=home, env=_colab_env(),
                                     timeout=900).stdout.split()[-3:]
    assert version.startswith("7.7.") and int(widgets) >= 1 and int(sliders) >= 1
