"""Checks of the deployment files in deploy/: python3 -m pytest -q deploy

- systemd: `systemd-analyze verify` on the service, the timer, the watch service and the failure
  notifier (must print nothing), the directives the product relies on, `systemd-analyze security
  --offline` exposure, the timer's calendar expression; the notifier script run with stub systemctl,
  journalctl and logger.
- Prometheus and Grafana: `promtool check rules` on the alerting rules; the dashboard parsed, its
  queries checked by promtool's parser, and every metric the rules and the dashboard use is one that
  idp-sync writes (read from the Swift source). The rules are fired from real runs' textfiles by
  `promtool test rules` in Tests/IntegrationTests/AlertingTests.swift.
- cron: the cron.d line (5 schedule fields + user + command), and the command itself run under
  /bin/sh with a stub idp-sync and a stub logger, to show the exit status stays visible.
- Kubernetes: every YAML document parsed with PyYAML, and the fields the product relies on; the
  watch Deployment's wrapper run under /bin/sh with a stub idp-sync, for each exit code.
- The example configurations: parsed, and validated by `idp-sync check-config` when a built binary
  is around (never builds one).
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
SERVICE = DEPLOY / "idp-sync.service"
TIMER = DEPLOY / "idp-sync.timer"
WATCH = DEPLOY / "idp-sync-watch.service"
NOTIFY_UNIT = DEPLOY / "idp-sync-notify@.service"
NOTIFY_SCRIPT = DEPLOY / "idp-sync-notify"
RULES = DEPLOY / "prometheus" / "idp-sync-rules.yml"
DASHBOARD = DEPLOY / "grafana" / "idp-sync-dashboard.json"
CRON = DEPLOY / "idp-sync.cron"
K8S = DEPLOY / "kubernetes"
WATCH_DEPLOYMENT = K8S / "watch-deployment.yaml"
HOST_CONFIG = DEPLOY / "config.example.yaml"

BINARY = "/usr/bin/idp-sync"
NOTIFY_BINARY = "/usr/libexec/idp-sync/idp-sync-notify"
CONFIG = "/etc/idp-sync/config.yaml"
COMMAND = [BINARY, "sync", "--config", CONFIG]
WATCH_COMMAND = [BINARY, "watch", "--config", CONFIG]
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
    """Temp copies of the service, the timer, the notifier and the watch whose ExecStart points at stubs.

    `systemd-analyze verify` runs fine without systemd as PID 1 (as in this container), but it
    rejects a unit whose ExecStart binary does not exist ("Command /usr/bin/idp-sync is not
    executable"), and the binary is not installed here. So the copies run stubs; nothing else in
    the units changes (asserted below).
    """
    bindir = tmp_path / "bin"
    bindir.mkdir()
    units = tmp_path / "units"
    units.mkdir()
    copies = []
    for unit, binary in ((SERVICE, BINARY), (TIMER, None), (NOTIFY_UNIT, NOTIFY_BINARY), (WATCH, BINARY)):
        text = unit.read_text()
        if binary:
            stub = bindir / Path(binary).name
            stub.write_text("#!/bin/sh\nexit 0\n")
            stub.chmod(0o755)
            assert text.count(binary) >= 1
            copy = text.replace(f"ExecStart={binary} ", f"ExecStart={stub} ")
            assert copy != text, "ExecStart must start with " + binary
            text = copy
        (units / unit.name).write_text(text)
        copies.append(units / unit.name)
    return tuple(copies)


def test_systemd_analyze_verify(units_with_stub):
    exe = systemd_analyze()
    service, timer, notify, watch = units_with_stub
    # The notifier is a template: verify loads it as it is, and as the instances OnFailure= starts.
    instances = []
    for failed in (service, watch):
        instance = notify.parent / f"idp-sync-notify@{failed.name}.service"
        instance.write_text(notify.read_text())
        instances.append(str(instance))
    result = subprocess.run(
        [exe, "verify", "--man=no", str(service), str(timer), str(notify), str(watch), *instances],
        capture_output=True, text=True, timeout=120)
    # verify exits 0 even for unknown keys or unparsable values: it only warns. Any output fails.
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stderr.strip() == "" and result.stdout.strip() == "", result.stderr + result.stdout


@pytest.mark.parametrize("which", ["service", "notifier", "watch"])
def test_systemd_analyze_verify_really_checks(tmp_path, units_with_stub, which):
    """The check above is not vacuous: a typo in a hardening value is reported."""
    exe = systemd_analyze()
    service, _, notify, watch = units_with_stub
    unit = {"service": service, "notifier": notify, "watch": watch}[which]
    broken = tmp_path / "units" / unit.name.replace("idp-sync", "idp-sync-broken")
    broken.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=stricter"))
    result = subprocess.run([exe, "verify", "--man=no", str(broken)], capture_output=True, text=True, timeout=120)
    assert "stricter" in result.stderr


@pytest.mark.parametrize("which", ["service", "notifier", "watch"])
def test_systemd_security_exposure(units_with_stub, which):
    exe = systemd_analyze()
    service, _, notify, watch = units_with_stub
    unit = watch if which == "watch" else service
    if which == "notifier":
        unit = notify.parent / "idp-sync-notify@idp-sync.service.service"
        unit.write_text(notify.read_text())
    result = subprocess.run(
        [exe, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    # The service: 1.4 today, and the watch the same; what is left is the network itself, /proc and
    # the absent IP allow list. The notifier: 1.5; it keeps the network for a chat or SMTP command.
    assert float(match.group(1)) <= 2.0, result.stdout


def test_service_runs_one_sync():
    service = parse_unit(SERVICE)["Service"]
    assert one(service, "Type") == "oneshot"
    assert shlex.split(one(service, "ExecStart")) == COMMAND
    # Exit codes 1, 3, 4 and 64 must fail the unit (and reach OnFailure=); 2, which only comes
    # with --detailed-exitcode (not passed here), is a success.
    assert one(service, "SuccessExitStatus") == "2"
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


def seconds(span):
    """A systemd time span ("10min", "1h 30min", "90") in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "hr": 3600, "d": 86400}
    parts = re.findall(r"(\d+)\s*([a-z]*)", span)
    assert parts and re.fullmatch(r"(\s*\d+\s*[a-z]*)+\s*", span), span
    return sum(int(n) * units[u] for n, u in parts)


def test_watch_runs_the_watch_command_as_a_notify_service():
    unit = parse_unit(WATCH)
    service = unit["Service"]
    assert shlex.split(one(service, "ExecStart")) == WATCH_COMMAND
    # READY=1 after the first full reconciliation, WATCHDOG=1 from the loop, from the main process only.
    assert one(service, "Type") == "notify"
    assert one(service, "NotifyAccess") == "main"
    # The start is the feed plus a full reconciliation: more than idp-sync.service gives one run.
    oneshot = parse_unit(SERVICE)["Service"]
    assert seconds(one(service, "TimeoutStartSec")) > seconds(one(oneshot, "TimeoutStartSec"))
    # The loop that pings also runs the periodic full reconciliation: the watchdog outlasts one.
    assert seconds(one(service, "WatchdogSec")) >= seconds(one(oneshot, "TimeoutStartSec"))
    assert one(service, "WatchdogSignal") == "SIGTERM"
    assert seconds(one(service, "TimeoutStopSec")) == seconds(one(oneshot, "TimeoutStopSec"))
    assert seconds(one(service, "TimeoutAbortSec")) == seconds(one(service, "TimeoutStopSec"))
    # 0 comes from SIGTERM; nothing else is a success.
    assert "SuccessExitStatus" not in service
    # Set from the measured peaks in docs/operations.md ("Sizing") with headroom.
    assert memory_bytes(one(service, "MemoryMax")) >= 1.5 * WATCH_PEAK_1M
    assert memory_bytes(one(parse_unit(SERVICE)["Service"], "MemoryMax")) >= 1.5 * SYNC_PEAK_1M
    assert one(unit["Install"], "WantedBy") == "multi-user.target"


def test_watch_restarts_but_never_after_the_hourly_brake():
    unit = parse_unit(WATCH)
    service = unit["Service"]
    assert one(service, "Restart") == "on-failure"
    prevent = one(service, "RestartPreventExitStatus").split()
    # 3: a restart's full reconciliation would apply what the hourly brake held back. 64: never heals.
    assert "3" in prevent and "64" in prevent
    # 4 is restarted, but not at once, and not forever.
    assert "4" not in prevent
    assert seconds(one(service, "RestartSec")) >= 60
    assert int(one(unit["Unit"], "StartLimitBurst")) >= 2
    assert seconds(one(unit["Unit"], "StartLimitIntervalSec")) >= 3600


def test_watch_conflicts_with_the_timer_and_notifies():
    unit = parse_unit(WATCH)["Unit"]
    conflicts = " ".join(unit["Conflicts"]).split()
    assert sorted(conflicts) == sorted([TIMER.name, SERVICE.name])
    # Conflicts= orders nothing: a run in progress ends (and frees the lock) before the watch starts.
    assert SERVICE.name in " ".join(unit["After"]).split()
    assert one(unit, "OnFailure") == "idp-sync-notify@%n.service"
    assert "network-online.target" in " ".join(unit["Wants"]).split()


WATCH_DOCS = [REPO / "docs/operations.md", DEPLOY / "README.md"]


@pytest.mark.parametrize("path", WATCH_DOCS, ids=lambda p: p.name)
def test_watch_is_documented(path):
    """docs/configuration.md links to operations.md#revocation-in-seconds-watch: the heading is exact."""
    text = path.read_text()
    assert "\n## Revocation in seconds: watch\n" in text
    section = text.split("\n## Revocation in seconds: watch\n")[1].split("\n## ")[0]
    for needle in ["systemctl disable --now idp-sync.timer", "systemctl enable --now idp-sync-watch.service",
                   "systemctl disable --now idp-sync-watch.service", "systemctl enable --now idp-sync.timer",
                   "syncprov", "Content", "SCIM", "watch-start", "watch-resync", "idp_sync_watch_events_total",
                   "idp_sync_watch_lag_seconds", "idp_sync_watch_connected", "--accept-plan"]:
        assert needle in section, needle


def test_watch_switch_commands_agree_with_the_unit():
    """The unit's header names the same commands as the documentation."""
    header = WATCH.read_text().split("\n[Unit]")[0]
    for command in ["systemctl disable --now idp-sync.timer", "systemctl enable --now idp-sync-watch.service",
                    "systemctl disable --now idp-sync-watch.service", "systemctl enable --now idp-sync.timer"]:
        assert command in header, command


# Everything that makes idp-sync.service what it is, apart from how it runs: user, state,
# credentials, writable paths and every hardening directive.
SHARED_WITH_THE_SERVICE = [
    "User", "Group", "StateDirectory", "StateDirectoryMode", "LoadCredential", "UMask", "ReadWritePaths",
    "NoNewPrivileges", "CapabilityBoundingSet", "AmbientCapabilities", "ProtectSystem", "ProtectHome",
    "PrivateTmp", "PrivateDevices", "PrivateIPC", "PrivateMounts", "ProtectKernelTunables",
    "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname",
    "ProtectProc", "RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID",
    "LockPersonality", "MemoryDenyWriteExecute", "RemoveIPC", "SystemCallArchitectures", "SystemCallFilter",
    "SystemCallErrorNumber",
]


@pytest.mark.parametrize("key", SHARED_WITH_THE_SERVICE)
def test_watch_is_hardened_like_the_service(key):
    service = parse_unit(SERVICE)["Service"]
    watch = parse_unit(WATCH)["Service"]
    assert key in service, key
    assert watch.get(key) == service[key], key


def test_watch_sets_nothing_the_service_does_not_explain():
    """Every [Service] key of the watch is shared with idp-sync.service or about running for long."""
    own = {"Type", "NotifyAccess", "ExecStart", "Restart", "RestartSec", "RestartPreventExitStatus",
           "TimeoutStartSec", "TimeoutStopSec", "TimeoutAbortSec", "WatchdogSec", "WatchdogSignal",
           "SyslogIdentifier", "MemoryMax"}
    extra = set(parse_unit(WATCH)["Service"]) - set(SHARED_WITH_THE_SERVICE) - own
    assert not extra, extra


def test_failures_reach_the_notifier():
    unit = parse_unit(SERVICE)["Unit"]
    assert one(unit, "OnFailure") == "idp-sync-notify@%n.service"
    assert NOTIFY_UNIT.name == "idp-sync-notify@.service", "the template OnFailure= names"


def test_notifier_unit():
    unit = parse_unit(NOTIFY_UNIT)
    service = unit["Service"]
    assert one(service, "Type") == "oneshot"
    assert shlex.split(one(service, "ExecStart")) == [NOTIFY_BINARY, "%i"]
    assert one(service, "EnvironmentFile") == "-/etc/default/idp-sync-notify"
    assert one(service, "TimeoutStartSec")
    # Started only by OnFailure=: never enabled, and no notifier of its own (no loops).
    assert "Install" not in unit
    assert "OnFailure" not in unit.get("Unit", {})
    # Its own unprivileged user, which may read the system journal.
    assert one(service, "DynamicUser") == "yes"
    assert one(service, "SupplementaryGroups") == "systemd-journal"
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                       ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("CapabilityBoundingSet", ""),
                       ("MemoryDenyWriteExecute", "yes"), ("SystemCallArchitectures", "native")]:
        assert one(service, key) == value, key
    assert service["SystemCallFilter"][0] == "@system-service"


def notify_stubs(tmp_path, show=None, show_status=0, journal=None):
    """A bin directory with stub systemctl and journalctl that log their arguments."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    if show is None:
        show = "Result=exit-code\nExecMainStatus=3\nExecMainExitTimestamp=Mon 2026-12-07 03:15:02 UTC\n"
    if journal is None:
        journal = "level=info msg=\"plan ready\"\nerror: refused: brake-count: 4 disables > max_disable 1\n"
    (tmp_path / "show").write_text(show)
    (tmp_path / "journal").write_text(journal)
    for name, output, status in (("systemctl", "show", show_status), ("journalctl", "journal", 0)):
        stub = bindir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\ncat {tmp_path / output}\nexit {status}\n')
        stub.chmod(0o755)
    return bindir, calls


def run_notify(bindir, args=("idp-sync.service",), command=None, extra_env=None):
    env = {"PATH": f"{bindir}:/usr/bin:/bin", **(extra_env or {})}
    if command is not None:
        env["IDP_SYNC_NOTIFY_COMMAND"] = command
    # /bin/sh is dash on Debian: a POSIX shell, as the script promises.
    return subprocess.run(["/bin/sh", str(NOTIFY_SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=60)


@pytest.mark.parametrize(
    "show,expected",
    [
        ("Result=exit-code\nExecMainStatus=3\nExecMainExitTimestamp=Mon 2026-12-07 03:15:02 UTC\n",
         ["failed on HOST: exit status 3 (refused by a brake or a changed plan)\n",
          "Ended:  Mon 2026-12-07 03:15:02 UTC", "Status: 3", "To do:  nothing was written; a person reviews the plan"]),
        ("Result=exit-code\nExecMainStatus=4\nExecMainExitTimestamp=\n",
         ["exit status 4 (the directory is not trustworthy)", "Ended:  unknown", "a person checks the directory"]),
        ("Result=exit-code\nExecMainStatus=1\n", ["exit status 1 (an error)", "To do:  read the log lines below"]),
        ("Result=exit-code\nExecMainStatus=64\n", ["exit status 64 (invalid command line)", "check ExecStart="]),
        ("Result=timeout\nExecMainStatus=1\n", ["timed out (TimeoutStartSec=)"]),
        ("Result=signal\nExecMainStatus=9\n", ["ended by signal 9 (signal)"]),
    ],
)
def test_notifier_message_names_the_unit_status_and_log_tail(tmp_path, show, expected):
    bindir, calls = notify_stubs(tmp_path, show=show)
    out, env_out = tmp_path / "message", tmp_path / "env"
    result = run_notify(bindir, command=f"cat > {out}; env | grep ^IDP_SYNC_NOTIFY_ | sort > {env_out}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    message = out.read_text().replace(f" on {os.uname().nodename}:", " on HOST:")
    subject = message.splitlines()[0]
    assert subject.startswith("idp-sync.service failed on HOST: ")
    assert "Unit:   idp-sync.service" in message
    for text in expected:
        assert text in message, message
    assert 'level=info msg="plan ready"\nerror: refused: brake-count: 4 disables > max_disable 1\n' in message
    assert calls.read_text().splitlines() == [
        "systemctl show idp-sync.service -p Result -p ExecMainStatus -p ExecMainExitTimestamp",
        "journalctl -u idp-sync.service -n 20 --no-pager -o cat",
    ]
    env = env_out.read_text()
    assert "IDP_SYNC_NOTIFY_UNIT=idp-sync.service\n" in env
    assert f"IDP_SYNC_NOTIFY_SUBJECT={subject}\n".replace("HOST", os.uname().nodename) in env
    status = re.search(r"ExecMainStatus=(\d+)", show).group(1)
    assert f"IDP_SYNC_NOTIFY_STATUS={status}\n" in env


@pytest.mark.parametrize(
    "show,expected",
    [
        ("Result=exit-code\nExecMainStatus=3\n",
         ["exit status 3 (refused by a brake or a changed plan)",
          "--accept-plan HASH; the watch stays stopped until then: systemctl start idp-sync-watch.service"]),
        ("Result=exit-code\nExecMainStatus=1\n",
         ["exit status 1 (an error)", "systemd restarts the watch (RestartSec=) until its start limit"]),
        ("Result=exit-code\nExecMainStatus=4\n", ["exit status 4", "a person checks the directory"]),
        ("Result=watchdog\nExecMainStatus=0\n", ["stopped by the watchdog (WatchdogSec=), status 0"]),
        ("Result=start-limit-hit\nExecMainStatus=4\n",
         ["failed too often (start limit), status 4",
          "systemctl reset-failed idp-sync-watch.service; systemctl start idp-sync-watch.service"]),
    ],
)
def test_notifier_message_for_the_watch(tmp_path, show, expected):
    bindir, calls = notify_stubs(tmp_path, show=show)
    out = tmp_path / "message"
    result = run_notify(bindir, args=("idp-sync-watch.service",), command=f"cat > {out}")
    assert result.returncode == 0, result.stderr
    message = out.read_text()
    assert message.startswith("idp-sync-watch.service failed on ")
    for text in expected:
        assert text in message, message
    assert calls.read_text().splitlines() == [
        "systemctl show idp-sync-watch.service -p Result -p ExecMainStatus -p ExecMainExitTimestamp",
        "journalctl -u idp-sync-watch.service -n 20 --no-pager -o cat",
    ]


def test_notifier_keeps_the_timer_advice_for_the_service(tmp_path):
    bindir, _ = notify_stubs(tmp_path, show="Result=exit-code\nExecMainStatus=3\n")
    out = tmp_path / "message"
    assert run_notify(bindir, command=f"cat > {out}").returncode == 0
    assert "watch" not in out.read_text().split("Last log lines")[0]


def test_notifier_defaults_to_logger(tmp_path):
    bindir, _ = notify_stubs(tmp_path)
    logged = tmp_path / "syslog"
    logger = bindir / "logger"
    logger.write_text(f'#!/bin/sh\necho "logger $*" >> {logged}\ncat >> {logged}\n')
    logger.chmod(0o755)
    result = run_notify(bindir)
    assert result.returncode == 0, result.stderr
    log = logged.read_text()
    assert log.startswith("logger -p user.err -t idp-sync-notify\nidp-sync.service failed on ")
    assert "exit status 3" in log and "brake-count" in log


def readme_notify_commands():
    """The IDP_SYNC_NOTIFY_COMMAND lines of deploy/README.md, unquoted as systemd reads a single-quoted
    value in an EnvironmentFile= (everything between the quotes, literally)."""
    found = re.findall(r"^IDP_SYNC_NOTIFY_COMMAND='([^']*)'$", (DEPLOY / "README.md").read_text(), re.M)
    assert len(found) == 2, found
    # The user documentation shows the same two.
    assert re.findall(r"^IDP_SYNC_NOTIFY_COMMAND='([^']*)'$", (REPO / "docs/operations.md").read_text(), re.M) == found
    return found


def test_notifier_mail_example_from_the_readme(tmp_path):
    bindir, _ = notify_stubs(tmp_path)
    args, body = tmp_path / "curl-args", tmp_path / "curl-stdin"
    curl = bindir / "curl"
    curl.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {args}\ncat > {body}\n')
    curl.chmod(0o755)
    mail = next(c for c in readme_notify_commands() if "smtp://" in c)
    result = run_notify(bindir, command=mail)
    assert result.returncode == 0, result.stderr
    assert args.read_text().splitlines() == [
        "-fsS", "--crlf", "--url", "smtp://mail.example.org:25", "--mail-from", "idp-sync@example.org",
        "--mail-rcpt", "ops@example.org", "-T", "-"]
    headers, _, message = body.read_text().partition("\n\n")
    subject, sender, recipient = headers.split("\n")
    assert subject.startswith("Subject: idp-sync.service failed on ") and "exit status 3" in subject
    assert (sender, recipient) == ("From: idp-sync@example.org", "To: ops@example.org")
    assert message.startswith(subject.removeprefix("Subject: ") + "\n") and "brake-count" in message


def test_notifier_chat_example_from_the_readme(tmp_path):
    if shutil.which("jq") is None:
        pytest.skip("jq not installed")
    bindir, _ = notify_stubs(tmp_path)
    args, body = tmp_path / "curl-args", tmp_path / "curl-stdin"
    curl = bindir / "curl"
    curl.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {args}\ncat > {body}\n')
    curl.chmod(0o755)
    chat = next(c for c in readme_notify_commands() if "hooks" in c)
    result = run_notify(bindir, command=chat)
    assert result.returncode == 0, result.stderr
    assert args.read_text().splitlines() == [
        "-fsS", "-H", "Content-Type: application/json", "--data-binary", "@-",
        "https://chat.example.org/hooks/REPLACE-ME"]
    text = json.loads(body.read_text())["text"]
    assert text.startswith("idp-sync.service failed on ") and "brake-count" in text


def test_notifier_keeps_the_message_when_the_command_fails(tmp_path):
    bindir, _ = notify_stubs(tmp_path)
    result = run_notify(bindir, command="cat > /dev/null; exit 7")
    assert result.returncode == 7
    assert "the notify command failed with status 7" in result.stderr
    assert "idp-sync.service failed on " in result.stderr and "brake-count" in result.stderr


def test_notifier_still_reports_when_systemctl_fails(tmp_path):
    bindir, _ = notify_stubs(tmp_path, show="Failed to connect to bus: No such file or directory\n", show_status=1)
    out = tmp_path / "message"
    result = run_notify(bindir, command=f"cat > {out}")
    assert result.returncode == 0, result.stderr
    message = out.read_text()
    assert "Result: unknown (systemctl show: Failed to connect to bus" in message
    assert "brake-count" in message


def test_notifier_never_evaluates_log_content(tmp_path):
    """Log lines carry names from LDAP and Kong: they are data, never shell code."""
    pwned = tmp_path / "pwned"
    hostile = f"consumer $(touch {pwned}) `touch {pwned}` ${{IFS}}; touch {pwned}\n"
    bindir, _ = notify_stubs(tmp_path, journal=hostile,
                             show=f"Result=exit-code\nExecMainStatus=1\nExecMainExitTimestamp=$(touch {pwned})\n")
    out = tmp_path / "message"
    result = run_notify(bindir, args=("idp-sync.service",), command=f"cat > {out}")
    assert result.returncode == 0, result.stderr
    assert not pwned.exists()
    assert hostile in out.read_text()
    assert f"Ended:  $(touch {pwned})" in out.read_text()


def test_notifier_usage(tmp_path):
    bindir, calls = notify_stubs(tmp_path)
    for args in ((), ("",), ("a.service", "b.service")):
        result = run_notify(bindir, args=args, command="cat")
        assert result.returncode == 64, args
        assert "usage: idp-sync-notify UNIT" in result.stderr
    assert not calls.exists()


def test_notifier_script_is_executable_posix_sh():
    assert NOTIFY_SCRIPT.read_text().startswith("#!/bin/sh\n")
    assert os.access(NOTIFY_SCRIPT, os.X_OK), "git must keep the script's mode 0755"
    result = subprocess.run(["/bin/sh", "-n", str(NOTIFY_SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


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
    assert kinds == ["ConfigMap", "CronJob", "Deployment", "Kustomization", "PersistentVolumeClaim"]
    for name, doc in docs:
        assert doc.get("apiVersion"), name
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"].startswith("idp-sync"), name


def test_kustomization_lists_every_manifest_but_the_watch():
    """The watch Deployment is optional and applied on its own, after the CronJob is suspended:
    in the kustomization, `kubectl apply -k` would run both on one journal."""
    kustomization = by_kind("Kustomization")
    listed = sorted(kustomization["resources"])
    others = sorted(name for name, doc in k8s_documents() if doc["kind"] != "Kustomization")
    assert WATCH_DEPLOYMENT.name in others
    assert listed == [name for name in others if name != WATCH_DEPLOYMENT.name]


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
    assert len(manifests) == 4
    result = subprocess.run([kubernetes_validate(), "--strict", *manifests], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == 4, result.stdout


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
    # Set from the measured peaks in docs/operations.md ("Sizing"): 1,000,000 users with headroom.
    assert memory_bytes(container["resources"]["limits"]["memory"]) >= 1.5 * SYNC_PEAK_1M
    assert memory_bytes(container["resources"]["requests"]["memory"]) >= SYNC_PEAK_100K
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


def check_security_context(pod, container):
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


def test_cronjob_security_context():
    _, _, pod, container = pod_parts()
    check_security_context(pod, container)


# ---------------------------------------------------------------- Kubernetes: the watch Deployment


def watch_parts():
    deployment = by_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    containers = pod["containers"]
    assert len(containers) == 1
    return deployment, pod, containers[0]


def test_watch_deployment_is_one_pod_at_a_time():
    deployment, pod, _ = watch_parts()
    assert deployment["apiVersion"] == "apps/v1"
    assert deployment["metadata"]["name"] == "idp-sync-watch"
    spec = deployment["spec"]
    # Never two watchers on one journal: Recreate stops the old pod before the new one starts.
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert pod.get("restartPolicy", "Always") == "Always"
    # The selector takes the template's pods and never the CronJob's (which share the name label).
    selector = spec["selector"]["matchLabels"]
    assert set(selector.items()) <= set(spec["template"]["metadata"]["labels"].items())
    cron_pod_labels = by_kind("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert not set(selector.items()) <= set(cron_pod_labels.items())


def test_watch_deployment_security_context():
    _, pod, container = watch_parts()
    check_security_context(pod, container)


def test_watch_deployment_shares_the_cronjobs_image_config_secrets_and_journal():
    _, _, cron_pod, cron = pod_parts()
    _, pod, container = watch_parts()
    assert container["image"] == cron["image"]
    assert container["env"] == cron["env"]
    assert container["volumeMounts"] == cron["volumeMounts"]
    assert pod["volumes"] == cron_pod["volumes"]
    for key in ("securityContext", "automountServiceAccountToken", "enableServiceLinks",
                "terminationGracePeriodSeconds"):
        assert pod[key] == cron_pod[key], key
    assert container["securityContext"] == cron["securityContext"]


def test_watch_deployment_resources():
    _, _, container = watch_parts()
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["limits"]["cpu"]
    # Set from the measured peaks in docs/operations.md ("Sizing"): 1,000,000 users with headroom.
    assert memory_bytes(resources["limits"]["memory"]) >= 1.5 * WATCH_PEAK_1M
    assert memory_bytes(resources["requests"]["memory"]) >= WATCH_PEAK_100K


def sizing_table():
    """The measured peaks that docs/operations.md gives under "Sizing", in bytes."""
    text = (REPO / "docs" / "operations.md").read_text()
    section = text[text.index("## Sizing"):]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\|\s*([0-9,]+)\s*\|\s*~?([0-9]+) MB\s*\|\s*~?([0-9]+) MB", line)
        if m:
            rows[int(m.group(1).replace(",", ""))] = (int(m.group(2)) << 20, int(m.group(3)) << 20)
    return rows


def memory_bytes(text):
    """A systemd (1G, 512M) or Kubernetes (512Mi, 1Gi) memory quantity in bytes."""
    m = re.fullmatch(r"([0-9]+)(Ki|Mi|Gi|K|M|G)?", str(text))
    assert m, text
    return int(m.group(1)) << {None: 0, "K": 10, "Ki": 10, "M": 20, "Mi": 20, "G": 30, "Gi": 30}[m.group(2)]


def test_sizing_table_is_in_the_docs():
    rows = sizing_table()
    assert set(rows) >= {100_000, 1_000_000}, rows
    assert rows[100_000][0] == SYNC_PEAK_100K and rows[1_000_000][0] == SYNC_PEAK_1M
    assert rows[100_000][1] == WATCH_PEAK_100K and rows[1_000_000][1] == WATCH_PEAK_1M


SYNC_PEAK_100K, WATCH_PEAK_100K = 60 << 20, 113 << 20
SYNC_PEAK_1M, WATCH_PEAK_1M = 275 << 20, 590 << 20


REFUSED_MARKER = "/tmp/idp-sync-watch.refused"


def watch_wrapper():
    """The container's command: /bin/sh -c SCRIPT NAME, with idp-sync's arguments in args."""
    _, _, container = watch_parts()
    command = container["command"]
    assert command[:2] == ["/bin/sh", "-c"] and len(command) == 4
    assert command[3] == "idp-sync-watch"  # $0 of the script; args follow as "$@"
    assert [BINARY] + container["args"] == WATCH_COMMAND
    script = command[2]
    assert script.count(f'{BINARY} "$@" &') == 1
    assert script.count(REFUSED_MARKER) == 1
    return script, container


def test_watch_deployment_readiness_follows_the_refused_marker():
    _, container = watch_wrapper()
    probe = container["readinessProbe"]["exec"]["command"]
    assert probe == ["/bin/sh", "-c", f"test ! -e {REFUSED_MARKER}"]
    assert "livenessProbe" not in container


def start_wrapper(tmp_path, status, stub_body=None, script_edit=None):
    """Runs the Deployment's wrapper under /bin/sh (dash on Debian, as in the image) with a stub
    idp-sync that records its arguments and exits with `status`."""
    script, container = watch_wrapper()
    stub = tmp_path / "idp-sync"
    stub.write_text("#!/bin/sh\n" f'printf "%s\\n" "$@" > {tmp_path}/args\n' + (stub_body or f"exit {status}\n"))
    stub.chmod(0o755)
    marker = tmp_path / "refused"
    script = script.replace(BINARY, str(stub)).replace(REFUSED_MARKER, str(marker))
    if script_edit:
        script = script_edit(script)
    process = subprocess.Popen(["/bin/sh", "-c", script, "idp-sync-watch", *container["args"]],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    return process, marker


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def finish(process, timeout=10):
    """The wrapper's exit code and output, once nothing it started is left (a sleep, idp-sync)."""
    try:
        out, err = process.communicate(timeout=timeout)
        deadline = time.monotonic() + 5  # a killed sleep takes a moment to be gone
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        leftover = group_alive(process.pid)
    finally:
        if group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
    assert not leftover, "the wrapper left a process behind"
    return process.returncode, out, err


def wait_until(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("status", [0, 1, 64])
def test_watch_wrapper_passes_other_exit_codes_on(tmp_path, status):
    process, marker = start_wrapper(tmp_path, status)
    rc, out, err = finish(process)
    assert rc == status
    assert (tmp_path / "args").read_text().splitlines() == WATCH_COMMAND[1:]
    assert not marker.exists() and out == "" and err == ""


def test_watch_wrapper_passes_sigterm_on_and_exits_with_idp_syncs_code(tmp_path):
    body = (f"trap 'echo term > {tmp_path}/got; exit 0' TERM\n"
            f": > {tmp_path}/started\n"
            "while :; do sleep 0.1; done\n")
    process, marker = start_wrapper(tmp_path, None, stub_body=body)
    wait_until(lambda: (tmp_path / "started").exists())
    process.send_signal(signal.SIGTERM)
    rc, _, err = finish(process)
    assert rc == 0, err
    assert (tmp_path / "got").read_text() == "term\n"
    assert not marker.exists()


def test_watch_wrapper_holds_after_exit_3_and_marks_the_pod_not_ready(tmp_path):
    process, marker = start_wrapper(tmp_path, 3)
    wait_until(marker.exists)
    assert process.poll() is None, "after exit 3 the container must not end (Kubernetes would restart it)"
    probe = subprocess.run(["/bin/sh", "-c", f"test ! -e {marker}"], timeout=10)
    assert probe.returncode != 0, "the readiness probe fails"
    process.send_signal(signal.SIGTERM)
    rc, _, err = finish(process)
    assert rc == 3
    assert "exit 3, refused by the hourly brake; not restarting" in err


def test_watch_wrapper_waits_two_minutes_after_exit_4(tmp_path):
    script, _ = watch_wrapper()
    assert "sleep 120 &" in script
    process, marker = start_wrapper(tmp_path, 4)
    wait_until(lambda: (tmp_path / "args").exists())
    time.sleep(0.5)
    assert process.poll() is None, "exit 4 is not restarted within seconds"
    process.send_signal(signal.SIGTERM)
    rc, _, err = finish(process)
    assert rc == 4 and "exit 4" in err and not marker.exists()
    # And without SIGTERM it ends by itself, with 4 (here after 1 s instead of 120).
    process, _ = start_wrapper(tmp_path, 4, script_edit=lambda s: s.replace("sleep 120 &", "sleep 1 &"))
    rc, _, _ = finish(process)
    assert rc == 4


def test_pvc():
    pvc = by_kind("PersistentVolumeClaim")
    assert pvc["apiVersion"] == "v1"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"]


# ---------------------------------------------------------------- Prometheus and Grafana

METRIC = re.compile(r"\bidp_sync_[a-z0-9_]+\b")


def promtool():
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool not found: apt-get install prometheus (Debian), or the release tarball")
    return exe


def written_metrics():
    """The metric names idp-sync writes, read from the Swift source of the textfile."""
    names = set()
    for path in (REPO / "Sources" / "SyncEngine").glob("*.swift"):
        names |= set(re.findall(r'"(idp_sync_[a-z0-9_]+)"', path.read_text()))
    assert {"idp_sync_last_success_timestamp_seconds", "idp_sync_actions_total", "idp_sync_refused"} <= names
    return names


def test_prometheus_rules_pass_promtool_check():
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout, result.stdout


def test_prometheus_rules_use_only_metrics_idp_sync_writes():
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    assert sorted(rule["alert"] for rule in rules) == [
        "IdPSyncConflict", "IdPSyncNeverSucceeded", "IdPSyncNoRecentSuccess", "IdPSyncRefused",
        "IdPSyncWriteFailures"]
    used = set()
    for rule in rules:
        used |= set(METRIC.findall(rule["expr"]))
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert used and used <= written_metrics(), used - written_metrics()


def dashboard_queries(dashboard):
    queries = [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        queries.append((variable["name"], variable["query"]["query"]))
    return queries


def test_grafana_dashboard_parses_and_takes_its_datasource_as_an_input():
    dashboard = json.loads(DASHBOARD.read_text())
    inputs = {i["name"]: i for i in dashboard["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    sources = [panel["datasource"] for panel in dashboard["panels"]]
    sources += [target["datasource"] for panel in dashboard["panels"] for target in panel["targets"]]
    sources += [variable["datasource"] for variable in dashboard["templating"]["list"]]
    assert sources and all(s == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"} for s in sources), sources
    titles = [panel["title"] for panel in dashboard["panels"]]
    for wanted in ["Last success age", "Exit code", "Gateway actions per hour, by outcome", "Situations",
                   "Refusals", "Run duration", "Directory users"]:
        assert wanted in titles
    assert len(set(panel["id"] for panel in dashboard["panels"])) == len(titles)
    assert dashboard["uid"] and dashboard["title"] == "idp-sync"


def test_grafana_dashboard_queries_only_metrics_idp_sync_writes():
    dashboard = json.loads(DASHBOARD.read_text())
    used = set()
    for title, query in dashboard_queries(dashboard):
        found = set(METRIC.findall(query))
        assert found, f"{title}: {query} queries no idp-sync metric"
        used |= found
    written = written_metrics()
    assert used <= written, used - written


def test_grafana_dashboard_queries_parse(tmp_path):
    """Each panel query through Prometheus' own parser: as recording rules for promtool check rules,
    with Grafana's variables replaced the way Grafana would."""
    dashboard = json.loads(DASHBOARD.read_text())
    rules = []
    for i, (_, query) in enumerate(dashboard_queries(dashboard)):
        if query.startswith("label_values("):
            match = re.fullmatch(r"label_values\((idp_sync_[a-z0-9_]+), instance\)", query)
            assert match, query
            query = match.group(1)
        expr = query.replace("$instance", ".*").replace("$__rate_interval", "5m")
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


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
