"""The container steps of CI, checked without running them (``.ci/run`` runs them: docker/test-image.sh builds and
smoke-tests the image with podman, docker/test-testcontainers.sh runs the store tests through testcontainers).

What is pinned here is what the scripts promise in docker/README.md: the Dockerfile is built as it is, from a local
base only, in the format that keeps HEALTHCHECK; no ``docker`` shim is installed; no host is named in the repository;
podman never gets a bridge network; the testcontainers step cannot fall back to the local server."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
CI = REPO / ".ci" / "run"
SCRIPTS = [DOCKER / "test-image.sh", DOCKER / "test-testcontainers.sh", DOCKER / "testing" / "podman.sh"]


def _code(path: Path) -> str:
    """The script without its comment lines."""
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))


def test_ci_runs_both_container_steps_after_the_heavy_one() -> None:
    lines = [line.strip() for line in CI.read_text().splitlines()]
    heavy = next(i for i, line in enumerate(lines) if "pytest -m heavy" in line)
    image = lines.index("bash docker/test-image.sh")
    tc = lines.index("bash docker/test-testcontainers.sh")
    assert heavy < image < tc


def test_the_dockerfile_is_built_unmodified_from_a_local_base() -> None:
    code = _code(DOCKER / "test-image.sh")
    build = re.search(r"podman build --([^\n]*\\\n)*[^\n]*", code)
    assert build, code
    cmd = build.group(0)
    for flag in ("--format docker", "--pull=never", "--network=host", "-f docker/Dockerfile"):
        assert flag in cmd, (flag, cmd)
    # Nothing rewrites the Dockerfile on the way.
    assert not re.search(r"sed [^\n]*Dockerfile|>\s*\S*Dockerfile", code)


def test_no_docker_shim_and_no_bridge_network() -> None:
    packages = (DOCKER / "testing" / "packages.txt").read_text().split()
    assert "podman" in packages and "debootstrap" in packages
    assert "podman-docker" not in packages
    for path in [*SCRIPTS, CI]:
        assert not re.search(r"apt-get install[^\n]*podman-docker", path.read_text()), path
    podman = (DOCKER / "testing" / "podman.sh").read_text()
    assert 'netns = "host"' in podman
    assert "cni_plugin_dirs" in podman  # an empty plugin folder: the bridge network cannot be set up
    for path in SCRIPTS:
        assert "--network bridge" not in _code(path) and "--network=bridge" not in _code(path), path


def test_no_host_is_named() -> None:
    """The Debian mirror comes from the machine's apt sources; only loopback addresses appear in the scripts."""
    for path in [*SCRIPTS, *sorted((DOCKER / "testing" / "mariadb").iterdir())]:
        # Literal host names only ($VARIABLES are filled in at run time).
        for host in re.findall(r"[a-z][a-z0-9+.-]*://(?:[^@/\s]*@)?([A-Za-z0-9.-]+)", _code(path)):
            assert host in ("127.0.0.1", "localhost", "d"), (path, host)


def test_the_testcontainers_step_requires_the_container() -> None:
    code = _code(DOCKER / "test-testcontainers.sh")
    for setting in ("TESTCONTAINERS_RYUK_DISABLED=true", "WCH_TEST_MYSQL_IMAGE=", "WCH_TEST_CONTAINER_NETWORK=slirp4netns",
                    "unset WCH_TEST_DSN", "podman system service"):
        assert setting in code, setting
    assert "tests/integration/test_store.py" in code and "tests/integration/test_testcontainers.py" in code
    assert "-k mysql" in code  # the fixture under test is the MySQL one


def test_scripts_parse() -> None:
    for path in [*SCRIPTS, CI, DOCKER / "testing" / "mariadb" / "entrypoint.sh"]:
        proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, (path, proc.stderr)
