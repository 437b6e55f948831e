"""Checks of the deployment files in deploy/: python3 -m pytest -q deploy

- systemd: `systemd-analyze verify` on the service and the timer (must print nothing), the
  directives the product relies on, `systemd-analyze security --offline` exposure, the timer's
  calendar expression.
- cron: the cron.d line (5 schedule fields + user + command), and the command itself run under
  /bin/sh with a stub idp-sync and a stub logger, to show the exit status stays visible.
- Kubernetes: every YAML document parsed with PyYAML, and the fields the product relies on.
- The example configurations: parsed, and validated by `idp-sync check-config` when a built binary
  is around (never builds one).
"""

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
SERVICE = DEPLOY / "idp-sync.service"
TIMER = DEPLOY / "idp-sync.timer"
CRON = DEPLOY / "idp-sync.cron"
K8S = DEPLOY / "kubernetes"
HOST_CONFIG = DEPLOY / "config.example.yaml"

BINARY = "/usr/bin/idp-sync"
CONFIG = "/etc/idp-sync/config.yaml"
COMMAND = [BINARY, "sync", "--config", CONFIG]
METRICS_DIR = "/var/lib/prometheus/node-exporter"


# ---------------------------------------------------------------- systemd


def parse_unit(path):
    """{section: {key: [values in order]}}; keys may repeat (LoadCredential=, SystemCallFilter=)."""
    sections, current = {}, None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: directive outside a section: {raw}"
        assert not line.endswith("\\"), f"{path.name}: keep directives on one line: {raw}"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a directive: {raw}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(section, key):
    values = section.get(key, [])
    assert len(values) == 1, f"{key}= expected once, found {values}"
    return values[0]


def systemd_analyze():
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze not found: apt-get install systemd (Debian)")
    return exe


@pytest.fixture
def units_with_stub(tmp_path):
    """Temp copies of the service and timer whose ExecStart points at a stub executable.

    `systemd-analyze verify` runs fine without systemd as PID 1 (as in this container), but it
    rejects a unit whose ExecStart binary does not exist ("Command /usr/bin/idp-sync is not
    executable"), and the binary is not installed here. So the copy runs a stub; nothing else in
    the unit changes (asserted below).
    """
    stub = tmp_path / "bin" / "idp-sync"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    text = SERVICE.read_text()
    assert text.count(BINARY) >= 1
    copy = text.replace(f"ExecStart={BINARY} ", f"ExecStart={stub} ")
    assert copy != text, "ExecStart must start with " + BINARY
    units = tmp_path / "units"
    units.mkdir()
    (units / SERVICE.name).write_text(copy)
    (units / TIMER.name).write_text(TIMER.read_text())
    return units / SERVICE.name, units / TIMER.name


def test_systemd_analyze_verify(units_with_stub):
    exe = systemd_analyze()
    service, timer = units_with_stub
    result = subprocess.run(
        [exe, "verify", "--man=no", str(service), str(timer)],
        capture_output=True, text=True, timeout=120)
    # verify exits 0 even for unknown keys or unparsable values: it only warns. Any output fails.
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stderr.strip() == "" and result.stdout.strip() == "", result.stderr + result.stdout


def test_systemd_analyze_verify_really_checks(tmp_path, units_with_stub):
    """The check above is not vacuous: a typo in a hardening value is reported."""
    exe = systemd_analyze()
    service, timer = units_with_stub
    broken = tmp_path / "units" / "idp-sync-broken.service"
    broken.write_text(service.read_text().replace("ProtectSystem=strict", "ProtectSystem=stricter"))
    result = subprocess.run([exe, "verify", "--man=no", str(broken)], capture_output=True, text=True, timeout=120)
    assert "stricter" in result.stderr


def test_systemd_security_exposure(units_with_stub):
    exe = systemd_analyze()
    service, _ = units_with_stub
    result = subprocess.run(
        [exe, "security", "--offline=true", "--no-pager", str(service)],
        capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    # 1.4 today; what is left is the network itself, /proc and the absent IP allow list.
    assert float(match.group(1)) <= 2.0, result.stdout


def test_service_runs_one_sync():
    service = parse_unit(SERVICE)["Service"]
    assert one(service, "Type") == "oneshot"
    assert shlex.split(one(service, "ExecStart")) == COMMAND
    # Exit codes 1, 3, 4 and 64 must fail the unit, and 2 never happens without --detailed-exitcode.
    assert "SuccessExitStatus" not in service
    assert "--detailed-exitcode" not in one(service, "ExecStart")
    assert "Restart" not in service or one(service, "Restart") == "no"
    assert one(service, "TimeoutStartSec")


def test_service_identity_state_and_credentials():
    service = parse_unit(SERVICE)["Service"]
    dynamic = service.get("DynamicUser", ["no"])[-1] in ("yes", "true", "1", "on")
    assert dynamic or one(service, "User") == "idp-sync"
    assert one(service, "StateDirectory") == "idp-sync"
    assert sorted(service["LoadCredential"]) == [
        "kong:/etc/idp-sync/credentials/kong",
        "ldap:/etc/idp-sync/credentials/ldap",
    ]
    assert one(service, "UMask") == "0027"


@pytest.mark.parametrize(
    "key,value",
    [
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectHome", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
    ],
)
def test_service_hardening(key, value):
    assert one(parse_unit(SERVICE)["Service"], key) == value


def test_service_network_syscalls_and_writable_paths():
    service = parse_unit(SERVICE)["Service"]
    assert one(service, "RestrictAddressFamilies").split() == ["AF_INET", "AF_INET6", "AF_UNIX"]
    assert service["SystemCallFilter"][0] == "@system-service"
    # The metrics directory (temp file + rename) is the only writable path besides the state dir;
    # "-" keeps the unit working where the directory does not exist.
    assert [p.lstrip("-") for p in one(service, "ReadWritePaths").split()] == [METRICS_DIR]


def test_timer():
    unit = parse_unit(TIMER)
    timer = unit["Timer"]
    assert one(timer, "Persistent") == "true"
    assert one(timer, "RandomizedDelaySec")
    assert one(timer, "AccuracySec")
    assert one(timer, "Unit") == SERVICE.name
    assert one(unit["Install"], "WantedBy") == "timers.target"
    calendar = one(timer, "OnCalendar")
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze not found: apt-get install systemd (Debian)")
    result = subprocess.run(
        [exe, "calendar", "--iterations=5", calendar], capture_output=True, text=True, timeout=60,
        env={**os.environ, "TZ": "UTC", "SYSTEMD_COLORS": "0"})
    assert result.returncode == 0, result.stderr
    minutes = [int(h) * 60 + int(m) for h, m in re.findall(r"\d{4}-\d\d-\d\d (\d\d):(\d\d):00", result.stdout)]
    assert len(minutes) == 5, result.stdout
    steps = {(b - a) % (24 * 60) for a, b in zip(minutes, minutes[1:])}
    assert steps == {15}, result.stdout
    assert all(m % 15 == 0 for m in minutes), result.stdout


# ---------------------------------------------------------------- cron

ENV_LINE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*=")


def cron_entries():
    env, jobs = {}, []
    for raw in CRON.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if ENV_LINE.match(line):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
        else:
            jobs.append(line)
    return env, jobs


def test_cron_line():
    text = CRON.read_text()
    assert text.endswith("\n"), "cron ignores a last line without a newline"
    env, jobs = cron_entries()
    assert len(jobs) == 1, jobs
    fields = jobs[0].split(None, 6)
    assert len(fields) == 7, "5 schedule fields, the user, then the command"
    schedule, user, command = fields[:5], fields[5], fields[6]
    assert schedule == ["*/15", "*", "*", "*", "*"]
    assert user == "idp-sync"
    assert " ".join(COMMAND) in command
    assert "logger -t idp-sync" in command
    assert "flock" not in command, "idp-sync locks <journal>.lock itself"
    assert "%" not in command, "% is a newline in a crontab command"
    assert env.get("CREDENTIALS_DIRECTORY") == "/etc/idp-sync/credentials"
    assert env.get("SHELL") == "/bin/sh"


@pytest.mark.parametrize("status", [0, 1, 3, 4])
def test_cron_command_keeps_exit_status_visible(tmp_path, status):
    """Runs the cron command under /bin/sh, as cron does, with a stub idp-sync and logger."""
    env_vars, jobs = cron_entries()
    command = jobs[0].split(None, 6)[6]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    stub = bindir / "idp-sync"
    stub.write_text(
        "#!/bin/sh\n"
        'echo "report on stdout $*"\n'
        'echo "log on stderr CREDENTIALS_DIRECTORY=$CREDENTIALS_DIRECTORY" >&2\n'
        f"exit {status}\n")
    stub.chmod(0o755)
    logged = tmp_path / "syslog"
    logger = bindir / "logger"
    logger.write_text(f'#!/bin/sh\necho "logger $*" >> {logged}\ncat >> {logged}\n')
    logger.chmod(0o755)
    assert command.count(BINARY) == 1
    command = command.replace(BINARY, str(stub))
    env = {**env_vars, "PATH": f"{bindir}:{env_vars.get('PATH', '/usr/bin:/bin')}"}
    result = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, env=env, timeout=60)
    log = logged.read_text()
    assert "logger -t idp-sync" in log
    assert f"report on stdout sync --config {CONFIG}" in log
    assert "log on stderr CREDENTIALS_DIRECTORY=/etc/idp-sync/credentials" in log
    assert f"exit status {status}" in log
    assert result.stdout == ""
    if status == 0:
        assert result.stderr == "", "cron mails any output: a good run must be silent"
    else:
        assert f"exit status {status}" in result.stderr, "a failed run must reach cron's mail"


# ---------------------------------------------------------------- Kubernetes


def k8s_documents():
    docs = []
    files = sorted(K8S.glob("*.yaml")) + sorted(K8S.glob("*.yml"))
    assert files
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def by_kind(kind):
    found = [doc for _, doc in k8s_documents() if doc.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def test_every_kubernetes_document_parses_and_is_named():
    docs = k8s_documents()
    kinds = sorted(doc["kind"] for _, doc in docs)
    assert kinds == ["ConfigMap", "CronJob", "Kustomization", "PersistentVolumeClaim"]
    for name, doc in docs:
        assert doc.get("apiVersion"), name
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"].startswith("idp-sync"), name


def test_kustomization_lists_every_manifest():
    kustomization = by_kind("Kustomization")
    listed = sorted(kustomization["resources"])
    others = sorted(name for name, doc in k8s_documents() if doc["kind"] != "Kustomization")
    assert listed == others


def kubernetes_validate():
    """The validator scripts/install-deps installs (PATH, or ./.venv for Debian's own python3)."""
    found = shutil.which("kubernetes-validate")
    if found:
        return found
    venv = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "kubernetes-validate"
    assert venv.exists(), "kubernetes-validate is missing: run scripts/install-deps"
    return str(venv)


def test_manifests_validate_against_the_kubernetes_schemas():
    """Every manifest against the API's own schemas, strictly (unknown fields fail), offline; this
    always runs, unlike a kubectl that may not be installed."""
    manifests = sorted(str(K8S / name) for name, doc in k8s_documents() if doc["kind"] != "Kustomization")
    assert len(manifests) == 3
    result = subprocess.run([kubernetes_validate(), "--strict", *manifests], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == 3, result.stdout


def test_the_validator_catches_a_wrong_field(tmp_path):
    """Guard for the test above: a misspelt field fails."""
    bad = tmp_path / "cronjob.yaml"
    text = (K8S / "cronjob.yaml").read_text()
    assert "  restartPolicy: Never" in text
    bad.write_text(text.replace("  restartPolicy: Never", "  restartPolicyy: Never", 1))
    result = subprocess.run([kubernetes_validate(), "--strict", str(bad)], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0


def pod_parts():
    cronjob = by_kind("CronJob")
    job = cronjob["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    containers = pod["containers"]
    assert len(containers) == 1
    return cronjob, job, pod, containers[0]


def test_cronjob_schedule_and_policy():
    cronjob, job, pod, _ = pod_parts()
    assert cronjob["apiVersion"] == "batch/v1"
    spec = cronjob["spec"]
    assert spec["schedule"] == "*/15 * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert isinstance(spec["startingDeadlineSeconds"], int) and spec["startingDeadlineSeconds"] > 0
    assert isinstance(spec["successfulJobsHistoryLimit"], int)
    assert isinstance(spec["failedJobsHistoryLimit"], int) and spec["failedJobsHistoryLimit"] > 0
    assert job["backoffLimit"] == 0
    assert pod["restartPolicy"] == "Never"


def test_cronjob_command_and_env():
    _, _, _, container = pod_parts()
    assert container["command"] + container.get("args", []) == COMMAND
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CREDENTIALS_DIRECTORY"] == "/run/credentials"
    assert container["resources"]["limits"]["memory"] == "256Mi"
    assert container["resources"]["requests"]["memory"]
    assert container["resources"]["requests"]["cpu"]


def test_cronjob_volumes():
    _, _, pod, container = pod_parts()
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert set(v["name"] for v in pod["volumes"]) >= {m["name"] for m in container["volumeMounts"]}

    journal = volumes[mounts["/var/lib/idp-sync"]["name"]]
    assert journal["persistentVolumeClaim"]["claimName"] == by_kind("PersistentVolumeClaim")["metadata"]["name"]
    assert not mounts["/var/lib/idp-sync"].get("readOnly", False)

    config = volumes[mounts["/etc/idp-sync"]["name"]]
    assert config["configMap"]["name"] == by_kind("ConfigMap")["metadata"]["name"]
    assert mounts["/etc/idp-sync"]["readOnly"] is True

    credentials = volumes[mounts["/run/credentials"]["name"]]
    assert credentials["secret"]["secretName"]
    assert {i["key"]: i["path"] for i in credentials["secret"]["items"]} == {"ldap": "ldap", "kong": "kong"}
    assert credentials["secret"]["defaultMode"] & 0o007 == 0, "secret files must not be world-readable"
    assert mounts["/run/credentials"]["readOnly"] is True


def test_cronjob_security_context():
    _, _, pod, container = pod_parts()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod.get("automountServiceAccountToken") is False
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert "add" not in sc["capabilities"]
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"


def test_pvc():
    pvc = by_kind("PersistentVolumeClaim")
    assert pvc["apiVersion"] == "v1"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"]


# ---------------------------------------------------------------- example configurations


def k8s_config_text():
    return by_kind("ConfigMap")["data"]["config.yaml"]


def check_config_shape(config):
    assert config["version"] == 1
    assert config["source"]["bind_password_file"] == "${CREDENTIALS_DIRECTORY}/ldap"
    assert config["gateways"][0]["token_file"] == "${CREDENTIALS_DIRECTORY}/kong"
    assert config["journal"]["path"] == "/var/lib/idp-sync/journal.jsonl"
    assert 1 <= len(config["gateways"][0]["select_tags"]) <= 5


def test_configmap_config():
    configmap = by_kind("ConfigMap")
    config = yaml.safe_load(k8s_config_text())
    check_config_shape(config)
    # Mounted at /etc/idp-sync: every file the config names there must be a key of the ConfigMap.
    named = [config["source"].get("ca_file")] + [g.get("ca_file") for g in config["gateways"]]
    for path in filter(None, named):
        assert path.startswith("/etc/idp-sync/")
        assert path.removeprefix("/etc/idp-sync/") in configmap["data"], path


def test_host_config():
    config = yaml.safe_load(HOST_CONFIG.read_text())
    check_config_shape(config)
    metrics = config["metrics"]["textfile_path"]
    assert metrics.endswith(".prom")
    assert os.path.dirname(metrics) == METRICS_DIR  # the service's ReadWritePaths=


def built_binary():
    candidates = [os.environ.get("IDP_SYNC_BIN", "")]
    candidates += sorted(str(p) for p in REPO.glob(".build/*/release/idp-sync"))
    candidates += sorted(str(p) for p in REPO.glob(".build/*/debug/idp-sync"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no built idp-sync (set IDP_SYNC_BIN, or build it); this test never builds")


@pytest.mark.parametrize("which", ["host", "kubernetes"])
def test_example_config_passes_check_config(tmp_path, which):
    binary = built_binary()
    path = tmp_path / "config.yaml"
    path.write_text(HOST_CONFIG.read_text() if which == "host" else k8s_config_text())
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "ldap").write_text("example-password\n")
    (credentials / "kong").write_text("example-token\n")
    env = {"PATH": "/usr/bin:/bin", "CREDENTIALS_DIRECTORY": str(credentials)}
    try:
        result = subprocess.run([binary, "check-config", "--config", str(path)],
                                capture_output=True, text=True, env=env, timeout=60)
    except OSError as error:  # e.g. being rebuilt right now
        pytest.skip(f"cannot run {binary}: {error}")
    assert result.returncode == 0, result.stdout + result.stderr
