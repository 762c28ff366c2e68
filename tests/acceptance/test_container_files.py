"""The container files in docker/: what can be checked without a running Docker engine.

* ``docker compose config`` (or Debian's ``docker-compose`` v1 when the compose plugin is absent) validates
  docker/compose.yaml; in CI a machine with the docker CLI but no compose client FAILS instead of skipping.
* The wheel the Dockerfile installs is built the same way (``pip wheel --no-deps``), installed into a fresh
  venv and run (``wch-bridge --help``, packaged sql/ and templates/).
* ``php -l`` and a stubbed-WordPress run of the must-use plugin; in CI a missing ``php`` FAILS.
* Static checks of the Dockerfile (non-root USER, HEALTHCHECK with ``wch-bridge health``, wheel install) and of
  compose.yaml (no secret values, the services and wiring the README promises).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
MU_PLUGIN = DOCKER / "mu-plugins" / "wch-bridge.php"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(tool: str) -> None:
    """Fail in CI, skip elsewhere."""
    msg = f"{tool} is not installed"
    if IN_CI:
        pytest.fail(f"{msg} (CI must install it: see .ci/run)")
    pytest.skip(msg)


# --------------------------------------------------------------------------------------------- compose


def _works(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _compose_client() -> list[str] | None:
    """``docker compose`` (v2 plugin) when ``docker compose version`` works, else ``docker-compose``."""
    if shutil.which("docker") and _works(["docker", "compose", "version"]):
        return ["docker", "compose"]
    if shutil.which("docker-compose") and _works(["docker-compose", "version"]):
        return ["docker-compose"]
    return None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    client = _compose_client()
    if client is None:
        if IN_CI and shutil.which("docker"):
            pytest.fail(
                "docker is installed but no compose client works (`docker compose version` failed and "
                "there is no docker-compose): install Debian's docker-compose in .ci/run"
            )
        pytest.skip("no compose client (`docker compose version` failed, no docker-compose)")
    return client


def _compose_env(tmp_path: Path) -> dict[str, str]:
    """The variables and secret files compose.yaml needs, all in tmp_path."""
    token = tmp_path / "whatsapp_token"
    token.write_text("test-token-not-real")
    admin = tmp_path / "wp_admin_password"
    admin.write_text("test-admin-password")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    env.update(
        MYSQL_PASSWORD="compose-config-test",
        WHATSAPP_TOKEN_FILE=str(token),
        WP_ADMIN_PASSWORD_FILE=str(admin),
        HOME=str(tmp_path),  # no user docker config/contexts
    )
    return env


def _compose_config(
    compose: list[str], tmp_path: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`config` with an empty --env-file, so a developer's docker/.env plays no part."""
    empty = tmp_path / "empty.env"
    empty.write_text("")
    return subprocess.run(
        [*compose, "--env-file", str(empty), "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )


def test_compose_config_validates(compose: list[str], tmp_path: Path) -> None:
    proc = _compose_config(compose, tmp_path, _compose_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for service in ("mysql", "wordpress", "wpcli", "wch-bridge", "report"):
        assert re.search(rf"^  {re.escape(service)}:\s*$", out, re.M), f"service {service} missing:\n{out}"
    # Interpolated from the environment, secret files resolved to the temp dir.
    assert "mysql+pymysql://wordpress:compose-config-test@mysql/wordpress" in out
    assert str(tmp_path / "whatsapp_token") in out
    # The build context is the repository root.
    assert str(REPO) in out


def test_compose_config_requires_the_database_password(compose: list[str], tmp_path: Path) -> None:
    env = _compose_env(tmp_path)
    del env["MYSQL_PASSWORD"]
    proc = _compose_config(compose, tmp_path, env)
    assert proc.returncode != 0
    assert "MYSQL_PASSWORD" in proc.stdout + proc.stderr


def test_compose_file_keeps_secrets_out_and_wires_the_sidecar() -> None:
    text = COMPOSE.read_text()
    # Every password/token setting is a ${VAR:?} placeholder or a *_FILE path, never a value.
    for key, value in re.findall(
        r"^\s*([A-Z][A-Z0-9_]*(?:PASSWORD|TOKEN)[A-Z0-9_]*):\s*(.+?)\s*$", text, re.M
    ):
        if key == "MYSQL_RANDOM_ROOT_PASSWORD":
            assert value.strip("\"'") == "yes"
        elif key.endswith("_FILE"):
            assert value.startswith("/run/secrets/"), (key, value)
        else:
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", value), (key, value)
    assert "mysql+pymysql://wordpress:${MYSQL_PASSWORD:?" in text
    assert "WCH_BRIDGE_WHATSAPP_TOKEN_FILE: /run/secrets/whatsapp_token" in text
    assert "WCH_BRIDGE_PREFIX: wp_" in text
    assert 'WCH_BRIDGE_METRICS_PORT: "9464"' in text
    assert "WCH_BRIDGE_REPORT_OUT: /var/lib/wch-bridge/report.html" in text
    assert "image: mysql:8.0" in text
    assert "dockerfile: docker/Dockerfile" in text and "context: .." in text
    # The mu-plugin is mounted where WordPress loads must-use plugins, for the site and for WP-CLI.
    assert text.count("./mu-plugins:/var/www/html/wp-content/mu-plugins:ro") == 2
    # The report volume: written by the sidecar, served read-only.
    assert "reports:/var/lib/wch-bridge" in text
    assert re.search(r"^\s*- reports:/\S+:ro\s*$", text, re.M)
    # Secrets come from files, whose paths are configurable.
    secrets_block = text.split("\nsecrets:\n", 1)[1]
    assert secrets_block.count("file: ${") == 2


# --------------------------------------------------------------------------------------------- Dockerfile


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")),
    )
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def _final_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile_instructions()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def test_dockerfile_is_multistage_on_slim_python() -> None:
    froms = [args for word, args in _dockerfile_instructions() if word == "FROM"]
    assert len(froms) >= 2
    assert all(re.match(r"python:\$\{PYTHON_VERSION\}-slim|python:3\.1[12]-slim", f) for f in froms), froms


def test_dockerfile_builds_and_installs_the_wheel() -> None:
    runs = [args for word, args in _dockerfile_instructions() if word == "RUN"]
    assert any("pip wheel --no-deps" in r for r in runs), runs
    final_runs = [args for word, args in _final_stage() if word == "RUN"]
    assert any(re.search(r"pip install \S*\.whl", r) for r in final_runs), final_runs
    # What the build stage copies exists, and the Dockerfile's own ignore file lets it through.
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    for word, args in _dockerfile_instructions():
        if word == "COPY" and "--from" not in args:
            for src in args.split()[:-1]:
                assert (REPO / src).exists(), src
                assert f"!{src}" in ignore or f"!{src}/" in ignore, src


def test_dockerfile_runs_as_non_root_with_the_bridge_healthcheck() -> None:
    final = _final_stage()
    users = [args for word, args in final if word == "USER"]
    assert users, "no USER in the runtime stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users
    health = [args for word, args in final if word == "HEALTHCHECK"]
    assert len(health) == 1 and re.search(
        r'CMD \["wch-bridge", "health"\]|CMD wch-bridge health', health[0]
    ), health
    assert ("ENTRYPOINT", '["wch-bridge"]') in final
    assert ("CMD", '["run"]') in final
    env = " ".join(args for word, args in final if word == "ENV")
    assert "WCH_BRIDGE_REPORT_OUT=/var/lib/wch-bridge/report.html" in env
    assert any(word == "VOLUME" and "/var/lib/wch-bridge" in args for word, args in final)


def test_health_command_exists_for_the_healthcheck() -> None:
    """The HEALTHCHECK calls `wch-bridge health`: the command must exist (exit 0 on --help)."""
    proc = subprocess.run(
        [sys.executable, "-c", "from wch_bridge.cli import main; main()", "health", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------------------------- the wheel


def test_wheel_installs_into_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
        timeout=600,
    )
    wheels = list(dist.glob("wch_bridge-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as zf:
        names = zf.namelist()
    assert any(n.startswith("wch_bridge/_data/sql/") for n in names), names
    # Every file of sql/ and templates/ is in the wheel under wch_bridge/_data/ (pyproject force-include).
    for folder in ("sql", "templates"):
        files = sorted(p.relative_to(REPO).as_posix() for p in (REPO / folder).rglob("*") if p.is_file())
        assert files, f"{folder}/ is empty: the wheel and the image would ship without it"
        missing = [f for f in files if f"wch_bridge/_data/{f}" not in names]
        assert not missing, missing

    venv = tmp_path / "venv"
    # A fresh venv without its own pip (bootstrapping one is slow); this pip installs into it (--python).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--disable-pip-version-check",
            "-q",
            str(wheels[0]),
        ],
        check=True,
        timeout=600,
    )

    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    helped = subprocess.run(
        [str(bindir / "wch-bridge"), "--help"], capture_output=True, text=True, timeout=120, cwd=away, env=env
    )
    assert helped.returncode == 0, helped.stderr
    commands = helped.stdout.split("Commands:", 1)[1]
    listed = set(re.findall(r"^\s{2}([a-z][a-z0-9-]*)\s", commands, re.M))
    assert {"run", "enqueue", "schema"} <= listed, helped.stdout

    probe = subprocess.run(
        [
            str(py),
            "-c",
            "import json, wch_bridge; from wch_bridge.resources import sql_dir, templates_dir; "
            "print(json.dumps([wch_bridge.__file__, str(sql_dir()), str(templates_dir())]))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=away,
        env=env,
    )
    assert probe.returncode == 0, probe.stderr
    module, sql, templates = json.loads(probe.stdout)
    site = str(venv.resolve())
    for path in (module, sql, templates):
        assert Path(path).resolve().is_relative_to(site), (path, site)
    assert Path(sql).is_dir() and any(Path(sql).rglob("*.sql")), sql
    assert Path(templates).is_dir() and any(Path(templates).iterdir()), templates


# --------------------------------------------------------------------------------------------- mu-plugin

# Just enough WordPress and Action Scheduler to run the mu-plugin in whole-group mode: an in-memory groups table behind a fake $wpdb
# that understands the plugin's two statements, and a DB-store-like object with claim filters.
PHP_HARNESS = r"""
define( 'ABSPATH', '/' );
define( 'WCH_BRIDGE_EXCLUDE', 'groups' );  // whole-group mode; hook-level mode: tests/reliability/test_php_hand_off.py
define( 'WCH_BRIDGE_GROUPS', 'wch' );
function has_filter( $h, $cb = false ) { return false; }
function add_action( $h, $cb ) { $GLOBALS['wch_hooks'][ $h ][] = $cb; }
function add_filter( $h, $cb ) { $GLOBALS['wch_hooks'][ $h ][] = $cb; }
function apply_filters( $h, $v ) { return $v; }
function __( $s ) { return $s; }
function esc_html( $s ) { return htmlspecialchars( $s, ENT_QUOTES ); }
function esc_html__( $s ) { return esc_html( $s ); }
function esc_attr( $s ) { return esc_html( $s ); }
function esc_url( $s ) { return $s; }
class Fake_Wpdb {
	public $prefix = 'wp_'; public $last_error = ''; public $rows = array(); public $deny = false; public $n = 0;
	public function suppress_errors( $s = true ) { return false; }
	public function prepare( $q, ...$a ) {
		foreach ( $a as $v ) { $q = preg_replace( '/%s/', "'" . addslashes( $v ) . "'", $q, 1 ); }
		return $q;
	}
	public function get_var( $q ) {
		$this->n++; $this->last_error = '';
		if ( ! preg_match( "/^SELECT group_id FROM `wp_actionscheduler_groups` WHERE slug = '([^']*)'/", $q, $m ) ) { throw new Exception( $q ); }
		$i = array_search( $m[1], $this->rows, true );
		return false === $i ? null : (string) ( $i + 1 );
	}
	public function query( $q ) {
		$this->n++;
		if ( $this->deny ) { $this->last_error = 'INSERT command denied'; return false; }
		if ( ! preg_match( "/^INSERT INTO `wp_actionscheduler_groups` \(slug\) SELECT '([^']*)' FROM DUAL WHERE NOT EXISTS/", $q, $m ) ) { throw new Exception( $q ); }
		if ( ! in_array( $m[1], $this->rows, true ) ) { $this->rows[] = $m[1]; }
		return 1;
	}
}
class Fake_Store {
	public $f = array( 'group' => '', 'hooks' => '', 'exclude-groups' => '' );
	public function set_claim_filter( $n, $v ) { if ( isset( $this->f[ $n ] ) ) { $this->f[ $n ] = $v; } }
	public function get_claim_filter( $n ) { return isset( $this->f[ $n ] ) ? $this->f[ $n ] : ''; }
}
$wpdb = new Fake_Wpdb();
$scenario = $argv[2];
if ( 'no-as' !== $scenario ) {
	class ActionScheduler { public static $s; public static function store() { return self::$s; } }
	ActionScheduler::$s = 0 === strpos( $scenario, 'hybrid' ) ? new stdClass() : new Fake_Store();
}
if ( 'hybrid-old' === $scenario ) {  // Action Scheduler before 3.4: no claim ORDER BY filter either.
	class ActionScheduler_Versions {
		public static function instance() { return new self(); }
		public function latest_version() { return '3.3.0'; }
	}
}
if ( 'fresh' === $scenario ) { $wpdb->rows = array( '', 'wc-admin-data' ); ActionScheduler::$s->f['exclude-groups'] = array( 'other' ); }
if ( 'present' === $scenario ) { $wpdb->rows = array( 'wch' ); }
if ( 'denied' === $scenario ) { $wpdb->deny = true; }
require $argv[1];
foreach ( $GLOBALS['wch_hooks']['action_scheduler_init'] as $cb ) { call_user_func( $cb ); }
$first = $wpdb->n;
foreach ( $GLOBALS['wch_hooks']['action_scheduler_init'] as $cb ) { call_user_func( $cb ); }
echo json_encode( array(
	'state'   => wch_bridge_state(),
	'filter'  => class_exists( 'ActionScheduler' ) && ActionScheduler::$s instanceof Fake_Store ? ActionScheduler::$s->f['exclude-groups'] : null,
	'rows'    => $wpdb->rows,
	'queries' => array( $first, $wpdb->n - $first ),
	'text'    => wch_bridge_status_text(),
	'order_by_filters' => isset( $GLOBALS['wch_hooks']['action_scheduler_claim_actions_order_by'] ) ? $GLOBALS['wch_hooks']['action_scheduler_claim_actions_order_by'] : array(),
) );
"""


@pytest.fixture(scope="module")
def php() -> str:
    exe = shutil.which("php")
    if exe is None:
        _missing("php (Debian's php-cli)")
    return exe


def test_mu_plugin_lints(php: str) -> None:
    proc = subprocess.run([php, "-l", str(MU_PLUGIN)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No syntax errors" in proc.stdout


def _run_mu_plugin(php: str, tmp_path: Path, scenario: str) -> dict:
    harness = tmp_path / "harness.php"
    harness.write_text("<?php\n" + PHP_HARNESS)
    proc = subprocess.run(
        [
            php,
            "-d",
            "display_errors=stderr",
            "-d",
            "error_reporting=E_ALL",
            str(harness),
            str(MU_PLUGIN),
            scenario,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == "", proc.stderr  # no notices or warnings
    return json.loads(proc.stdout)


def test_mu_plugin_creates_the_group_row_then_excludes_it(php: str, tmp_path: Path) -> None:
    out = _run_mu_plugin(php, tmp_path, "fresh")
    assert out["rows"] == ["", "wc-admin-data", "wch"]  # inserted once
    assert out["filter"] == ["other", "wch"]  # merged with what was excluded before
    assert out["state"] == {"status": "ok", "mode": "groups", "excluded": ["wch"], "missing": [], "store": "db"}
    assert out["queries"] == [3, 1]  # select, insert, select; then a single select per request
    assert "wch-bridge sidecar" in out["text"]


def test_mu_plugin_with_an_existing_row_only_reads(php: str, tmp_path: Path) -> None:
    out = _run_mu_plugin(php, tmp_path, "present")
    assert out["rows"] == ["wch"]
    assert out["filter"] == ["wch"]
    assert out["queries"] == [1, 1]


def test_mu_plugin_never_excludes_a_group_without_a_row(php: str, tmp_path: Path) -> None:
    """Excluding a group that has no row would make every PHP claim throw and stop the site's whole queue."""
    out = _run_mu_plugin(php, tmp_path, "denied")
    assert out["filter"] == ""
    assert out["state"]["status"] == "error" and out["state"]["missing"] == ["wch"]
    assert "INSERT privilege" in out["text"]


@pytest.mark.parametrize(
    ("scenario", "status"), [("no-as", "no-action-scheduler"), ("hybrid-old", "unsupported-store")]
)
def test_mu_plugin_is_harmless_without_the_db_store(
    php: str, tmp_path: Path, scenario: str, status: str
) -> None:
    out = _run_mu_plugin(php, tmp_path, scenario)
    assert out["state"]["status"] == status
    assert out["rows"] == [] and out["queries"] == [0, 0]


def test_mu_plugin_keeps_php_off_the_groups_while_action_scheduler_migrates(php: str, tmp_path: Path) -> None:
    """Action Scheduler 3.4+'s hybrid store (while it migrates from posts) has no claim filters, but its claims end
    in the DB store's statement, which applies the ORDER BY filter: the plugin now works there (it stood aside, and
    the real Action Scheduler 3.8.2 let PHP run the sidecar's hooks). Only before 3.4 is it harmless and idle."""
    out = _run_mu_plugin(php, tmp_path, "hybrid")
    assert out["state"] == {"status": "ok", "mode": "groups", "excluded": ["wch"], "missing": [],
                            "store": "migrating"}
    assert out["rows"] == ["wch"] and out["filter"] is None  # the row exists; no exclude-groups on this store
    assert "wch_bridge_claim_order_by" in {str(cb) for cb in out["order_by_filters"]}

