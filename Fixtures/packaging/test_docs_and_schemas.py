"""Checks of the project's own documentation, versions and JSON Schemas (python3 -m pytest -q Fixtures/packaging).

- Every key the config reader accepts (Sources/SyncConfig/Reader+Configuration.swift) is described in
  docs/configuration.md, the man page idp-sync.yaml(5) and docs/schema/config.schema.json, and the
  schema names no key the reader refuses.
- One version: VERSION = BuildInfo.swift = CHANGELOG.md = the hand-written man page = the image of
  the CronJob and of the watch Deployment.
- The JSON Schemas are valid, accept the example configs, and agree with `idp-sync check-config`.
- Real output of the built binary ($IDP_SYNC_BIN, which `make test` sets) against the schemas: the
  JSON report of a dry run, a real run, a refused run and a config error, and every journal record,
  whose hash is recomputed as docs/journal.md tells a reader to.
- Nothing in the repository points outside it.
"""

import copy
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

jsonschema = pytest.importorskip("jsonschema", reason="pip install jsonschema (or apt-get install python3-jsonschema)")

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
SCHEMAS = DOCS / "schema"
READER = REPO / "Sources/SyncConfig/Reader+Configuration.swift"
BUILDINFO = REPO / "Sources/IdPSyncCLI/BuildInfo.swift"
MAN5 = DOCS / "man/idp-sync.yaml.5"
VERSION = (REPO / "VERSION").read_text().strip()


def schema(name):
    return json.loads((SCHEMAS / name).read_text())


def validator(name):
    cls = jsonschema.Draft202012Validator
    return cls(schema(name), format_checker=cls.FORMAT_CHECKER)


def errors(name, instance):
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(instance)]


# ---------------------------------------------------------------- configuration keys


def reader_keys():
    """{section: [keys]} from the reader's key lists and its inline `allowed:` lists."""
    text = READER.read_text()
    sections = {}
    for name, body in re.findall(r"static let (\w+)Keys = \[(.*?)\]", text, re.S):
        sections[name] = re.findall(r'"([a-z_]+)"', body)
    for section, body in re.findall(r'mapping\([^)]*?"([a-z.\\()\[\]]+)", allowed: \[(.*?)\]\)', text, re.S):
        key = section.split(".")[-1].split("\\")[0] or section
        sections.setdefault(key, []).extend(re.findall(r'"([a-z_]+)"', body))
    return sections


def test_reader_key_lists_are_found():
    sections = reader_keys()
    for expected in ("top", "ldap", "scim", "gateway", "policy", "journal", "metrics", "match"):
        assert sections.get(expected), f"no key list for {expected} in {READER.name}: {sections}"
    assert "read_deadline" in sections["ldap"]


def all_reader_keys():
    return sorted({key for keys in reader_keys().values() for key in keys})


@pytest.mark.parametrize("key", all_reader_keys())
def test_every_config_key_is_in_the_configuration_reference(key):
    text = (DOCS / "configuration.md").read_text()
    assert re.search(rf"^\| `{re.escape(key)}` \|", text, re.M), (
        f"the config reader accepts '{key}', but docs/configuration.md has no table row for it")


@pytest.mark.parametrize("key", all_reader_keys())
def test_every_config_key_is_in_the_man_page(key):
    assert re.search(rf"(^|[ \"]){re.escape(key)}\b", MAN5.read_text(), re.M), f"'{key}' missing from idp-sync.yaml(5)"


def schema_keys(node, found):
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            found.add(key)
            schema_keys(value, found)
        for value in node.values():
            if isinstance(value, (dict, list)):
                schema_keys(value, found)
    elif isinstance(node, list):
        for value in node:
            schema_keys(value, found)
    return found


def test_config_schema_names_exactly_the_reader_keys():
    assert schema_keys(schema("config.schema.json"), set()) == set(all_reader_keys())


def test_sections_of_the_schema_match_the_reader():
    s = schema("config.schema.json")
    sections = reader_keys()
    ldap, scim = s["properties"]["source"]["oneOf"]
    assert set(s["properties"]) == set(sections["top"])
    assert set(ldap["properties"]) == set(sections["ldap"])
    assert set(scim["properties"]) == set(sections["scim"])
    assert set(s["properties"]["gateways"]["items"]["properties"]) == set(sections["gateway"])
    assert set(s["properties"]["policy"]["properties"]) == set(sections["policy"])


# ---------------------------------------------------------------- versions


def test_one_version_everywhere():
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)
    assert f'static let version = "{VERSION}"' in BUILDINFO.read_text(), "BuildInfo.swift must repeat VERSION"
    assert 'static let commit = "unknown"' in BUILDINFO.read_text(), "the committed BuildInfo.swift names no commit"
    first = re.search(r"^## (\S+)", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert first and first.group(1) == VERSION, "CHANGELOG.md must start with the section of VERSION"
    assert f'"idp-sync {VERSION}"' in MAN5.read_text().splitlines()[2]
    for manifest in ("cronjob.yaml", "watch-deployment.yaml"):
        text = (REPO / "deploy/kubernetes" / manifest).read_text()
        assert f"idp-sync:{VERSION}" in text, manifest


def binary():
    path = os.environ.get("IDP_SYNC_BIN", "")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("IDP_SYNC_BIN is not a built idp-sync (make test sets it)")
    return path


def test_version_names_the_commit():
    out = subprocess.run([binary(), "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    assert re.fullmatch(rf"{re.escape(VERSION)} \(commit (unknown|[0-9a-f]{{7,40}}(-dirty)?)\)", out), out


# ---------------------------------------------------------------- man page, maintainer scripts, container


def test_hand_written_man_page_renders_without_warnings():
    if not shutil.which("groff"):
        pytest.skip("groff not installed")
    result = subprocess.run(["groff", "-man", "-ww", "-z", str(MAN5)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.parametrize("script", ["postinst", "prerm", "postrm"])
def test_maintainer_scripts(script):
    path = REPO / "packaging/debian" / script
    assert os.access(path, os.X_OK)
    text = path.read_text()
    assert text.startswith("#!/bin/sh\n") and "set -e" in text
    subprocess.run(["sh", "-n", str(path)], check=True, timeout=30)
    # The journal is evidence: no maintainer script deletes it.
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        assert not ("/var/lib/idp-sync" in line and re.search(r"\brm\b|\brmdir\b|deluser|userdel", line)), line
    assert "systemctl enable" not in text and "systemctl start" not in text, "units are installed, not enabled"


def test_containerfile_and_cronjob_agree():
    text = (REPO / "deploy/container/Containerfile").read_text()
    assert re.search(r"^FROM \S*debian:bookworm-slim$", text, re.M)
    assert re.search(r"apt-get install [^\n]*/tmp/idp-sync_\*\.deb", text)
    user = re.search(r"^USER (\d+)(?::(\d+))?$", text, re.M)
    assert user and int(user.group(1)) != 0, "the image runs as a numeric non-root user"
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))
    cronjob = yaml.safe_load((REPO / "deploy/kubernetes/cronjob.yaml").read_text())
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == entrypoint == ["/usr/bin/idp-sync"]
    assert pod["securityContext"]["runAsUser"] == int(user.group(1))
    # The watch Deployment runs the same image as the same user, through a /bin/sh wrapper that the
    # image (debian:bookworm-slim) has.
    watch = yaml.safe_load((REPO / "deploy/kubernetes/watch-deployment.yaml").read_text())["spec"]["template"]["spec"]
    assert watch["securityContext"]["runAsUser"] == int(user.group(1))
    assert watch["containers"][0]["command"][0] == "/bin/sh"
    assert f'{entrypoint[0]} "$@" &' in watch["containers"][0]["command"][2]


def test_nothing_points_outside_the_repository():
    if not (REPO / ".git").exists() or not shutil.which("git"):
        pytest.skip("not a git checkout")
    outside = "shared"  # the sibling folder of the checkout; built here so this file does not match
    result = subprocess.run(
        ["git", "-C", str(REPO), "grep", "--untracked", "-n", "-I", "-e", r"\.\./" + outside, "-e", outside + "/docs/"],
        capture_output=True, text=True, timeout=60)
    assert result.stdout == "", "files point outside the repository:\n" + result.stdout


# ---------------------------------------------------------------- schemas against examples


@pytest.mark.parametrize("name", ["config.schema.json", "report.schema.json", "journal-record.schema.json"])
def test_schemas_are_valid(name):
    jsonschema.Draft202012Validator.check_schema(schema(name))


def example_configs():
    configs = {"deploy/config.example.yaml": yaml.safe_load((REPO / "deploy/config.example.yaml").read_text())}
    for doc in yaml.safe_load_all((REPO / "deploy/kubernetes/configmap.yaml").read_text()):
        if doc and doc.get("kind") == "ConfigMap":
            configs["deploy/kubernetes/configmap.yaml"] = yaml.safe_load(doc["data"]["config.yaml"])
    base = configs["deploy/config.example.yaml"]
    # Whole configs in the documents as they are; snippets (a section or two) merged into the example.
    for path in ("README.md", "docs/configuration.md", "docs/install.md", "docs/operations.md"):
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", (REPO / path).read_text(), re.S)):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and "version" in data:
                configs[f"{path} block {i}"] = data
            elif isinstance(data, dict) and set(data) <= set(base):
                configs[f"{path} block {i} (merged)"] = {**copy.deepcopy(base), **data}
    return configs


@pytest.mark.parametrize("name", sorted(example_configs()))
def test_example_configs_match_the_schema(name):
    assert errors("config.schema.json", example_configs()[name]) == []


def test_config_schema_rejects_what_the_reader_rejects():
    base = example_configs()["deploy/config.example.yaml"]
    bad = []
    for mutate in (
        lambda c: c.__setitem__("sorce", {}),
        lambda c: c["source"].__setitem__("page_size", 0),
        lambda c: c["source"].__setitem__("timeout", "30"),
        lambda c: c["source"].__setitem__("bind_password", "x"),
        lambda c: c["gateways"][0].__setitem__("select_tags", []),
        lambda c: c["gateways"][0].__setitem__("select_tags", ["a/b"]),
        lambda c: c["gateways"][0].__setitem__("concurrency", 65),
        lambda c: c["policy"].__setitem__("on_missing", "delete"),
        lambda c: c["policy"].__setitem__("max_disable_percent", 101),
        lambda c: c["metrics"].__setitem__("textfile_path", "/tmp/x.txt"),
        lambda c: c.__setitem__("version", 2),
    ):
        config = copy.deepcopy(base)
        mutate(config)
        bad.append(config)
    for config in bad:
        assert errors("config.schema.json", config), config


def write_config(tmp_path, config):
    credentials = tmp_path / "credentials"
    credentials.mkdir(exist_ok=True)
    (credentials / "ldap").write_text("example-password\n")
    (credentials / "kong").write_text("example-token\n")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, {"PATH": "/usr/bin:/bin", "CREDENTIALS_DIRECTORY": str(credentials)}


@pytest.mark.parametrize("change,valid", [
    ({}, True),
    ({"source": {"read_deadline": "7d"}}, True),
    ({"source": {"read_deadline": "1h30m"}}, True),
    ({"source": {"read_deadline": "15"}}, False),
    ({"source": {"page_size": 100001}}, False),
    ({"source": {"allow_insecure": True}}, True),
    ({"source": {"frobnicate": 1}}, False),
    ({"policy": {"max_shrink_percent": 20.5}}, True),
    ({"policy": {"protected": []}}, True),
    ({"gateways": {"retries": 11}}, False),
    ({"gateways": {"match": {"consumer": "username", "user": "username"}}}, True),
    ({"gateways": {"match": {"consumer": "custom_id"}}}, False),
])
def test_schema_and_check_config_agree(tmp_path, change, valid):
    config = copy.deepcopy(example_configs()["deploy/config.example.yaml"])
    for section, values in change.items():
        target = config[section][0] if section == "gateways" else config[section]
        target.update(values)
    assert (errors("config.schema.json", config) == []) == valid
    path, env = write_config(tmp_path, config)
    result = subprocess.run([binary(), "check-config", "--config", str(path)],
                            capture_output=True, text=True, env=env, timeout=60)
    assert (result.returncode == 0) == valid, result.stdout + result.stderr


# ---------------------------------------------------------------- real output against the schemas


def free_port_file_wait(path, proc, what):
    for _ in range(200):
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited {proc.returncode}")
        time.sleep(0.05)
    raise AssertionError(f"{what} did not start")


@pytest.fixture(scope="module")
def demo_servers(tmp_path_factory):
    if not (os.path.exists("/usr/sbin/slapd") and shutil.which("ldapwhoami")):
        pytest.skip("slapd / ldap-utils not installed")
    base = tmp_path_factory.mktemp("servers")
    ldap_dir = base / "slapd"
    started = subprocess.run(
        [str(REPO / "Fixtures/ldap/slapd-fixture"), "start", "--dir", str(ldap_dir),
         "--ldif", str(REPO / "Fixtures/ldap/demo.ldif"), "--users", "30"],
        capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    ldap = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    port_file = base / "kong.port"
    kong = subprocess.Popen(
        ["python3", str(REPO / "Fixtures/kong/kong_admin_server.py"), "--port", "0", "--port-file", str(port_file),
         "--seed", str(REPO / "Fixtures/demo/kong-seed.json")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = free_port_file_wait(port_file, kong, "the Kong test server")
        yield ldap, f"http://127.0.0.1:{port}", base
    finally:
        kong.send_signal(signal.SIGTERM)
        kong.wait(timeout=30)
        subprocess.run([str(REPO / "Fixtures/ldap/slapd-fixture"), "stop", "--dir", str(ldap_dir)],
                       capture_output=True, timeout=60)


def demo_config(ldap, kong_url, directory, **policy):
    (directory / "ldap-password").write_text(ldap["LDAP_BIND_PASSWORD"] + "\n")
    config = {
        "version": 1,
        "source": {"type": "ldap", "url": ldap["LDAP_URL"], "bind_dn": ldap["LDAP_BIND_DN"],
                   "bind_password_file": str(directory / "ldap-password"), "base_dn": ldap["LDAP_BASE_DN"],
                   "page_size": 20, "disabled_filter": "(employeeType=left)"},
        "gateways": [{"name": "demo", "type": "kong", "admin_url": kong_url, "select_tags": ["idp-managed"],
                      "match": {"consumer": "custom_id", "user": "id"}}],
        "policy": {"grace_period": "24h", "on_missing": "disable", "max_disable": 10, "max_disable_percent": 50,
                   "protected": ["svc-*"], **policy},
        "journal": {"path": str(directory / "journal.jsonl")},
    }
    assert errors("config.schema.json", config) == []
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_json(*args):
    result = subprocess.run([binary(), *args, "--output", "json", "--log-level", "error"],
                            capture_output=True, text=True, timeout=120)
    report = json.loads(result.stdout)
    assert report["exit_code"] == result.returncode, result.stderr
    assert errors("report.schema.json", report) == [], json.dumps(report, indent=1)
    return report


def check_journal(path):
    """Every record against the schema, and its hash recomputed as docs/journal.md shows."""
    records = []
    prev = "0" * 64
    for line in path.read_text().splitlines():
        record = json.loads(line)
        assert errors("journal-record.schema.json", record) == [], line
        claimed = record.pop("hash")
        body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(body.encode()).hexdigest() == claimed, line
        assert record["prev"] == prev
        prev = claimed
        records.append(record)
    return records


def test_real_reports_and_journal_match_the_schemas(demo_servers, tmp_path):
    binary()
    ldap, kong_url, _ = demo_servers
    config = demo_config(ldap, kong_url, tmp_path)

    dry = run_json("sync", "--config", str(config), "--dry-run")
    assert dry["dry_run"] is True and dry["run"] is None and dry["actions"], dry

    # A brake: nothing may be disabled; a real run is refused and journals run-refused.
    braked = demo_config(ldap, kong_url, tmp_path, max_disable=0, max_disable_percent=0)
    refused = run_json("sync", "--config", str(braked))
    assert refused["exit_code"] == 3 and refused["refused"]["cause"] == "brake-count", refused

    config = demo_config(ldap, kong_url, tmp_path)
    applied = run_json("sync", "--config", str(config))
    assert applied["exit_code"] == 0 and all(a["outcome"] == "applied" for a in applied["actions"]), applied
    again = run_json("sync", "--config", str(config))
    assert again["actions"] == []

    missing = run_json("sync", "--config", str(tmp_path / "no-such-config.yaml"))
    assert missing["exit_code"] == 1 and missing["errors"]

    restored = run_json("restore", "--config", str(config), "--run", applied["run"], "--dry-run")
    assert restored["source"]["type"] == "journal" and restored["actions"], restored

    rotated = subprocess.run([binary(), "journal", "rotate", "--config", str(config)],
                             capture_output=True, text=True, timeout=60)
    assert rotated.returncode == 0, rotated.stderr

    old = [p for p in tmp_path.glob("journal.jsonl.*") if p.suffix not in (".head", ".lock")]
    assert len(old) == 1
    events = [r["event"] for r in check_journal(old[0])]
    assert {"run-started", "intent", "outcome", "run-finished", "run-refused"} <= set(events), events
    started = [r["event"] for r in check_journal(tmp_path / "journal.jsonl")]
    assert started == ["journal-started"]
    for report in (dry, refused, applied, again, missing, restored):
        if "format_version" in report:
            assert report["format_version"] == "1"
