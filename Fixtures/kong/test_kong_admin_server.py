"""Tests for kong_admin_server.py: the Kong behaviours it claims (KONG-FACTS.md) and its
/__test/ control API. Run: python3 -m pytest -q Fixtures/kong

Set KONG_FIXTURE_BIG=0 to skip the 100k-consumer walk (it takes a few seconds)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

SERVER = Path(__file__).with_name("kong_admin_server.py")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class Running:
    def __init__(self, proc, port):
        self.proc, self.port = proc, port

    def client(self, token=None):
        return Client(self.port, token)


def start_server(tmp_path: Path, *extra: str) -> Running:
    port_file = tmp_path / f"port-{len(list(tmp_path.iterdir()))}"
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0", "--port-file", str(port_file), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if port_file.exists():
            text = port_file.read_text().strip()
            if text:
                return Running(proc, int(text))
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {proc.stderr.read().decode()}")
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("server did not write its port file")


def stop_server(running: Running):
    running.proc.send_signal(signal.SIGTERM)
    try:
        rc = running.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        running.proc.kill()
        raise
    err = running.proc.stderr.read().decode()
    assert rc == 0, err
    assert "Traceback" not in err, err


class Response:
    def __init__(self, status, headers, raw):
        self.status, self.headers, self.raw = status, headers, raw

    @property
    def json(self):
        return json.loads(self.raw) if self.raw else None


class Client:
    """One keep-alive connection, like the worker's HTTP client."""

    def __init__(self, port, token=None):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method, path, body=None, headers=None, content_type="application/json", raw_body=None):
        hdrs = dict(headers or {})
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None and content_type is not None:
            hdrs["Content-Type"] = content_type
        if self.token is not None:
            hdrs["Kong-Admin-Token"] = self.token
        self.conn.request(method, path, body=data, headers=hdrs)
        resp = self.conn.getresponse()
        raw = resp.read()
        return Response(resp.status, resp.headers, raw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body if body is not None else {}, **kw)

    def patch(self, path, body, **kw):
        return self.request("PATCH", path, body, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def close(self):
        self.conn.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("kong"))
    yield running
    stop_server(running)


@pytest.fixture
def api(server):
    c = server.client()
    assert c.post("/__test/reset").status == 200
    yield c
    c.close()


def walk(api, path):
    """Follows `offset` (like go-kong) and returns all items and the page bodies."""
    items, pages = [], []
    sep = "&" if "?" in path else "?"
    url = path
    while True:
        r = api.get(url)
        assert r.status == 200, r.raw
        body = r.json
        pages.append(body)
        items.extend(body["data"])
        if "offset" not in body:
            assert body["next"] is None
            return items, pages
        url = f"{path}{sep}offset={quote(body['offset'], safe='')}"


def make_consumer(api, **fields):
    r = api.post("/consumers", fields)
    assert r.status == 201, r.raw
    return r.json


# --------------------------------------------------------------------------------------------
# node info, headers, routing
# --------------------------------------------------------------------------------------------


def test_root_status_and_headers(api):
    r = api.get("/")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert r.headers["Server"] == "kong/3.9.1"
    info = r.json
    assert info["version"] == "3.9.1" and info["edition"] == "community"
    assert info["tagline"] == "Welcome to kong"
    assert UUID_RE.match(info["node_id"])
    assert info["configuration"]["database"] == "postgres"
    avail = info["plugins"]["available_on_server"]
    assert "key-auth" in avail and "request-termination" in avail
    s = api.get("/status")
    assert s.status == 200 and s.json["database"]["reachable"] is True
    assert api.get("/plugins/enabled").json["enabled_plugins"] == [
        "acl", "basic-auth", "hmac-auth", "ip-restriction", "jwt", "key-auth", "oauth2", "rate-limiting",
        "request-termination"]


def test_unknown_path_wrong_method_trailing_slash(api):
    assert api.get("/nope").status == 404
    assert api.get("/nope").json == {"message": "Not found"}
    r = api.request("DELETE", "/consumers")
    assert (r.status, r.json) == (405, {"message": "Method not allowed"})
    assert api.get("/consumers/").status == 200
    assert api.get("/consumers//").status == 404
    make_consumer(api, username="bob")
    assert api.get("/consumers/bob/").json["username"] == "bob"
    assert api.get("/consumers/bob/key-auth/").status == 200
    head = api.request("HEAD", "/consumers/bob")
    assert head.status == 200 and head.raw == b""
    opt = api.request("OPTIONS", "/consumers")
    assert opt.status == 204 and "POST" in opt.headers["Allow"]
    assert api.request("TRACE", "/consumers").json == {"message": "Method not allowed"}


def test_keep_alive_many_requests_one_connection(api):
    for _ in range(50):
        assert api.get("/consumers").status == 200
    assert api.get("/__test/stats").json["total"] == 50


# --------------------------------------------------------------------------------------------
# entities
# --------------------------------------------------------------------------------------------


def test_entity_shapes_include_nulls(api):
    c = make_consumer(api, username="bob")
    assert set(c) == {"id", "created_at", "updated_at", "username", "custom_id", "tags"}
    assert c["custom_id"] is None and c["tags"] is None
    assert UUID_RE.match(c["id"])
    assert isinstance(c["created_at"], int) and c["created_at"] == c["updated_at"]
    k = api.post("/consumers/bob/key-auth", {}).json
    assert set(k) == {"id", "created_at", "consumer", "key", "tags", "ttl"}
    assert k["consumer"] == {"id": c["id"]} and k["ttl"] is None and k["tags"] is None
    assert re.fullmatch(r"[A-Za-z0-9]{32}", k["key"])
    p = api.post("/consumers/bob/plugins", {"name": "request-termination"}).json
    assert p["config"] == {"status_code": 503, "message": None, "content_type": None, "body": None,
                           "echo": False, "trigger": None}
    assert p["enabled"] is True and p["route"] is None and p["service"] is None
    assert p["consumer"] == {"id": c["id"]} and p["instance_name"] is None
    assert p["protocols"] == ["grpc", "grpcs", "http", "https"]


def test_client_supplied_id_and_duplicate_id_is_400(api):
    cid = str(uuid.uuid4())
    c = make_consumer(api, id=cid.upper(), username="a")
    assert c["id"] == cid
    r = api.post("/consumers", {"id": cid, "username": "b"})
    assert r.status == 400
    assert r.json == {"code": 3, "name": "primary key violation",
                      "message": f"primary key violation on key '{{id=\"{cid}\"}}'", "fields": {"id": cid}}


def test_duplicate_username_and_custom_id_409(api):
    make_consumer(api, username="bob", custom_id="c1")
    r = api.post("/consumers", {"username": "bob"})
    assert r.status == 409
    assert r.json == {"code": 5, "name": "unique constraint violation",
                      "message": "UNIQUE violation detected on '{username=\"bob\"}'", "fields": {"username": "bob"}}
    r = api.post("/consumers", {"username": "other", "custom_id": "c1"})
    assert r.status == 409 and r.json["fields"] == {"custom_id": "c1"}
    k = api.post("/consumers/bob/key-auth", {"key": "secret"})
    assert k.status == 201
    r = api.post("/consumers/bob/key-auth", {"key": "secret"})
    assert r.status == 409 and r.json["fields"] == {"key": "secret"}


def test_consumer_validation(api):
    r = api.post("/consumers", {})
    assert r.status == 400
    assert r.json["fields"] == {"@entity": ["at least one of these fields must be non-empty: 'custom_id', 'username'"]}
    r = api.post("/consumers", {"username": ""})
    assert r.status == 400 and r.json["fields"]["username"] == "length must be at least 1"
    r = api.post("/consumers", {"username": "x", "ttl": 5})
    assert r.status == 400 and r.json["fields"] == {"ttl": "unknown field"}


def test_patch_missing_gives_dao_404(api):
    mid = str(uuid.uuid4())
    r = api.patch(f"/consumers/{mid}", {"tags": ["x"]})
    assert r.status == 404
    assert r.json == {"code": 6, "name": "not found",
                      "message": f"could not find the entity with primary key '{{id=\"{mid}\"}}'",
                      "fields": {"id": mid}}
    r = api.patch("/consumers/ghost", {"tags": ["x"]})
    assert r.status == 404
    assert r.json == {"code": 6, "name": "not found", "message": "could not find the entity with '{username=\"ghost\"}'",
                      "fields": {"username": "ghost"}}
    assert api.get("/consumers/ghost").json == {"message": "Not found"}


def test_patch_replaces_tags_whole_and_null_clears(api):
    make_consumer(api, username="bob", tags=["keep", "old"])
    r = api.patch("/consumers/bob", {"tags": ["new", "new", "x"]})
    assert r.status == 200 and r.json["tags"] == ["new", "x"]
    r = api.patch("/consumers/bob", {"custom_id": "cid"})
    assert r.json["tags"] == ["new", "x"] and r.json["custom_id"] == "cid"
    r = api.patch("/consumers/bob", {"tags": None})
    assert r.json["tags"] is None
    r = api.patch("/consumers/bob", {"tags": []})
    assert r.json["tags"] == []


def test_put_is_full_replacement(api):
    c = make_consumer(api, username="bob", custom_id="c", tags=["t"])
    r = api.put("/consumers/bob", {"tags": ["z"]})
    assert r.status == 200
    assert r.json["id"] == c["id"] and r.json["custom_id"] is None and r.json["tags"] == ["z"]
    nid = str(uuid.uuid4())
    r = api.put(f"/consumers/{nid}", {"username": "new"})
    assert r.status == 200 and r.json["id"] == nid


def test_uuid_shaped_username_only_by_id_and_custom_id_lookup(api):
    uname = str(uuid.uuid4())
    c = make_consumer(api, username=uname, custom_id="scim-42")
    assert api.get(f"/consumers/{uname}").status == 404
    assert api.get(f"/consumers/{c['id']}").json["username"] == uname
    r = api.get("/consumers?custom_id=scim-42&size=abc&tags=%FF")
    assert r.status == 200 and r.json == {"data": [c], "next": None}
    r = api.get("/consumers?custom_id=nobody")
    assert r.json == {"data": [], "next": None}
    r = api.get("/consumers?custom_id=")
    assert (r.status, r.json) == (400, {"message": "custom_id must be an unempty string"})


def test_path_segments_are_url_decoded(api):
    make_consumer(api, username="jürgen ö")
    assert api.get("/consumers/" + quote("jürgen ö")).status == 200
    assert api.get("/consumers/j%C3%BCrgen+%C3%B6").status == 200   # ngx.unescape_uri: + is a space
    make_consumer(api, username="a/b")
    assert api.get("/consumers/a%2Fb").json["username"] == "a/b"


def test_unknown_field_enabled_on_key_auth(api):
    make_consumer(api, username="bob")
    k = api.post("/consumers/bob/key-auth", {}).json
    r = api.patch(f"/key-auths/{k['id']}", {"enabled": False})
    assert r.status == 400
    assert r.json == {"code": 2, "name": "schema violation", "message": "schema violation (enabled: unknown field)",
                      "fields": {"enabled": "unknown field"}}


def test_key_auth_top_level_requires_consumer_and_resolves_refs(api):
    c = make_consumer(api, username="bob")
    r = api.post("/key-auths", {"key": "k1"})
    assert r.status == 400 and r.json["fields"] == {"consumer": "required field missing"}
    r = api.post("/key-auths", {"key": "k1", "consumer": {"username": "bob"}})
    assert r.status == 201 and r.json["consumer"] == {"id": c["id"]}
    r = api.post("/key-auths", {"key": "k2", "consumer": {"username": "nobody"}})
    assert r.status == 400 and r.json["code"] == 13
    mid = str(uuid.uuid4())
    r = api.post("/key-auths", {"key": "k2", "consumer": {"id": mid}})
    assert r.status == 400 and r.json["code"] == 4 and r.json["fields"] == {"consumer": {"id": mid}}
    assert api.get("/key-auths/k1").json["key"] == "k1"
    assert api.get("/key-auths/k1/consumer").json["id"] == c["id"]


def test_key_ttl_option(api):
    make_consumer(api, username="bob")
    r = api.post("/consumers/bob/key-auth", {"key": "short", "ttl": 100})
    assert r.status == 201 and r.json["ttl"] == 100
    r = api.post("/consumers/bob/key-auth", {"key": "bad", "ttl": -1})
    assert r.status == 400
    assert r.json == {"code": 11, "name": "invalid options",
                      "message": "invalid option (ttl: must be an integer between 0 and 100000000)",
                      "options": {"ttl": "must be an integer between 0 and 100000000"}}
    api.post("/__test/clock", {"advance": 40})
    assert api.get("/key-auths/short").json["ttl"] == 60
    api.post("/__test/clock", {"advance": 61})
    assert api.get("/key-auths/short").status == 404
    assert api.get("/consumers/bob/key-auth").json["data"] == []


# --------------------------------------------------------------------------------------------
# deletes
# --------------------------------------------------------------------------------------------


def test_delete_semantics_nested_vs_top_level(api):
    make_consumer(api, username="alice")
    make_consumer(api, username="bob")
    ka = api.post("/consumers/alice/key-auth", {}).json
    assert api.delete(f"/consumers/{uuid.uuid4()}").status == 204
    assert api.delete("/consumers/ghost").status == 204
    assert api.delete(f"/key-auths/{uuid.uuid4()}").status == 204
    assert api.delete(f"/plugins/{uuid.uuid4()}").status == 204
    r = api.delete(f"/consumers/bob/key-auth/{uuid.uuid4()}")
    assert (r.status, r.json) == (404, {"message": "Not found"})
    assert api.delete(f"/consumers/bob/key-auth/{ka['id']}").status == 404      # belongs to alice
    assert api.get(f"/consumers/bob/key-auth/{ka['id']}").status == 404
    assert api.patch(f"/consumers/bob/key-auth/{ka['id']}", {"tags": ["x"]}).status == 404
    assert api.delete(f"/consumers/ghost/key-auth/{ka['id']}").status == 404
    assert api.delete(f"/consumers/alice/key-auth/{ka['key']}").status == 204
    assert api.get(f"/key-auths/{ka['id']}").status == 404


def test_delete_consumer_cascades(api):
    make_consumer(api, username="bob")
    make_consumer(api, username="other")
    api.post("/consumers/bob/key-auth", {})
    api.post("/consumers/bob/key-auth", {})
    api.post("/consumers/bob/plugins", {"name": "request-termination"})
    api.post("/consumers/other/key-auth", {})
    glob = api.post("/plugins", {"name": "key-auth"})
    assert glob.status == 201
    assert api.delete("/consumers/bob").status == 204
    assert len(api.get("/key-auths").json["data"]) == 1
    plugins = api.get("/plugins").json["data"]
    assert [p["id"] for p in plugins] == [glob.json["id"]]
    # the name is free again
    make_consumer(api, username="bob")
    assert api.post("/consumers/bob/plugins", {"name": "request-termination"}).status == 201


# --------------------------------------------------------------------------------------------
# plugins
# --------------------------------------------------------------------------------------------


def test_second_request_termination_for_consumer_is_409(api):
    c = make_consumer(api, username="bob")
    first = api.post("/consumers/bob/plugins", {"name": "request-termination", "config": {"status_code": 403,
                                                                                          "message": "gone"}})
    assert first.status == 201
    r = api.post("/plugins", {"name": "request-termination", "consumer": {"id": c["id"]}})
    assert r.status == 409
    cid = c["id"]
    assert r.json == {
        "code": 5, "name": "unique constraint violation",
        "message": f"UNIQUE violation detected on '{{consumer={{id=\"{cid}\"}},name=\"request-termination\","
                   f"route=null,service=null}}'",
        "fields": {"name": "request-termination", "consumer": {"id": cid}, "route": None, "service": None},
    }
    assert api.post("/plugins", {"name": "request-termination"}).status == 201     # global coexists
    assert api.post("/plugins", {"name": "request-termination"}).status == 409


def test_plugin_validation(api):
    make_consumer(api, username="bob")
    r = api.post("/consumers/bob/plugins", {"name": "request-termination", "config": {"status_code": 99}})
    assert r.status == 400 and r.json["fields"] == {"config": {"status_code": "value should be between 100 and 599"}}
    r = api.post("/consumers/bob/plugins", {"name": "request-termination",
                                            "config": {"message": "m", "body": "b"}})
    assert r.status == 400 and r.json["fields"] == {"config": "message cannot be used with content_type or body"}
    r = api.post("/consumers/bob/plugins", {"name": "key-auth"})
    assert r.status == 400 and r.json["fields"] == {"consumer": "value must be null"}
    r = api.post("/plugins", {"name": "file-log"})
    assert r.status == 400
    assert r.json["fields"] == {"name": "plugin 'file-log' not enabled; add it to the 'plugins' configuration property"}
    r = api.post("/plugins", {"name": "request-termination", "config": {"bogus": 1}})
    assert r.status == 400 and r.json["fields"] == {"config": {"bogus": "unknown field"}}


def test_plugin_patch_deep_merges_config(api):
    make_consumer(api, username="bob")
    p = api.post("/consumers/bob/plugins", {"name": "request-termination", "instance_name": "block-bob",
                                            "config": {"status_code": 403, "message": "gone"}}).json
    r = api.patch(f"/consumers/bob/plugins/{p['id']}", {"enabled": False, "config": {"message": "bye"}})
    assert r.status == 200
    assert r.json["enabled"] is False and r.json["config"]["status_code"] == 403 and r.json["config"]["message"] == "bye"
    r = api.patch("/plugins/block-bob", {"config": {"message": None}})
    assert r.status == 200 and r.json["config"]["message"] is None
    r = api.patch(f"/plugins/{p['id']}", {"config": {"status_code": None}})
    assert r.status == 400 and r.json["fields"] == {"config": {"status_code": "required field missing"}}
    assert api.get("/consumers/bob/plugins/block-bob").json["id"] == p["id"]
    r = api.patch(f"/plugins/{uuid.uuid4()}", {"enabled": True})
    assert (r.status, r.json) == (404, {"message": "Not found"})


# --------------------------------------------------------------------------------------------
# content types, DB-less, token
# --------------------------------------------------------------------------------------------


def test_content_type_rules(api):
    r = api.request("POST", "/consumers", raw_body=b"username=x", content_type="text/plain")
    assert r.status == 415 and r.raw == b""
    r = api.request("POST", "/consumers", raw_body=b'{"username":"x"}', content_type=None)
    assert r.status == 415
    r = api.request("POST", "/consumers", raw_body=b"{not json", content_type="application/json")
    assert (r.status, r.json) == (400, {"message": "Cannot parse JSON body"})
    r = api.request("POST", "/consumers", raw_body=b"", content_type="application/json")
    assert (r.status, r.json) == (400, {"message": "Cannot parse JSON body"})
    r = api.request("POST", "/consumers", raw_body=b"username=form+user&tags[]=a&tags[]=b",
                    content_type="application/x-www-form-urlencoded")
    assert r.status == 201 and r.json["username"] == "form user" and r.json["tags"] == ["a", "b"]
    # no body and no content type: an empty body, like `curl -X POST`
    r = api.request("POST", "/consumers/form%20user/key-auth")
    assert r.status == 201


def test_dbless_writes_are_405(tmp_path):
    running = start_server(tmp_path, "--dbless")
    try:
        c = running.client()
        assert c.get("/").json["configuration"]["database"] == "off"
        r = c.post("/consumers", {"username": "x"})
        assert r.status == 405
        assert r.json == {"code": 12, "name": "operation unsupported",
                          "message": "cannot create 'consumers' entities when not using a database"}
        assert c.delete("/consumers/x").json["code"] == 12
        assert c.patch("/consumers/x", {"tags": []}).status == 405
        assert c.get("/consumers").status == 200
        seeded = c.post("/__test/seed", {"consumers": [{"username": "declared"}]})
        assert seeded.status == 201
        assert c.get("/consumers/declared").status == 200
        c.close()
    finally:
        stop_server(running)


def test_token_required(tmp_path):
    running = start_server(tmp_path, "--token", "s3cret", "--version", "3.9.0")
    try:
        anon = running.client()
        r = anon.get("/consumers")
        assert (r.status, r.json) == (401, {"message": "Invalid RBAC credentials"})
        assert anon.get("/nope").status == 401
        assert anon.get("/__test/stats").status == 200
        wrong = running.client(token="nope")
        assert wrong.get("/").status == 401
        ok = running.client(token="s3cret")
        r = ok.get("/")
        assert r.status == 200 and r.json["version"] == "3.9.0" and r.headers["Server"] == "kong/3.9.0"
        stats = anon.get("/__test/stats").json
        assert stats["total"] == 4 and stats["by_route"]["GET /consumers"] == 1
        for c in (anon, wrong, ok):
            c.close()
    finally:
        stop_server(running)


# --------------------------------------------------------------------------------------------
# pagination (doc §4)
# --------------------------------------------------------------------------------------------


def test_pagination_pages_order_and_last_page(api):
    api.post("/__test/generate", {"count": 25, "tags": ["gen"], "custom_id": "none"})
    items, pages = walk(api, "/consumers?size=10")
    assert [len(p["data"]) for p in pages] == [10, 10, 5]
    ids = [c["id"] for c in items]
    assert ids == sorted(ids) and len(set(ids)) == 25
    assert "offset" not in pages[-1] and pages[-1]["next"] is None
    first = pages[0]
    token = first["offset"]
    decoded = json.loads(base64.b64decode(token + "=" * (-len(token) % 4)))
    assert decoded == [ids[9]] and "=" not in token
    # exactly a full last page: no empty extra page (fetch size+1)
    _, pages = walk(api, "/consumers?size=5")
    assert len(pages) == 5
    # default size is 100
    api.post("/__test/generate", {"count": 100, "start": 1000, "custom_id": "none"})
    r = api.get("/consumers").json
    assert len(r["data"]) == 100 and "offset" in r


def test_next_keeps_tags_and_size_top_level(api):
    api.post("/__test/generate", {"count": 7, "tags": ["a b", "team:x"], "custom_id": "none"})
    r = api.get("/consumers?tags=team:x&size=3")
    body = r.json
    assert body["next"] == f"/consumers?offset={quote(body['offset'], safe='')}&tags=team%3Ax&size=3"
    seen = [c["id"] for c in body["data"]]
    while body["next"]:
        body = api.get(body["next"]).json
        seen.extend(c["id"] for c in body["data"])
    assert len(seen) == 7
    r = api.get("/consumers?size=%201e0%20&tags=a%20b").json
    assert len(r["data"]) == 1 and r["next"].endswith("&tags=a%20b&size= 1e0 ")


def test_nested_next_drops_tags_and_size(api):
    make_consumer(api, username="bob")
    for _ in range(3):
        api.post("/consumers/bob/key-auth", {"tags": ["k"]})
    r = api.get("/consumers/bob/key-auth?size=1&tags=nomatch").json
    assert len(r["data"]) == 1                     # tags ignored on nested lists
    assert r["next"] == f"/consumers/bob/key-auth?offset={quote(r['offset'], safe='')}"
    r2 = api.get("/consumers/bob/key-auth?tags=a,b/c")
    assert r2.status == 400 and r2.json["options"] == {"tags": "invalid filter syntax"}
    keys, _ = walk(api, "/consumers/bob/key-auth?size=1")
    assert len(keys) == 3
    assert len(api.get("/key-auths?tags=k").json["data"]) == 3


@pytest.mark.parametrize("size,message", [
    ("0", "size must be an integer between 1 and 1000"),
    ("1001", "size must be an integer between 1 and 1000"),
    ("2.5", "size must be an integer between 1 and 1000"),
    ("-3", "size must be an integer between 1 and 1000"),
    ("abc", "size must be a number"),
    ("", "size must be a number"),
    ("10&size=20", "size must be a number"),
])
def test_size_errors(api, size, message):
    r = api.get(f"/consumers?size={size}")
    assert r.status == 400
    assert r.json == {"code": 9, "name": "invalid size", "message": message}


@pytest.mark.parametrize("size", ["1e2", "%2010%20", "0x10", "1000", "7.0"])
def test_size_lua_tonumber_accepts(api, size):
    assert api.get(f"/consumers?size={size}").status == 200


def test_bad_offsets(api):
    r = api.get("/consumers?offset=%21%21%21")
    assert r.status == 400
    assert r.json == {"code": 7, "name": "invalid offset", "message": "'!!!' is not a valid offset: bad base64 encoding"}
    tok = base64.b64encode(b"not json").decode().rstrip("=")
    r = api.get(f"/consumers?offset={quote(tok, safe='')}")
    assert r.status == 400
    assert r.json == {"code": 7, "name": "invalid offset", "message": f"'{tok}' is not a valid offset: bad json encoding"}
    make_consumer(api, username="bob")
    assert api.get("/consumers/bob/key-auth?offset=%21").json["code"] == 7


def test_raw_json_escapes_slash_like_cjson(api):
    api.post("/__test/generate", {"count": 3, "custom_id": "none"})
    r = api.get("/consumers?size=1")
    assert b'"next":"\\/consumers?offset=' in r.raw
    assert r.json["next"].startswith("/consumers?offset=")
    make_consumer(api, username="x/y")
    assert b'"username":"x\\/y"' in api.get("/consumers/x%2Fy").raw


def test_offset_survives_deletes_and_size_change(api):
    api.post("/__test/generate", {"count": 30, "custom_id": "none"})
    page1 = api.get("/consumers?size=10").json
    for c in page1["data"]:
        assert api.delete(f"/consumers/{c['id']}").status == 204
    rest, _ = walk(api, "/consumers?size=7")
    page2 = api.get(f"/consumers?size=20&offset={quote(page1['offset'], safe='')}").json
    assert [c["id"] for c in page2["data"]] == [c["id"] for c in rest]


# --------------------------------------------------------------------------------------------
# tags (doc §5)
# --------------------------------------------------------------------------------------------


def test_tag_filters_and_or(api):
    make_consumer(api, username="c1", tags=["corp", "one"])
    make_consumer(api, username="c2", tags=["corp", "two"])
    make_consumer(api, username="c3", tags=["three"])
    names = lambda q: sorted(c["username"] for c in api.get(f"/consumers?tags={q}").json["data"])  # noqa: E731
    assert names("corp") == ["c1", "c2"]
    assert names("corp,one") == ["c1"]
    assert names("one/three") == ["c1", "c3"]
    assert names("corp,nothing") == []
    assert names("a,") == []


@pytest.mark.parametrize("query,reason", [
    ("a,b/c", "invalid filter syntax"),
    ("a/b,c", "invalid filter syntax"),
    ("a,b,c,d,e,f", "cannot query more than 5 tags"),
    ("a/b/c/d/e/f", "cannot query more than 5 tags"),
    ("", "cannot be null"),
    ("%FF%00", "invalid filter syntax"),
    ("%7F", "invalid filter syntax"),
])
def test_tag_filter_errors(api, query, reason):
    r = api.get(f"/consumers?tags={query}")
    assert r.status == 400
    assert r.json == {"code": 11, "name": "invalid options", "message": f"invalid option (tags: {reason})",
                      "options": {"tags": reason}}


def test_tag_validation_error_array(api):
    r = api.post("/consumers", {"username": "bob", "tags": ["ok", "a/b", "c,d", "ok2"]})
    assert r.status == 400
    err = "invalid tag '{}': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"
    assert r.json["fields"] == {"tags": [None, err.format("a/b"), err.format("c,d")]}
    assert r.json["message"] == f"2 schema violations (tags.2: {err.format('a/b')}; tags.3: {err.format('c,d')})"
    r = api.post("/consumers", {"username": "bob", "tags": ["tab\there"]})
    assert r.status == 400
    r = api.post("/consumers", {"username": "bob", "tags": "notalist"})
    assert r.status == 400 and r.json["fields"] == {"tags": "expected a set"}
    r = api.post("/consumers", {"username": "bob", "tags": ["with space", "ünï", "idp-sync:missing-since:170"]})
    assert r.status == 201


def test_tags_endpoints(api):
    c = make_consumer(api, username="bob", tags=["t1", "t2"])
    k = api.post("/consumers/bob/key-auth", {"tags": ["t1"]}).json
    rows = api.get("/tags").json["data"]
    assert len(rows) == 3
    assert {"entity_id": c["id"], "entity_name": "consumers", "tag": "t2"} in rows
    assert {"entity_id": k["id"], "entity_name": "keyauth_credentials", "tag": "t1"} in rows
    rows, pages = walk(api, "/tags?size=1")
    assert len(rows) == 3 and len(pages) == 3
    t1 = api.get("/tags/t1").json["data"]
    assert sorted(r["entity_name"] for r in t1) == ["consumers", "keyauth_credentials"]
    r = api.get("/tags/%FF")
    assert r.status == 400 and r.json["code"] == 10 and r.json["name"] == "invalid unique tag"


# --------------------------------------------------------------------------------------------
# test-control API
# --------------------------------------------------------------------------------------------


def test_stats_counting_and_reset(api):
    make_consumer(api, username="bob")
    api.get("/consumers?size=1")
    api.get("/consumers?size=0")                 # errors count too
    api.patch("/consumers/bob", {"tags": ["x"]})
    api.get("/consumers/bob/key-auth")
    api.get("/nope")
    api.get("/__test/state")                      # never counted
    s = api.get("/__test/stats").json
    assert s["total"] == 6 and s["writes"] == 2
    assert s["by_route"] == {
        "POST /consumers": 1, "GET /consumers": 2, "PATCH /consumers/{consumer}": 1,
        "GET /consumers/{consumer}/key-auth": 1, "GET <unknown>": 1,
    }
    assert api.post("/__test/reset-stats").status == 200
    assert api.get("/__test/stats").json == {"total": 0, "writes": 0, "by_route": {}, "by_status": {}}


def test_state_is_deterministic(api):
    api.post("/__test/seed", {"consumers": [
        {"username": "b", "tags": ["x"], "keys": [{"key": "k1"}], "plugins": [{"name": "request-termination"}]},
        {"username": "a", "custom_id": "c"},
    ]})
    one = api.get("/__test/state").raw
    two = api.get("/__test/state").raw
    assert one == two
    state = json.loads(one)
    assert [c["id"] for c in state["consumers"]] == sorted(c["id"] for c in state["consumers"])
    assert state["keyauth_credentials"][0]["key"] == "k1"
    api.patch("/consumers/a", {"tags": ["y"]})
    assert api.get("/__test/state").raw != one


def test_seed_returns_ids_and_is_all_or_nothing(api):
    cid = str(uuid.uuid4())
    r = api.post("/__test/seed", {
        "consumers": [{"id": cid, "username": "bob", "custom_id": "u-1", "tags": ["src:ldap"],
                       "keys": [{"key": "bobkey"}, {}],
                       "plugins": [{"name": "request-termination", "config": {"status_code": 403},
                                    "tags": ["idp-sync"]}]}],
        "plugins": [{"name": "key-auth"}],
    })
    assert r.status == 201, r.raw
    body = r.json
    assert body["consumers"][0]["id"] == cid
    assert [k["key"] for k in body["consumers"][0]["keys"]][0] == "bobkey"
    assert body["consumers"][0]["plugins"][0]["consumer"] == {"id": cid}
    assert body["plugins"][0]["consumer"] is None
    assert api.get("/__test/stats").json["total"] == 0
    before = api.get("/__test/state").raw
    r = api.post("/__test/seed", {"consumers": [{"username": "new"}, {"username": "bob"}]})
    assert r.status == 409 and r.json["message"] == "seed failed at consumers[1]"
    assert r.json["error"]["code"] == 5
    assert api.get("/__test/state").raw == before


def test_generate_usernames_and_custom_ids(api):
    r = api.post("/__test/generate", {"count": 3, "tags": ["bench"], "keys_per_consumer": 2,
                                      "username_prefix": "user", "custom_id": "uuid5"})
    assert r.status == 201 and r.json["consumers"] == 3 and r.json["keys"] == 6
    c = api.get("/consumers/user000002").json
    assert c["custom_id"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "user:user000002"))
    assert c["tags"] == ["bench"]
    assert api.get(f"/consumers?custom_id={c['custom_id']}").json["data"][0]["id"] == c["id"]
    assert len(api.get("/consumers/user000002/key-auth").json["data"]) == 2
    assert api.post("/__test/generate", {"count": 1}).status == 400       # user000001 exists
    r = api.post("/__test/generate", {"count": 2, "custom_id": "none", "username_prefix": "svc"})
    assert api.get("/consumers/svc000001").json["custom_id"] is None


@pytest.mark.skipif(os.environ.get("KONG_FIXTURE_BIG") == "0", reason="KONG_FIXTURE_BIG=0")
def test_generate_100k_and_walk_all_pages(api):
    # Correctness only; how fast this is belongs to `make bench-scale`, not to a test.
    r = api.post("/__test/generate", {"count": 100000, "tags": ["bench"], "keys_per_consumer": 2,
                                      "custom_id": "uuid5"})
    assert r.status == 201 and r.json["keys"] == 200000
    consumers, pages = walk(api, "/consumers?size=1000&tags=bench")
    assert len(consumers) == 100000 and len(pages) == 100
    assert len({c["id"] for c in consumers}) == 100000
    keys, kpages = walk(api, "/key-auths?size=1000")
    assert len(keys) == 200000 and len(kpages) == 200


def test_faults_times_and_after(api):
    make_consumer(api, username="bob")
    r = api.post("/__test/faults", {"rules": [{"method": "PATCH", "path_regex": "^/consumers/[^/]+$", "status": 500,
                                               "times": 1, "after": 1, "body": {"message": "An unexpected error occurred"},
                                               "retry_after": 3}]})
    assert r.status == 200
    assert api.patch("/consumers/bob", {"tags": ["1"]}).status == 200     # skipped by after
    f = api.patch("/consumers/bob", {"tags": ["2"]})
    assert (f.status, f.json) == (500, {"message": "An unexpected error occurred"})
    assert f.headers["Retry-After"] == "3"
    assert api.get("/consumers/bob").json["tags"] == ["1"]                  # not processed
    assert api.patch("/consumers/bob", {"tags": ["3"]}).status == 200     # times exhausted
    stats = api.get("/__test/stats").json
    assert stats["by_route"]["PATCH /consumers/{consumer}"] == 3
    rules = api.get("/__test/faults").json["rules"]
    assert rules[0]["matched"] == 3 and rules[0]["fired"] == 1
    assert api.delete("/__test/faults").status == 204
    assert api.get("/__test/faults").json["rules"] == []


def test_faults_forever_and_drop(api, server):
    api.post("/__test/faults", {"rules": [{"method": "GET", "path_regex": "^/status$", "status": 503, "times": None},
                                          {"method": "GET", "path_regex": "^/consumers$", "drop": True, "times": 1}]})
    for _ in range(3):
        assert api.get("/status").status == 503
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, http.client.BadStatusLine)):
        api.get("/consumers")
    api.close()
    fresh = server.client()
    assert fresh.get("/consumers").status == 200
    assert fresh.get("/__test/stats").json["by_route"]["GET /consumers"] == 2
    fresh.delete("/__test/faults")
    fresh.close()


def test_faults_delay_passes_through(api, server):
    """The server holds a delayed request: while it waits, another connection is served and sees
    it counted (on arrival) but unanswered. Evidence from the server, not from a clock."""
    api.post("/__test/faults", {"rules": [{"method": "GET", "path_regex": "^/status$", "delay_ms": 2000}]})
    answered = threading.Event()
    result = {}

    def delayed():
        c = server.client()
        result["status"] = c.get("/status").status
        answered.set()
        c.close()

    t = threading.Thread(target=delayed)
    t.start()
    other = server.client()
    for _ in range(1000):
        if other.get("/__test/stats").json["by_route"].get("GET /status") == 1:
            break
        time.sleep(0.005)
    assert other.get("/__test/stats").json["by_route"].get("GET /status") == 1
    assert not answered.is_set()                     # arrived, still held
    t.join(10)
    assert answered.is_set() and result["status"] == 200
    assert other.get("/__test/faults").json["rules"][0]["status"] is None
    other.close()


def test_faults_fraction_is_deterministic(api):
    def run():
        api.post("/__test/faults", {"seed": 7, "fraction": 0.3, "status": 503, "methods": ["GET"]})
        pattern = [api.get("/consumers").status for _ in range(40)]
        api.delete("/__test/faults")
        return pattern

    a, b = run(), run()
    assert a == b
    assert set(a) == {200, 503}
    assert api.post("/consumers", {"username": "w"}).status == 201


def test_seed_file_at_startup(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"consumers": [{"username": "preloaded", "keys": [{"key": "pk"}]}]}))
    running = start_server(tmp_path, "--seed", str(seed))
    try:
        c = running.client()
        assert c.get("/consumers/preloaded").status == 200
        assert c.get("/key-auths/pk").status == 200
        c.close()
    finally:
        stop_server(running)


def test_sigint_also_exits_zero(tmp_path):
    running = start_server(tmp_path)
    running.proc.send_signal(signal.SIGINT)
    assert running.proc.wait(timeout=10) == 0
