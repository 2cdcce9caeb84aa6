"""The lock files (scripts/lock.sh) against pyproject.toml: every requirement pinned to the version
pyproject.toml names, every package with its hashes, the runtime lock at the dev lock's versions, and
the check bootstrap runs refusing a lock that pyproject.toml has moved away from."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from locks import DEV_LOCK, REPO, RUN_LOCK, Pins, read_lock


def pyproject_requirements() -> dict[str, list[Requirement]]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return {
        "runtime": [Requirement(r) for r in data["project"]["dependencies"]],
        "build": [Requirement(r) for r in data["build-system"]["requires"]],
        **{
            f"extra {k}": [Requirement(r) for r in v]
            for k, v in data["project"]["optional-dependencies"].items()
        },
    }


def assert_pinned(pins: Pins, requirements: list[Requirement], lock: str) -> None:
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in {lock}: run scripts/lock.sh"
        version, hashes = pins[name]
        assert version in requirement.specifier, f"{lock} has {name}=={version}, pyproject.toml {requirement}"
        assert hashes, f"{name} has no hash in {lock}"


def test_the_dev_lock_pins_every_requirement_of_pyproject_with_hashes() -> None:
    pins = read_lock(DEV_LOCK)
    for requirements in pyproject_requirements().values():
        assert_pinned(pins, requirements, DEV_LOCK.name)
    assert len(pins) > sum(len(r) for r in pyproject_requirements().values())  # transitive ones too


def test_the_runtime_lock_pins_runtime_and_build_requirements_at_the_dev_locks_versions() -> None:
    runtime, dev = read_lock(RUN_LOCK), read_lock(DEV_LOCK)
    groups = pyproject_requirements()
    assert_pinned(runtime, groups["runtime"] + groups["build"], RUN_LOCK.name)
    for name, (version, hashes) in runtime.items():
        assert dev[name] == (version, hashes), f"{name}: the two locks disagree"
    dev_only = {canonicalize_name(r.name) for r in groups["extra dev"]}
    assert not dev_only & set(runtime), "a dev tool in the runtime lock (the image)"


@pytest.mark.parametrize("lock", [DEV_LOCK, RUN_LOCK], ids=lambda p: p.name)
def test_every_locked_package_has_a_pin_and_a_hash(lock: Path) -> None:
    pins = read_lock(lock)
    assert pins
    assert [name for name, (_, hashes) in pins.items() if not hashes] == []


def test_the_lock_reader_refuses_an_unpinned_or_unhashed_entry(tmp_path: Path) -> None:
    loose = tmp_path / "loose.lock"
    loose.write_text("alembic>=1.20\n")
    with pytest.raises(AssertionError):
        read_lock(loose)
    bare = tmp_path / "bare.lock"
    bare.write_text("alembic==1.20.1\n")
    with pytest.raises(AssertionError, match="no hash"):
        assert_pinned(read_lock(bare), [Requirement("alembic==1.20.1")], "bare.lock")


def _copy_for_check(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "lock.sh", tmp_path / "scripts" / "lock.sh")
    for name in ("pyproject.toml", DEV_LOCK.name, RUN_LOCK.name):
        shutil.copy2(REPO / name, tmp_path / name)
    return tmp_path


def test_the_lock_check_passes_on_the_committed_files() -> None:
    done = subprocess.run(
        [REPO / "scripts" / "lock.sh", "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_lock_check_refuses_a_changed_dependency_with_one_line(tmp_path: Path) -> None:
    copy = _copy_for_check(tmp_path)
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('"pytest==', '"pytest-newdep==1.0",\n    "pytest==', 1)
    )

    done = subprocess.run(
        [copy / "scripts" / "lock.sh", "--check"], capture_output=True, text=True, check=False
    )

    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "run scripts/lock.sh" in done.stderr
    assert done.stderr.startswith("requirements-dev.lock does not match pyproject.toml's dependencies")


def test_the_lock_check_ignores_edits_outside_the_dependencies(tmp_path: Path) -> None:
    copy = _copy_for_check(tmp_path)
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("line-length = 110", "line-length = 100"))
    done = subprocess.run(
        [copy / "scripts" / "lock.sh", "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
