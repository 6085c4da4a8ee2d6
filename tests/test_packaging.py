"""d1check as users install it: the sdist and the wheel (built offline), an interpreter without
`fcntl`, nothing process-wide on import, and the `engine_container` marker in a user's project."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

import d1check
from d1check.filelock import exclusive

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = Path(__file__).parent / "examples"
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    ".d1check",
    ".wrangler",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".benchmarks",
    ".venv",
    "node_modules",
)
NAME = f"d1check-{d1check.__version__}"


@dataclass(frozen=True)
class Dists:
    """The sdist and the wheel `python -m build` made (the wheel from the sdist)."""

    sdist: Path
    wheel: Path

    def sdist_names(self) -> list[str]:
        with tarfile.open(self.sdist) as tar:
            return tar.getnames()

    def wheel_names(self) -> list[str]:
        with zipfile.ZipFile(self.wheel) as whl:
            return whl.namelist()

    def wheel_text(self, name: str) -> str:
        with zipfile.ZipFile(self.wheel) as whl:
            return whl.read(name).decode()

    def sdist_text(self, name: str) -> str:
        with tarfile.open(self.sdist) as tar:
            member = tar.extractfile(name)
            assert member is not None, name
            return member.read().decode()

    def metadata(self) -> Message:
        return Parser().parsestr(self.wheel_text(f"{NAME}.dist-info/METADATA"))


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """Builds a copy of the source tree offline (no build isolation: nothing is downloaded)."""
    source = tmp_path_factory.mktemp("source") / "d1check"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    out = source.parent / "out"
    build = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)]
    done = subprocess.run(build, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Dists(sdist, wheel)


# --- the distributions ---------------------------------------------------------------------


def test_wheel_ships_the_license_types_templates_and_engine_files(dists: Dists) -> None:
    names = set(dists.wheel_names())
    expected = {
        f"{NAME}.dist-info/licenses/LICENSE",
        "d1check/py.typed",
        "d1check/templates/migration.sql",
        "d1check/templates/rollback.sql",
        "d1check/containers/Dockerfile",
        "d1check/containers/server.mjs",
        "d1check/filelock.py",
    }
    assert expected <= names, sorted(expected - names)
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    license_text = dists.wheel_text(f"{NAME}.dist-info/licenses/LICENSE")
    assert license_text == (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in license_text and "the d1check authors" in license_text


def test_wheel_metadata(dists: Dists) -> None:
    metadata = dists.metadata()
    assert metadata["Name"] == "d1check"
    assert metadata["Version"] == d1check.__version__
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Requires-Python"] == ">=3.11"
    classifiers = metadata.get_all("Classifier") or []
    for wanted in (
        "Framework :: Pytest",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Database",
        "Topic :: Software Development :: Testing",
    ):
        assert wanted in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]
    assert {"cloudflare", "d1", "pytest"} <= set(metadata["Keywords"].split(","))


def test_wheel_entry_points(dists: Dists) -> None:
    entry_points = dists.wheel_text(f"{NAME}.dist-info/entry_points.txt")
    assert "[pytest11]\nd1check = d1check.plugin\n" in entry_points
    assert "[console_scripts]\nd1check = d1check.cli:main\n" in entry_points


def test_sdist_ships_the_license_and_no_tests(dists: Dists) -> None:
    names = [name.removeprefix(f"{NAME}/") for name in dists.sdist_names()]
    assert {"LICENSE", "README.md", "pyproject.toml", "d1check/py.typed"} <= set(names)
    assert "d1check/templates/migration.sql" in names
    shipped_tests = [n for n in names if n.startswith(("tests", "benchmarks")) or "conftest" in n]
    assert shipped_tests == []
    pkg_info = dists.sdist_text(f"{NAME}/PKG-INFO")
    assert "License-Expression: MIT" in pkg_info
    assert f"Version: {d1check.__version__}" in pkg_info


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "d1check.__version__"}


# --- portability ---------------------------------------------------------------------------

REFUSE_FCNTL = """\
import sys

class RefuseFcntl:
    def find_spec(self, name, path=None, target=None):
        if name == "fcntl":
            raise ModuleNotFoundError("No module named 'fcntl'", name="fcntl")
        return None

sys.modules.pop("fcntl", None)
sys.meta_path.insert(0, RefuseFcntl())
"""


def run_python(code: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Runs `code` in a fresh interpreter that loads this d1check; its stdout."""
    environment = {**(env if env is not None else os.environ), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_imports_and_locks_without_fcntl(tmp_path: Path) -> None:
    code = REFUSE_FCNTL + (
        "import json, pathlib\n"
        "import d1check.plugin, d1check.cache, d1check.containers, d1check.cli\n"
        "from d1check.cache import ResultCache\n"
        "cache = ResultCache(pathlib.Path('cache'))\n"
        "with cache.lock('a', wait=False) as first, cache.lock('a', wait=False) as second:\n"
        "    taken = [first, second]\n"
        "with cache.lock('a') as waited:\n"
        "    taken.append(waited)\n"
        "print(json.dumps({'taken': taken, 'fcntl': 'fcntl' in sys.modules}))\n"
    )
    result = json.loads(run_python(code, tmp_path))
    assert result == {"taken": [True, True, True], "fcntl": False}
    assert not list((tmp_path / "cache").glob("*.lock"))


def test_a_project_checks_without_fcntl(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "good", project)
    code = REFUSE_FCNTL + (
        "import pytest\n"
        "code = pytest.main(['-q', '-p', 'no:xdist', '.'])\n"
        "assert 'fcntl' not in sys.modules\n"
        "sys.exit(code)\n"
    )
    out = run_python(code, project)
    assert re.search(r"\d+ passed", out) and "failed" not in out, out
    assert list((project / ".pytest_cache/d/d1check/results").glob("*.all.json"))


def test_the_lock_excludes_other_holders(tmp_path: Path) -> None:
    lock = tmp_path / "segment.lock"
    with exclusive(lock, wait=False) as first, exclusive(lock, wait=False) as second:
        assert (first, second) == (True, False)
    with exclusive(lock, wait=False) as again:
        assert again


def test_importing_sets_nothing_process_wide(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESTCONTAINERS_")}
    code = (
        "import os, json\n"
        "before = dict(os.environ)\n"
        "import d1check.plugin, d1check.containers\n"
        "print(json.dumps(sorted(set(os.environ.items()) ^ set(before.items()))))\n"
    )
    assert json.loads(run_python(code, tmp_path, env)) == []


# --- markers -------------------------------------------------------------------------------


def selected(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = pytester.runpytest("--collect-only", "-q", "--strict-markers", *args)
    assert result.ret == 0, result.stdout.str()
    return [line for line in result.outlines if "::" in line]


def test_engine_container_marks_the_tests_that_use_d1_engine(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES / "engine_user", pytester.path, dirs_exist_ok=True)
    assert selected(pytester, "-m", "engine_container") == [
        "tests/test_notes.py::test_notes_on_the_real_engine"
    ]
    others = selected(pytester, "-m", "not engine_container")
    assert "tests/test_notes.py::test_note_text_is_trimmed" in others
    assert "tests/test_notes.py::test_notes_on_the_real_engine" not in others
    assert any(line.startswith("migrations/0001_create_notes.sql::") for line in others)


def test_engine_container_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.engine_container: uses the real D1 engine*"])
