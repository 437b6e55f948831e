"""Checks of fake_ldap_server.py (run: python3 -m pytest -q Fixtures/ldap/test_fake_ldap_server.py).

The BER tests need nothing but python3; the rest talk to the server with the real OpenLDAP client
(`ldapsearch`, Debian: apt-get install -y ldap-utils) and are skipped without it.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SERVER = HERE / "fake_ldap_server.py"
sys.path.insert(0, str(HERE))
import fake_ldap_server as fls  # noqa: E402

BIND_DN = "cn=sync,ou=system,dc=example,dc=org"
PASSWORD = "sync-secret"
BASE_DN = "ou=people,dc=example,dc=org"
LDAP_ENV = dict(os.environ, LDAPNOINIT="1")  # ignore ~/.ldaprc and /etc/ldap/ldap.conf

needs_ldapsearch = pytest.mark.skipif(not shutil.which("ldapsearch"),
                                      reason="ldap-utils not installed")


# ---------------------------------------------------------------- helpers

class Running:
    def __init__(self, proc, port, port_file):
        self.proc, self.port, self.port_file = proc, port, port_file
        self.url = f"ldap://127.0.0.1:{port}"

    def stop(self):
        """SIGTERM; the exit code (0 expected)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("fake_ldap_server ignored SIGTERM for 5 s")


@pytest.fixture
def start(tmp_path):
    started = []

    def _start(mode, *extra, auth=True):
        port_file = tmp_path / f"port-{len(started)}"
        args = [sys.executable, str(SERVER), "--port-file", str(port_file), "--mode", mode]
        if auth:
            args += ["--bind-dn", BIND_DN, "--password", PASSWORD]
        log = open(tmp_path / f"server-{len(started)}.log", "w")
        proc = subprocess.Popen(args + [str(a) for a in extra], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while not port_file.exists():
            if proc.poll() is not None:
                raise AssertionError(f"server exited {proc.returncode}: "
                                     f"{(tmp_path / f'server-{len(started)}.log').read_text()}")
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("no port file after 10 s")
            time.sleep(0.02)
        srv = Running(proc, int(port_file.read_text()), port_file)
        started.append(srv)
        return srv

    yield _start
    for srv in started:
        assert srv.stop() == 0


def ldapsearch_args(srv, password=PASSWORD, bind=True):
    args = ["ldapsearch", "-x", "-H", srv.url]
    if bind:
        args += ["-D", BIND_DN, "-w", password]
    return args + ["-b", BASE_DN, "-E", "pr=2/noprompt", "-z", "0", "-l", "5", "uid"]


def run_ldapsearch(srv, **kw):
    return subprocess.run(ldapsearch_args(srv, **kw), capture_output=True, text=True,
                          env=LDAP_ENV, timeout=5)


def stream_ldapsearch(srv, tmp_path, seconds=2.0):
    """Run ldapsearch for `seconds`; it must still be running then. (stdout, stderr)."""
    out, err = tmp_path / "ldapsearch.out", tmp_path / "ldapsearch.err"
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen(ldapsearch_args(srv), stdout=o, stderr=e, env=LDAP_ENV)
    try:
        time.sleep(seconds)
        still_running = proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    text = out.read_text()
    assert still_running, (f"ldapsearch stopped by itself (exit {proc.returncode}): "
                           f"{err.read_text()}\n{text[-2000:]}")
    # Killed mid-write (stdout to a file is block-buffered): keep only whole LDIF blocks.
    return text[:text.rfind("\n\n") + 1], err.read_text()


def dns(text):
    return [l[4:] for l in text.splitlines() if l.startswith("dn: ")]


def values(text, attr):
    return [l.split(": ", 1)[1] for l in text.splitlines() if l.startswith(attr + ": ")]


class Client:
    """A raw LDAP client over a socket, built on the server's own BER helpers."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.next_id = 1

    def close(self):
        self.sock.close()

    def send(self, op, controls=b""):
        mid = self.next_id
        self.next_id += 1
        self.sock.sendall(fls.message(mid, op, controls))
        return mid

    def recv(self):
        data = fls.read_message(self.sock)
        if data is None:
            return None
        return fls.parse_message(data)

    def bind(self, dn, password):
        mid = self.send(fls.ber_seq(fls.ber_int(3), fls.ber_str(dn),
                                    fls.ber_str(password, fls.AUTH_SIMPLE),
                                    tag=fls.BIND_REQUEST))
        rid, tag, value, _ = self.recv()
        assert (rid, tag) == (mid, fls.BIND_RESPONSE)
        return result_code(value)

    def search(self, paged=None):
        """One search; (entries as [(dn, {attr: [values]})], result code, controls of the Done)."""
        req = fls.ber_seq(
            fls.ber_str(BASE_DN), fls.ber_enum(2), fls.ber_enum(0), fls.ber_int(0),
            fls.ber_int(0), fls.ber_bool(False),
            fls.ber_str("objectClass", 0x87),  # present filter (objectClass=*)
            fls.ber_seq(fls.ber_str("uid"), fls.ber_str("entryUUID")),
            tag=fls.SEARCH_REQUEST)
        controls = b""
        if paged is not None:
            size, cookie = paged
            controls = fls.ber_seq(fls.ber_str(fls.PAGED_RESULTS_OID), fls.ber_bool(False),
                                   fls.ber_str(fls.ber_seq(fls.ber_int(size), fls.ber_str(cookie))))
        mid = self.send(req, controls)
        entries = []
        while True:
            msg = self.recv()
            assert msg is not None, "connection closed during a search"
            rid, tag, value, ctrls = msg
            assert rid == mid
            if tag == fls.SEARCH_RESULT_ENTRY:
                (_, dn), (_, attrs) = fls.decode_all(value)
                parsed = {}
                for _, a in fls.decode_all(attrs):
                    (_, name), (_, vals) = fls.decode_all(a)
                    parsed[name.decode()] = [v.decode() for _, v in fls.decode_all(vals)]
                entries.append((dn.decode(), parsed))
            else:
                assert tag == fls.SEARCH_RESULT_DONE
                return entries, result_code(value), ctrls


def result_code(value):
    fields = fls.decode_all(value)
    assert [t for t, _ in fields[:3]] == [fls.ENUMERATED, fls.OCTET_STRING, fls.OCTET_STRING]
    return fls.decode_int(fields[0][1])


# ---------------------------------------------------------------- BER

@pytest.mark.parametrize("n,encoded", [
    (0, "020100"), (1, "020101"), (127, "02017f"), (128, "02020080"), (255, "020200ff"),
    (256, "02020100"), (-1, "0201ff"), (-128, "020180"), (-129, "0202ff7f"),
    (100000, "02030186a0"), (2**31 - 1, "02047fffffff"),
])
def test_integer_encoding(n, encoded):
    assert fls.ber_int(n).hex() == encoded
    tag, value, end = fls.decode_tlv(bytes.fromhex(encoded))
    assert (tag, fls.decode_int(value), end) == (fls.INTEGER, n, len(encoded) // 2)


@pytest.mark.parametrize("size,header", [
    (0, "0400"), (127, "047f"), (128, "048180"), (255, "0481ff"), (256, "04820100"),
    (70000, "0483011170"),
])
def test_length_encoding_short_and_long_form(size, header):
    encoded = fls.ber_str(b"x" * size)
    assert encoded[:len(header) // 2].hex() == header
    tag, value, end = fls.decode_tlv(encoded)
    assert (tag, len(value), end) == (fls.OCTET_STRING, size, len(encoded))


def test_decoder_rejects_bad_input():
    for bad in ["04", "0405616263", "0480", "048561", "04810161"[:6]]:
        with pytest.raises(fls.BERError):
            fls.decode_tlv(bytes.fromhex(bad))
    # a non-minimal long-form length is still accepted (BER, not DER)
    assert fls.decode_tlv(bytes.fromhex("048103616263"))[1] == b"abc"


def test_paged_control_round_trip():
    ctrl = fls.paged_control(b"page-7", size=5)
    (oid, critical, value), = fls.parse_controls(ctrl)
    assert (oid, critical) == (fls.PAGED_RESULTS_OID, False)
    assert fls.parse_paged_control([(oid, critical, value)]) == (5, b"page-7")
    assert fls.parse_paged_control([("1.2.3", True, b"")]) is None


# ---------------------------------------------------------------- the server, with ldapsearch

@needs_ldapsearch
def test_endless_cookie_never_ends(start, tmp_path):
    srv = start("endless-cookie")
    out, err = stream_ldapsearch(srv, tmp_path)
    found = dns(out)
    assert len(found) > 20, out[-2000:]
    uids = values(out, "uid")
    assert len(uids) == len(found)
    assert uids == [f"fake{i}" for i in range(1, len(uids) + 1)]
    assert found[:2] == [f"uid=fake1,{BASE_DN}", f"uid=fake2,{BASE_DN}"]
    uuids = values(out, "entryUUID")
    assert len(set(uuids)) == len(uuids)
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                            u) for u in uuids)
    cookies = values(out, "pagedresults")
    assert len(cookies) > 10 and all(c != "cookie=" for c in cookies)
    assert cookies[0] == "cookie=cGFnZS0x"  # base64("page-1")
    assert "result: 0 Success" in out
    assert err == ""  # libldap does not complain about a cookie that never ends


@needs_ldapsearch
def test_endless_empty_pages_never_end(start, tmp_path):
    srv = start("endless-empty-pages")
    out, err = stream_ldapsearch(srv, tmp_path)
    assert dns(out) == []
    cookies = values(out, "pagedresults")
    assert len(cookies) > 20 and all(c != "cookie=" for c in cookies)
    assert err == ""


@needs_ldapsearch
def test_same_cookie_repeats_with_empty_pages(start, tmp_path):
    srv = start("same-cookie")
    out, err = stream_ldapsearch(srv, tmp_path)
    assert dns(out) == [f"uid=fake1,{BASE_DN}", f"uid=fake2,{BASE_DN}"]
    cookies = values(out, "pagedresults")
    assert len(cookies) > 10 and set(cookies) == {"cookie=c2FtZQ=="}  # base64("same")
    assert err == ""


@needs_ldapsearch
def test_no_page_control_ends_after_one_page(start):
    srv = start("no-page-control")
    p = run_ldapsearch(srv)
    # Recorded behaviour of OpenLDAP 2.5 ldapsearch: a paged search whose SearchResultDone has no
    # paged-results response control is taken as the last page, silently, with exit 0.
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert dns(p.stdout) == [f"uid=fake1,{BASE_DN}", f"uid=fake2,{BASE_DN}"]
    assert "# numEntries: 2" in p.stdout
    assert "result: 0 Success" in p.stdout
    assert values(p.stdout, "pagedresults") == [] and values(p.stdout, "control") == []


@needs_ldapsearch
def test_wrong_password_is_invalid_credentials(start):
    srv = start("endless-cookie")
    p = run_ldapsearch(srv, password="wrong")
    assert p.returncode == 49, p.stderr
    assert "Invalid credentials (49)" in p.stderr
    assert dns(p.stdout) == []


@needs_ldapsearch
def test_anonymous_bind_succeeds(start):
    srv = start("no-page-control")
    p = run_ldapsearch(srv, bind=False)
    assert p.returncode == 0, p.stderr
    assert len(dns(p.stdout)) == 2


@needs_ldapsearch
def test_any_simple_bind_succeeds_without_bind_dn(start):
    srv = start("no-page-control", auth=False)
    p = run_ldapsearch(srv, password="anything")
    assert p.returncode == 0, p.stderr


@needs_ldapsearch
def test_max_pages_closes_the_connection(start):
    srv = start("endless-cookie", "--max-pages", 3)
    p = run_ldapsearch(srv)
    # libldap sees the connection close in the middle of paging: ldapsearch fails (80 seen).
    assert p.returncode != 0
    assert len(dns(p.stdout)) == 6
    assert values(p.stdout, "pagedresults")[-1] == "cookie=cGFnZS0z"  # base64("page-3")


# ---------------------------------------------------------------- the server, raw protocol

def test_raw_protocol(start):
    srv = start("endless-cookie")
    c = Client(srv.port)
    try:
        assert c.bind(BIND_DN, "wrong") == fls.INVALID_CREDENTIALS
        assert c.bind("cn=other", PASSWORD) == fls.INVALID_CREDENTIALS
        assert c.bind(BIND_DN, "") == fls.UNWILLING_TO_PERFORM
        assert c.bind("", "") == fls.SUCCESS
        assert c.bind(BIND_DN.upper(), PASSWORD) == fls.SUCCESS

        # pages: 2 entries each, never-empty cookie, uid counting up across pages
        cookie = b""
        for page in range(1, 4):
            entries, code, ctrls = c.search(paged=(2, cookie))
            assert code == 0
            assert [dn for dn, _ in entries] == [f"uid=fake{2 * page - 1},{BASE_DN}",
                                                 f"uid=fake{2 * page},{BASE_DN}"]
            assert set(entries[0][1]) == {"uid", "entryUUID"}
            size, cookie = fls.parse_paged_control(ctrls)
            assert cookie == b"page-%d" % page

        # size 0 abandons the paged search (RFC 2696): empty cookie, no entries
        entries, code, ctrls = c.search(paged=(0, cookie))
        assert (entries, code, fls.parse_paged_control(ctrls)) == ([], 0, (0, b""))

        # no paged control: one page of entries, Done without controls
        entries, code, ctrls = c.search()
        assert (len(entries), code, ctrls) == (2, 0, [])

        # abandon is ignored (no answer); an extended request gets protocolError
        c.send(fls.tlv(fls.ABANDON_REQUEST, fls.encode_int_body(2)))
        mid = c.send(fls.ber_seq(fls.ber_str("1.3.6.1.4.1.1466.20037", 0x80),
                                 tag=fls.EXTENDED_REQUEST))  # StartTLS
        rid, tag, value, _ = c.recv()
        assert (rid, tag, result_code(value)) == (mid, fls.EXTENDED_RESPONSE, fls.PROTOCOL_ERROR)

        # unbind closes the connection
        c.send(fls.tlv(fls.UNBIND_REQUEST, b""))
        assert c.recv() is None
    finally:
        c.close()


def test_long_form_lengths_in_requests(start):
    long_dn = "cn=" + "x" * 300 + ",dc=example,dc=org"
    srv = start("endless-cookie", auth=False)
    c = Client(srv.port)
    try:
        assert c.bind(long_dn, "p" * 70000) == fls.SUCCESS  # message length in 3 octets
        big_cookie = b"c" * 1000
        entries, code, ctrls = c.search(paged=(2, big_cookie))
        assert len(entries) == 2 and code == 0
    finally:
        c.close()
    srv2 = start("endless-cookie")
    c = Client(srv2.port)
    try:
        assert c.bind(long_dn, PASSWORD) == fls.INVALID_CREDENTIALS
    finally:
        c.close()


def test_garbage_closes_only_that_connection(start):
    srv = start("endless-empty-pages")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"\x04\x03abc")  # not a SEQUENCE
        assert s.recv(100) == b""
    c = Client(srv.port)
    try:
        entries, code, ctrls = c.search(paged=(5, b""))
        assert (entries, code, fls.parse_paged_control(ctrls)) == ([], 0, (0, b"page-1"))
    finally:
        c.close()


def test_port_file_and_sigterm_exit_zero(start, tmp_path):
    srv = start("endless-cookie")
    assert srv.port_file.read_text().strip() == str(srv.port)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    c = Client(srv.port)  # an open, mid-paging connection must not keep it alive
    try:
        c.bind(BIND_DN, PASSWORD)
        c.search(paged=(2, b""))
        assert srv.stop() == 0
    finally:
        c.close()
    with socket.socket() as s:
        s.settimeout(1)
        assert s.connect_ex(("127.0.0.1", srv.port)) != 0


def test_cli_rejects_bad_arguments(tmp_path):
    for extra in (["--mode", "nope"], ["--mode", "endless-cookie", "--bind-dn", "cn=x"],
                  ["--mode", "endless-cookie", "--max-pages", "0"]):
        p = subprocess.run([sys.executable, str(SERVER), "--port-file", str(tmp_path / "p"),
                            *extra], capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, p.stderr
        assert not (tmp_path / "p").exists()


# ---------------------------------------------------------------- sync modes (RFC 4533)

def sync_search(c, cookie=None):
    value = fls.ber_seq(fls.ber_enum(3), *([fls.ber_str(cookie)] if cookie is not None else []))
    controls = fls.ber_seq(fls.ber_str(fls.SYNC_REQUEST_OID), fls.ber_bool(True), fls.ber_str(value))
    req = fls.ber_seq(
        fls.ber_str(BASE_DN), fls.ber_enum(2), fls.ber_enum(0), fls.ber_int(0), fls.ber_int(0),
        fls.ber_bool(False), fls.ber_str("objectClass", 0x87), fls.ber_seq(fls.ber_str("uid")),
        tag=fls.SEARCH_REQUEST)
    return c.send(req, controls)


def sync_state(ctrls):
    [(oid, _critical, value)] = ctrls
    assert oid == fls.SYNC_STATE_OID
    _, content, _ = fls.decode_tlv(value)
    fields = fls.decode_all(content)
    return fls.decode_int(fields[0][1]), fields[1][1]


def test_sync_refresh_required(start):
    srv = start("sync-refresh-required")
    c = Client(srv.port)
    try:
        mid = sync_search(c)
        for uid in ("fake1", "fake2"):
            rid, tag, value, ctrls = c.recv()
            assert (rid, tag) == (mid, fls.SEARCH_RESULT_ENTRY)
            assert sync_state(ctrls) == (1, fls.fake_uuid(uid).bytes)
        rid, tag, value, _ = c.recv()
        assert (rid, tag) == (mid, fls.INTERMEDIATE_RESPONSE)
        (ntag, name), (vtag, info) = fls.decode_all(value)
        assert (ntag, name.decode(), vtag) == (0x80, fls.SYNC_INFO_OID, 0x81)
        assert info == bytes.fromhex("a10d040b") + b"fake-cookie"
        assert c.recv() is None  # closed: a client must come back with its cookie
    finally:
        c.close()
    c = Client(srv.port)
    try:
        mid = sync_search(c, b"fake-cookie")
        rid, tag, value, _ = c.recv()
        assert (rid, tag, result_code(value)) == (mid, fls.SEARCH_RESULT_DONE, 4096)
        entries, code, ctrls = c.search()  # a plain search: one page, no controls
        assert (len(entries), code, ctrls) == (2, 0, [])
    finally:
        c.close()


def test_sync_hostile_takes_turns(start):
    srv = start("sync-hostile")
    kinds = []
    for _ in range(4):
        c = Client(srv.port)
        try:
            mid = sync_search(c)
            rid, tag, value, ctrls = c.recv()
            assert rid == mid
            if tag == fls.INTERMEDIATE_RESPONSE:
                kinds.append(("info", fls.decode_all(value)[1][1]))
            elif ctrls:
                kinds.append(("state", len(sync_state(ctrls)[1])))
            else:
                kinds.append(("bare", tag))
        finally:
            c.close()
    assert kinds == [("state", 15), ("info", bytes.fromhex("a30531030401")),
                     ("bare", fls.SEARCH_RESULT_ENTRY), ("state", 15)]
