"""Checks of the slapd test fixture (run: python3 -m pytest -q Fixtures/ldap).

Needs slapd and ldap-utils (Debian: apt-get install -y slapd ldap-utils); skipped otherwise.
"""
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "slapd-fixture"
GEN = HERE / "gen-users.py"
DEMO = HERE / "demo.ldif"

USERS = 120
SIZE_LIMIT = 50
DEMO_USERS = 6  # alice, bob, carol, dave, erin, svc-ci

pytestmark = pytest.mark.skipif(
    not (os.path.exists("/usr/sbin/slapd") and shutil.which("ldapsearch")),
    reason="slapd / ldap-utils not installed",
)

LDAP_ENV = dict(os.environ, LDAPNOINIT="1")  # ignore ~/.ldaprc and /etc/ldap/ldap.conf


def user_uuid(uid):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "user:" + uid))


def run(*args, check=True, timeout=60):
    p = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        env=LDAP_ENV,
        timeout=timeout,
    )
    if check and p.returncode != 0:
        raise AssertionError(
            f"{args} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
        )
    return p


def parse_env(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def dns(ldif):
    return [line[4:] for line in ldif.splitlines() if line.startswith("dn: ")]


def process_gone(pid):
    """No live process: /proc entry gone or a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def port_closed(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", int(port))) != 0


@pytest.fixture(scope="module")
def ldap(tmp_path_factory):
    d = tmp_path_factory.mktemp("slapd")
    p = run(FIXTURE, "start", "--dir", d, "--ldif", DEMO,
            "--users", USERS, "--size-limit", SIZE_LIMIT)
    env = parse_env(p.stdout)
    env["DIR"] = str(d)
    yield env
    run(FIXTURE, "stop", "--dir", d)


def search(env, *args, bind=True, base=None):
    cmd = ["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", env["LDAP_URL"],
           "-b", base or env["LDAP_BASE_DN"]]
    if bind:
        cmd += ["-D", env["LDAP_BIND_DN"], "-w", env["LDAP_BIND_PASSWORD"]]
    return run(*cmd, *args, check=False)


def test_env_output(ldap):
    port = ldap["LDAP_PORT"]
    assert ldap["LDAP_URL"] == f"ldap://127.0.0.1:{port}"
    assert ldap["LDAP_BIND_DN"] == "cn=sync,ou=system,dc=example,dc=org"
    assert ldap["LDAP_BIND_PASSWORD"] == "sync-secret"
    assert ldap["LDAP_BASE_DN"] == "ou=people,dc=example,dc=org"
    assert int(ldap["LDAP_PID"]) > 0
    file_env = parse_env((Path(ldap["DIR"]) / "env").read_text())
    assert file_env == {k: v for k, v in ldap.items() if k != "DIR"}
    assert Path(ldap["DIR"], "slapd.pid").read_text().strip() == ldap["LDAP_PID"]


def test_bind_as_sync(ldap):
    p = run("ldapwhoami", "-x", "-H", ldap["LDAP_URL"],
            "-D", ldap["LDAP_BIND_DN"], "-w", ldap["LDAP_BIND_PASSWORD"])
    assert p.stdout.strip() == "dn:" + ldap["LDAP_BIND_DN"]
    bad = run("ldapwhoami", "-x", "-H", ldap["LDAP_URL"],
              "-D", ldap["LDAP_BIND_DN"], "-w", "wrong", check=False)
    assert bad.returncode == 49  # invalidCredentials


def test_wrong_passwords_do_not_lock_the_sync_user(ldap):
    # The default policy locks after 5 failures; cn=sync has its own no-lockout policy.
    for _ in range(7):
        run("ldapwhoami", "-x", "-H", ldap["LDAP_URL"],
            "-D", ldap["LDAP_BIND_DN"], "-w", "wrong", check=False)
    run("ldapwhoami", "-x", "-H", ldap["LDAP_URL"],
        "-D", ldap["LDAP_BIND_DN"], "-w", ldap["LDAP_BIND_PASSWORD"])


def test_plain_search_stops_at_size_limit(ldap):
    p = search(ldap, "(objectClass=inetOrgPerson)", "dn")
    assert p.returncode == 4, p.stderr  # sizeLimitExceeded
    assert "Size limit exceeded" in p.stderr
    assert len(dns(p.stdout)) == SIZE_LIMIT


@pytest.mark.parametrize("page", [25, 500])
def test_paged_search_reads_everything(ldap, page):
    p = search(ldap, "-E", f"pr={page}/noprompt", "(objectClass=inetOrgPerson)", "uid")
    assert p.returncode == 0, p.stderr
    found = dns(p.stdout)
    assert len(found) == USERS + DEMO_USERS
    assert len(set(found)) == len(found)
    assert "uid=user000120,ou=people,dc=example,dc=org" in found
    assert "uid=svc-ci,ou=people,dc=example,dc=org" in found


def test_entry_uuid_is_deterministic(ldap):
    p = search(ldap, "(uid=user000001)", "entryUUID")
    assert p.returncode == 0, p.stderr
    assert f"entryUUID: {user_uuid('user000001')}" in p.stdout.splitlines()
    assert user_uuid("user000001") == "4d6633dd-d281-5916-868b-1bf9d6ca2731"
    p = search(ldap, "(uid=alice)", "entryUUID")
    assert f"entryUUID: {user_uuid('alice')}" in p.stdout.splitlines()


def test_lock_attributes_readable_by_sync(ldap):
    p = search(ldap, "(uid=carol)", "pwdAccountLockedTime")
    assert p.returncode == 0, p.stderr
    assert "pwdAccountLockedTime: 000001010000Z" in p.stdout.splitlines()
    # Operational: not returned by "*", only by name (or "+").
    p = search(ldap, "(uid=carol)", "*")
    assert "pwdAccountLockedTime" not in p.stdout
    p = search(ldap, "(uid=erin)", "pwdAccountLockedTime")
    assert "pwdAccountLockedTime: 20261130090000Z" in p.stdout.splitlines()
    p = search(ldap, "(pwdAccountLockedTime=000001010000Z)", "uid")
    assert dns(p.stdout) == ["uid=carol,ou=people,dc=example,dc=org"]
    p = search(ldap, "(employeeType=left)", "uid")
    assert dns(p.stdout) == ["uid=dave,ou=people,dc=example,dc=org"]


def test_anonymous_search_refused_or_empty(ldap):
    for base in (ldap["LDAP_BASE_DN"], "dc=example,dc=org"):
        p = search(ldap, "(objectClass=*)", bind=False, base=base)
        assert p.returncode in (0, 32, 50), p.stderr  # success/noSuchObject/insufficientAccess
        assert dns(p.stdout) == []


def test_sync_cannot_read_password_hashes(ldap):
    p = search(ldap, "(cn=sync)", "userPassword", base="ou=system,dc=example,dc=org")
    assert p.returncode == 0, p.stderr
    assert "cn=sync,ou=system,dc=example,dc=org" in dns(p.stdout)
    assert "userPassword" not in p.stdout


def test_stop_leaves_no_process(tmp_path):
    d = tmp_path / "fx"
    p = run(FIXTURE, "start", "--dir", d, "--users", 3)
    env = parse_env(p.stdout)
    pid = int(env["LDAP_PID"])
    assert not process_gone(pid)
    run(FIXTURE, "stop", "--dir", d)
    assert process_gone(pid)
    assert port_closed(env["LDAP_PORT"])
    assert not (d / "slapd.pid").exists()
    run(FIXTURE, "stop", "--dir", d)  # idempotent
    run(FIXTURE, "stop", "--dir", tmp_path / "never-started")


def test_start_failure_is_reported(tmp_path):
    bad = tmp_path / "bad.ldif"
    bad.write_text("dn: uid=x,ou=nowhere,dc=example,dc=org\nobjectClass: inetOrgPerson\n"
                   "uid: x\ncn: x\nsn: x\n")
    p = run(FIXTURE, "start", "--dir", tmp_path / "fx", "--ldif", bad, check=False)
    assert p.returncode != 0
    assert "slapadd failed" in p.stderr
    assert p.stdout == ""


def test_gen_users_flags():
    out = run("python3", GEN, "--count", 12, "--locked-every", 4, "--left-every", 6,
              "--temp-locked-every", 3).stdout
    entries = {e.split("\n", 1)[0][4:]: e for e in out.strip().split("\n\n")}
    assert len(entries) == 12

    def attr(i, name):
        e = entries[f"uid=user{i:06d},ou=people,dc=example,dc=org"]
        return [l.split(": ", 1)[1] for l in e.splitlines() if l.startswith(name + ": ")]

    assert attr(4, "pwdAccountLockedTime") == ["000001010000Z"]
    assert attr(12, "pwdAccountLockedTime") == ["000001010000Z"]  # admin lock wins
    assert attr(3, "pwdAccountLockedTime") == ["20261130090000Z"]
    assert attr(6, "employeeType") == ["left"]
    assert attr(1, "pwdAccountLockedTime") == [] and attr(1, "employeeType") == []
    assert attr(7, "entryUUID") == [user_uuid("user000007")]
    again = run("python3", GEN, "--count", 12, "--locked-every", 4, "--left-every", 6,
                "--temp-locked-every", 3).stdout
    assert again == out


def test_syncprov_unlimited_and_restart(tmp_path):
    d = tmp_path / "fx"
    p = run(FIXTURE, "start", "--dir", d, "--users", 60, "--size-limit", "unlimited", "--syncprov")
    env = parse_env(p.stdout)
    try:
        # No size limit: a plain search reads all 60 users; syncprov answers a refreshOnly sync.
        # (critical: a slapd without syncprov answers 12, see the next test).
        p = search(env, "-E", "!sync=ro", "(objectClass=inetOrgPerson)", "1.1")
        assert p.returncode == 0, p.stderr
        assert len(dns(p.stdout)) == 60
        run("ldapdelete", "-x", "-H", env["LDAP_URL"], "-D", "cn=admin,dc=example,dc=org",
            "-w", "admin-secret", "uid=user000001,ou=people,dc=example,dc=org")
        # restart: same port and data, a new process; the old log moves aside.
        p = run(FIXTURE, "restart", "--dir", d)
        again = parse_env(p.stdout)
        assert again["LDAP_PORT"] == env["LDAP_PORT"]
        assert again["LDAP_PID"] != env["LDAP_PID"] and process_gone(int(env["LDAP_PID"]))
        assert (d / "slapd.log.1").exists()
        p = search(again, "(objectClass=inetOrgPerson)", "1.1")
        assert p.returncode == 0, p.stderr
        assert len(dns(p.stdout)) == 59
        # restart of a stopped fixture starts it.
        run(FIXTURE, "stop", "--dir", d)
        p = run(FIXTURE, "restart", "--dir", d)
        assert parse_env(p.stdout)["LDAP_PORT"] == env["LDAP_PORT"]
    finally:
        run(FIXTURE, "stop", "--dir", d)
    (tmp_path / "nothing").mkdir()
    p = run(FIXTURE, "restart", "--dir", tmp_path / "nothing", check=False)
    assert p.returncode != 0 and "use start" in p.stderr


def test_without_syncprov_the_sync_control_is_refused(ldap):
    p = search(ldap, "-E", "!sync=ro", "(uid=alice)", "1.1")
    assert p.returncode == 12, p.stderr  # unavailableCriticalExtension
