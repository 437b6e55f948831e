"""Tests for kong_admin_server.py's breadth (issue 14): the other credential types (KONG-FACTS.md
§14), Kong Enterprise workspaces and RBAC (§15) and Konnect's control-plane API (§16).
Run: python3 -m pytest -q Fixtures/kong"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

try:
    from test_kong_admin_server import Client, api, server, start_server, stop_server, walk  # noqa: F401
except ImportError:         # --import-mode=importlib leaves this directory off sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_kong_admin_server import Client, api, server, start_server, stop_server, walk  # noqa: F401

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
CP = "9524ec7d-36d9-465d-a8c5-83a3c9390458"
KONNECT = f"/v2/control-planes/{CP}/core-entities"
PEM = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"


def consumer(api, username, **fields):
    r = api.post("/consumers", {"username": username, **fields})
    assert r.status == 201, r.raw
    return r.json


def created(r):
    assert r.status == 201, r.raw
    return r.json


# --------------------------------------------------------------------------------------------
# §14 credential types
# --------------------------------------------------------------------------------------------

CASES = [
    # (nested, top, body, endpoint key field, fields of the entity besides id/created_at/consumer/tags)
    ("basic-auth", "basic-auths", {"username": "alice-ba", "password": "s3cret"}, "username",
     ["username", "password"]),
    ("hmac-auth", "hmac-auths", {"username": "alice-hmac"}, "username", ["username", "secret"]),
    ("jwt", "jwts", {"key": "alice-iss"}, "key", ["key", "secret", "rsa_public_key", "algorithm"]),
    ("oauth2", "oauth2", {"name": "app", "redirect_uris": ["https://app.example/cb"]}, "client_id",
     ["name", "client_id", "client_secret", "hash_secret", "redirect_uris", "client_type"]),
    ("acls", "acls", {"group": "admins"}, None, ["group"]),
]


@pytest.mark.parametrize("nested,top,body,key,fields", CASES, ids=[c[0] for c in CASES])
def test_credential_crud_shapes_and_routes(api, nested, top, body, key, fields):
    alice = consumer(api, "alice")
    cred = created(api.post(f"/consumers/alice/{nested}", body))
    assert set(cred) == {"id", "created_at", "consumer", "tags", *fields}
    assert UUID_RE.match(cred["id"]) and isinstance(cred["created_at"], int)
    assert cred["consumer"] == {"id": alice["id"]} and cred["tags"] is None
    assert "updated_at" not in cred and "enabled" not in cred and "ttl" not in cred

    # read it back: nested and top level, by id and by the endpoint key
    assert api.get(f"/consumers/alice/{nested}/{cred['id']}").json == cred
    assert api.get(f"/{top}/{cred['id']}").json == cred
    if key is not None:
        assert api.get(f"/consumers/alice/{nested}/{quote(cred[key], safe='')}").json == cred
        assert api.get(f"/{top}/{quote(cred[key], safe='')}").json == cred
    assert api.get(f"/{top}/{cred['id']}/consumer").json == alice

    # lists
    lst = api.get(f"/consumers/alice/{nested}").json
    assert lst == {"data": [cred], "next": None}
    assert api.get(f"/{top}").json["data"] == [cred]

    # another consumer's credential is 404 under this consumer
    consumer(api, "bob")
    assert api.get(f"/consumers/bob/{nested}/{cred['id']}").status == 404
    assert api.delete(f"/consumers/bob/{nested}/{cred['id']}").status == 404
    assert api.get(f"/consumers/nobody/{nested}").status == 404

    # unknown fields are schema violations
    r = api.post(f"/consumers/alice/{nested}", {**body, "enabled": True})
    assert r.status == 400 and r.json["code"] == 2 and r.json["fields"]["enabled"] == "unknown field"

    # delete: 204, then gone; a top-level delete of nothing is still 204
    assert api.delete(f"/consumers/alice/{nested}/{cred['id']}").status == 204
    assert api.get(f"/{top}/{cred['id']}").status == 404
    assert api.delete(f"/{top}/{cred['id']}").status == 204

    stats = api.get("/__test/stats").json["by_route"]
    assert stats[f"POST /consumers/{{consumer}}/{nested}"] >= 2
    assert stats[f"GET /{top}/{{credential}}"] >= 2
    assert stats[f"DELETE /consumers/{{consumer}}/{nested}/{{credential}}"] == 2


@pytest.mark.parametrize("nested,top,body,key,fields", CASES, ids=[c[0] for c in CASES])
def test_credential_lists_page_like_kong(api, nested, top, body, key, fields):
    consumer(api, "alice")
    made = []
    for i in range(5):
        item = {k: (f"{v}-{i}" if isinstance(v, str) else v) for k, v in body.items()}
        item["tags"] = ["even"] if i % 2 == 0 else ["odd"]
        made.append(created(api.post(f"/consumers/alice/{nested}", item)))
    ids = sorted(c["id"] for c in made)
    page = api.get(f"/{top}?size=2").json
    assert [c["id"] for c in page["data"]] == ids[:2] and page["next"].startswith(f"/{top}?offset=")
    items, pages = walk(api, f"/{top}?size=2")
    assert [c["id"] for c in items] == ids and len(pages) == 3 and "offset" not in pages[-1]
    nested_items, _ = walk(api, f"/consumers/alice/{nested}?size=2")
    assert [c["id"] for c in nested_items] == ids
    # top level filters by tags, nested lists ignore them (doc §5)
    assert len(api.get(f"/{top}?tags=even").json["data"]) == 3
    assert len(api.get(f"/consumers/alice/{nested}?tags=even").json["data"]) == 5
    assert api.get(f"/{top}?size=1001").json["code"] == 9
    # and they are tagged entities
    tags = api.get("/tags/odd").json["data"]
    assert {t["entity_name"] for t in tags} == {
        {"basic-auth": "basicauth_credentials", "hmac-auth": "hmacauth_credentials", "jwt": "jwt_secrets",
         "oauth2": "oauth2_credentials", "acls": "acls"}[nested]}


def test_basic_auth_password_is_hashed_with_the_consumer_id(api):
    alice = consumer(api, "alice")
    cred = created(api.post("/consumers/alice/basic-auth", {"username": "al", "password": "pw"}))
    expected = hashlib.sha1(("pw" + alice["id"]).encode()).hexdigest()
    assert cred["password"] == expected
    assert api.get("/basic-auths/al").json["password"] == expected
    # PATCH without a password keeps the hash; with one re-hashes it
    assert api.patch("/basic-auths/al", {"tags": ["t"]}).json["password"] == expected
    again = api.patch("/basic-auths/al", {"password": "new"}).json
    assert again["password"] == hashlib.sha1(("new" + alice["id"]).encode()).hexdigest()
    r = api.post("/consumers/alice/basic-auth", {"username": "al2"})
    assert r.status == 400 and r.json["fields"] == {"password": "required field missing"}
    assert r.json["message"] == "schema violation (password: required field missing)"


def test_unique_fields_are_409_with_kongs_body(api):
    consumer(api, "alice")
    consumer(api, "bob")
    created(api.post("/consumers/alice/basic-auth", {"username": "shared", "password": "x"}))
    r = api.post("/consumers/bob/basic-auth", {"username": "shared", "password": "y"})
    assert r.status == 409
    assert r.json == {"code": 5, "name": "unique constraint violation",
                      "message": "UNIQUE violation detected on '{username=\"shared\"}'",
                      "fields": {"username": "shared"}}
    created(api.post("/consumers/alice/hmac-auth", {"username": "h"}))
    assert api.post("/consumers/bob/hmac-auth", {"username": "h"}).json["fields"] == {"username": "h"}
    created(api.post("/consumers/alice/jwt", {"key": "iss-1"}))
    assert api.post("/consumers/bob/jwt", {"key": "iss-1"}).status == 409
    oa = created(api.post("/consumers/alice/oauth2", {"name": "app"}))
    r = api.post("/consumers/bob/oauth2", {"name": "app", "client_id": oa["client_id"]})
    assert r.status == 409 and r.json["fields"] == {"client_id": oa["client_id"]}


def test_acls_unique_per_consumer_and_group_addressing(api):
    alice = consumer(api, "alice")
    bob = consumer(api, "bob")
    acl = created(api.post("/consumers/alice/acls", {"group": "admins"}))
    created(api.post("/consumers/bob/acls", {"group": "admins"}))      # another consumer: fine
    r = api.post("/consumers/alice/acls", {"group": "admins"})
    assert r.status == 409
    assert r.json == {
        "code": 5, "name": "unique constraint violation",
        "message": f"UNIQUE violation detected on '{{consumer={{id=\"{alice['id']}\"}},group=\"admins\"}}'",
        "fields": {"consumer": {"id": alice["id"]}, "group": "admins"},
    }
    # the group addresses the consumer's ACL
    assert api.get("/consumers/alice/acls/admins").json == acl
    assert api.get("/consumers/bob/acls/admins").json["consumer"] == {"id": bob["id"]}
    assert api.get("/consumers/alice/acls/nope").status == 404
    # top level: only ids (no endpoint key)
    r = api.get("/acls/admins")
    assert r.status == 400 and r.json["code"] == 1 and r.json["name"] == "invalid primary key"
    # PUT on a missing group creates it with that group
    put = api.put("/consumers/alice/acls/devs", {})
    assert put.status == 200 and put.json["group"] == "devs" and put.json["consumer"] == {"id": alice["id"]}
    again = api.put("/consumers/alice/acls/devs", {"tags": ["x"]})
    assert again.json["id"] == put.json["id"] and again.json["tags"] == ["x"]
    assert api.delete("/consumers/alice/acls/admins").status == 204
    assert len(api.get("/acls").json["data"]) == 2


def test_jwt_defaults_and_rsa_key_checks(api):
    consumer(api, "alice")
    cred = created(api.post("/consumers/alice/jwt", {}))
    assert cred["algorithm"] == "HS256" and cred["rsa_public_key"] is None
    assert re.fullmatch(r"[A-Za-z0-9]{32}", cred["key"]) and re.fullmatch(r"[A-Za-z0-9]{32}", cred["secret"])
    r = api.post("/consumers/alice/jwt", {"algorithm": "RS256"})
    assert r.status == 400 and r.json["fields"] == {"rsa_public_key": "required field missing"}
    r = api.post("/consumers/alice/jwt", {"algorithm": "RS256", "rsa_public_key": "nope"})
    assert r.json["fields"] == {"rsa_public_key": "invalid key"}
    ok = created(api.post("/consumers/alice/jwt", {"algorithm": "RS256", "rsa_public_key": PEM}))
    assert ok["rsa_public_key"] == PEM
    r = api.post("/consumers/alice/jwt", {"algorithm": "none"})
    assert r.json["fields"]["algorithm"].startswith("expected one of: HS256, HS384")


def test_hmac_secret_is_generated_and_returned(api):
    consumer(api, "alice")
    cred = created(api.post("/consumers/alice/hmac-auth", {"username": "h1"}))
    assert re.fullmatch(r"[A-Za-z0-9]{32}", cred["secret"])
    given = created(api.post("/consumers/alice/hmac-auth", {"username": "h2", "secret": "plain"}))
    assert given["secret"] == "plain"
    r = api.post("/consumers/alice/hmac-auth", {"secret": "x"})
    assert r.json["fields"] == {"username": "required field missing"}


def test_oauth2_hash_secret_and_redirect_uris(api):
    consumer(api, "alice")
    plain = created(api.post("/consumers/alice/oauth2", {"name": "app", "client_secret": "shh"}))
    assert plain["client_secret"] == "shh" and plain["hash_secret"] is False
    assert plain["client_type"] == "confidential" and plain["redirect_uris"] is None
    hashed = created(api.post("/consumers/alice/oauth2", {"name": "app2", "client_secret": "shh", "hash_secret": True}))
    m = re.fullmatch(r"\$pbkdf2-sha512\$i=10000,l=32\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)", hashed["client_secret"])
    assert m, hashed["client_secret"]
    salt = base64.b64decode(m.group(1) + "=" * (-len(m.group(1)) % 4))
    digest = base64.b64decode(m.group(2) + "=" * (-len(m.group(2)) % 4))
    assert hashlib.pbkdf2_hmac("sha512", b"shh", salt, 10000, 32) == digest
    generated = created(api.post("/consumers/alice/oauth2", {"name": "app3", "hash_secret": True}))
    assert generated["client_secret"].startswith("$pbkdf2-sha512$")
    r = api.post("/consumers/alice/oauth2", {"name": "x", "redirect_uris": ["https://ok.example/cb", "nohost", "https://h.example/#frag"]})
    assert r.status == 400
    assert r.json["fields"] == {"redirect_uris": [None, "cannot parse 'nohost'", "fragment not allowed in 'https://h.example/#frag'"]}
    r = api.post("/consumers/alice/oauth2", {"client_type": "secret"})
    assert set(r.json["fields"]) == {"name", "client_type"}


def test_put_patch_and_cascade(api):
    alice = consumer(api, "alice")
    cid = "11111111-2222-4333-8444-555555555555"
    put = api.put(f"/consumers/alice/hmac-auth/{cid}", {"username": "hp", "tags": ["a"]})
    assert put.status == 200 and put.json["id"] == cid and put.json["tags"] == ["a"]
    replaced = api.put(f"/hmac-auths/{cid}", {"username": "hp", "consumer": {"id": alice["id"]}}).json
    assert replaced["tags"] is None                     # PUT replaces the whole entity (doc §6)
    by_key = api.put("/basic-auths/byname", {"password": "pw", "consumer": {"username": "alice"}})
    assert by_key.status == 200 and by_key.json["username"] == "byname"
    r = api.patch("/jwts/missing", {"tags": ["x"]})
    assert r.status == 404 and r.json["code"] == 6
    created(api.post("/consumers/alice/jwt", {}))
    created(api.post("/consumers/alice/acls", {"group": "g"}))
    created(api.post("/consumers/alice/oauth2", {"name": "n"}))
    assert api.delete("/consumers/alice").status == 204
    state = api.get("/__test/state").json
    for table in ("basicauth_credentials", "hmacauth_credentials", "jwt_secrets", "oauth2_credentials", "acls"):
        assert state[table] == [], table


def test_top_level_post_needs_a_consumer(api):
    alice = consumer(api, "alice")
    r = api.post("/basic-auths", {"username": "u", "password": "p"})
    assert r.status == 400 and r.json["fields"] == {"consumer": "required field missing"}
    ok = created(api.post("/basic-auths", {"username": "u", "password": "p", "consumer": {"username": "alice"}}))
    assert ok["consumer"] == {"id": alice["id"]}
    r = api.post("/acls", {"group": "g", "consumer": {"id": "11111111-2222-4333-8444-555555555555"}})
    assert r.status == 400 and r.json["code"] == 4


def test_new_plugin_names(api):
    consumer(api, "alice")
    for name in ("basic-auth", "hmac-auth", "jwt", "oauth2"):
        p = created(api.post("/plugins", {"name": name}))
        assert p["config"] and p["enabled"] is True
        r = api.post("/consumers/alice/plugins", {"name": name})
        assert r.status == 400 and r.json["fields"]["consumer"] == "value must be null", name
    r = api.post("/consumers/alice/plugins", {"name": "ip-restriction", "config": {"allow": ["10.0.0.0/8"]}})
    assert r.status == 201 and r.json["config"]["allow"] == ["10.0.0.0/8"]
    r = api.post("/plugins", {"name": "ip-restriction"})
    assert r.status == 400 and "at least one of" in r.json["message"]
    acl = created(api.post("/plugins", {"name": "acl", "config": {"allow": ["admins"]}}))
    assert acl["name"] == "acl"
    assert api.post("/plugins", {"name": "nope"}).status == 400


def test_seed_with_credentials_state_and_rollback(api):
    seed = {"consumers": [{"username": "alice", "credentials": {
        "basic-auth": [{"username": "alice", "password": "pw"}],
        "hmac-auth": [{"username": "alice-h", "secret": "s"}],
        "jwt": [{"key": "iss"}],
        "oauth2": [{"name": "app", "client_id": "cid", "client_secret": "cs"}],
        "acls": [{"group": "admins"}, {"group": "devs"}],
    }}]}
    r = api.post("/__test/seed", seed)
    assert r.status == 201, r.raw
    entry = r.json["consumers"][0]
    creds = entry["credentials"]
    assert creds["basic-auth"][0]["password"] == hashlib.sha1(("pw" + entry["id"]).encode()).hexdigest()
    assert [a["group"] for a in creds["acls"]] == ["admins", "devs"]
    state = api.get("/__test/state").json
    assert state["hmacauth_credentials"][0]["secret"] == "s"
    assert state["oauth2_credentials"][0]["client_id"] == "cid"
    assert {a["group"] for a in state["acls"]} == {"admins", "devs"}
    assert all(row["consumer"] == {"id": entry["id"]} for row in state["jwt_secrets"])
    # all or nothing: a bad credential undoes the consumer and its credentials
    bad = {"consumers": [{"username": "bob", "credentials": {"acls": [{"group": "a"}, {"group": "a"}]}}]}
    r = api.post("/__test/seed", bad)
    assert r.status == 409 and r.json["message"] == "seed failed at consumers[0].credentials.acls[1]"
    assert api.get("/consumers/bob").status == 404
    r = api.post("/__test/seed", {"consumers": [{"username": "carol", "credentials": {"key-auth": []}}]})
    assert r.status == 400 and "credentials must be an object" in r.json["error"]["message"]
    # reads of seeded credentials are counted by route template
    api.post("/__test/reset-stats")
    api.get("/consumers/alice/acls")
    api.get("/jwts/iss")
    assert api.get("/__test/stats").json["by_route"] == {"GET /consumers/{consumer}/acls": 1,
                                                        "GET /jwts/{credential}": 1}


def test_form_bodies_for_credentials(api):
    consumer(api, "alice")
    r = api.request("POST", "/consumers/alice/oauth2", raw_body=b"name=app&redirect_uris[]=https://a.example/cb&hash_secret=true",
                    content_type="application/x-www-form-urlencoded")
    assert r.status == 201, r.raw
    assert r.json["redirect_uris"] == ["https://a.example/cb"] and r.json["hash_secret"] is True


# --------------------------------------------------------------------------------------------
# §15 Enterprise: workspaces and RBAC
# --------------------------------------------------------------------------------------------

RBAC = {"tokens": {
    "tok-admin": {"name": "admin", "workspaces": {"*": {"*": ["*"]}}},
    "tok-reader": {"ws1": {"/consumers": ["read"], "/consumers/*": ["read", "update"]}},
}}


@pytest.fixture(scope="module")
def ee(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kong-ee")
    rbac = tmp / "rbac.json"
    rbac.write_text(json.dumps(RBAC))
    running = start_server(tmp, "--workspaces", "ws1,ws2", "--rbac", str(rbac))
    yield running
    stop_server(running)


@pytest.fixture
def admin(ee):
    c = ee.client("tok-admin")
    assert c.post("/__test/reset").status == 200
    assert c.post("/__test/rbac", RBAC).status == 200
    yield c
    c.close()


def test_enterprise_root_and_workspaces(admin):
    root = admin.get("/").json
    assert root["edition"] == "enterprise" and root["version"] == "3.9.1.0"
    assert root["configuration"]["enforce_rbac"] == "on"
    ws = admin.get("/workspaces").json
    assert sorted(w["name"] for w in ws["data"]) == ["default", "ws1", "ws2"] and ws["next"] is None
    one = admin.get("/workspaces/ws1").json
    assert one["name"] == "ws1" and UUID_RE.match(one["id"])
    assert admin.get(f"/workspaces/{one['id']}").json == one
    assert admin.get("/ws2/workspaces/ws1").json == one
    assert admin.get("/ws1/").json["edition"] == "enterprise"


def test_entities_live_per_workspace(admin):
    a = created(admin.post("/ws1/consumers", {"username": "alice"}))
    assert admin.get("/ws1/consumers/alice").json == a
    assert admin.get("/ws2/consumers/alice").status == 404
    assert admin.get("/consumers/alice").status == 404
    assert admin.get("/default/consumers/alice").status == 404
    # unique per workspace: the same username elsewhere is fine
    created(admin.post("/ws2/consumers", {"username": "alice"}))
    created(admin.post("/consumers", {"username": "alice"}))
    assert admin.get("/default/consumers").json["data"][0]["username"] == "alice"
    created(admin.post("/ws1/consumers/alice/basic-auth", {"username": "alice", "password": "x"}))
    created(admin.post("/ws2/consumers/alice/basic-auth", {"username": "alice", "password": "x"}))
    assert admin.post("/ws1/consumers/alice/basic-auth", {"username": "alice", "password": "y"}).status == 409
    # paging keeps the prefix the request used
    for i in range(3):
        created(admin.post("/ws1/consumers", {"username": f"u{i}"}))
    page = admin.get("/ws1/consumers?size=2").json
    assert page["next"].startswith("/ws1/consumers?offset=")
    nested = admin.get("/ws1/consumers/alice/basic-auth?size=1").json
    assert nested["next"] is None
    stats = admin.get("/__test/stats").json["by_route"]
    assert stats["GET /{workspace}/consumers/{consumer}"] == 3
    assert stats["POST /{workspace}/consumers/{consumer}/basic-auth"] == 3
    assert stats["GET /consumers/{consumer}"] == 1


def test_unknown_workspace_is_404_with_enterprise_body(admin):
    r = admin.get("/ws9/consumers")
    assert r.status == 404 and r.json == {"message": "Workspace 'ws9' not found"}
    assert admin.post("/nope/consumers", {"username": "x"}).json == {"message": "Workspace 'nope' not found"}
    assert admin.get("/ws1/nothing-here").status == 404
    assert admin.get("/ws1/nothing-here").json == {"message": "Not found"}


def test_seed_and_state_per_workspace(admin):
    r = admin.post("/__test/seed?workspace=ws2", {"consumers": [{"username": "s", "credentials": {"acls": [{"group": "g"}]}}]})
    assert r.status == 201
    assert admin.get("/ws2/consumers/s/acls/g").status == 200
    assert admin.get("/ws1/consumers/s").status == 404
    assert [c["username"] for c in admin.get("/__test/state?workspace=ws2").json["consumers"]] == ["s"]
    assert admin.get("/__test/state").json["consumers"] == []
    assert admin.post("/__test/seed?workspace=ws9", {}).status == 404
    g = admin.post("/__test/generate?workspace=ws1", {"count": 3})
    assert g.status == 201 and len(admin.get("/ws1/consumers").json["data"]) == 3
    admin.post("/__test/reset")
    assert admin.get("/__test/state?workspace=ws1").json["consumers"] == []


def test_rbac_401_and_403(ee, admin):
    created(admin.post("/ws1/consumers", {"username": "alice"}))
    anon = ee.client()
    r = anon.get("/ws1/consumers")
    assert r.status == 401 and r.json == {"message": "Invalid RBAC credentials"}
    wrong = ee.client("tok-nope")
    assert wrong.get("/ws1/consumers").status == 401
    reader = ee.client("tok-reader")
    assert reader.get("/ws1/consumers").status == 200
    assert reader.get("/ws1/consumers/alice").status == 200
    assert reader.patch("/ws1/consumers/alice", {"custom_id": "c1"}).status == 200       # update granted
    r = reader.post("/ws1/consumers", {"username": "bob"})
    assert r.status == 403
    assert r.json == {"message": "tok-reader, you do not have permissions to create this resource"}
    r = reader.delete("/ws1/consumers/alice")
    assert r.json == {"message": "tok-reader, you do not have permissions to delete this resource"}
    # the trailing /* covers everything below
    assert reader.get("/ws1/consumers/alice/key-auth").status == 200
    # other workspaces and endpoints: read is not granted
    r = reader.get("/ws2/consumers")
    assert r.status == 403 and r.json["message"].endswith("to read this resource")
    assert reader.get("/ws1/plugins").status == 403
    assert reader.get("/ws1/").status == 403
    # a 403 comes before routing; an unknown workspace before the 403
    assert reader.get("/ws1/nothing").status == 403
    assert reader.get("/ws9/consumers").status == 404
    stats = admin.get("/__test/stats").json["by_status"]
    assert stats["401"] == 2 and stats["403"] == 6
    for c in (anon, wrong, reader):
        c.close()


def test_rbac_can_change_between_reads_and_a_write(ee, admin):
    created(admin.post("/ws1/consumers", {"username": "alice"}))
    writer_rbac = {"tokens": {**RBAC["tokens"], "tok-w": {"name": "sync", "workspaces": {"ws1": {"*": ["read", "create", "update", "delete"]}}}}}
    assert admin.post("/__test/rbac", writer_rbac).status == 200
    w = ee.client("tok-w")
    assert w.get("/ws1/consumers").status == 200
    assert w.get("/ws1/consumers/alice").status == 200
    revoked = json.loads(json.dumps(writer_rbac))
    revoked["tokens"]["tok-w"]["workspaces"]["ws1"]["*"] = ["read", "create", "update"]
    assert admin.post("/__test/rbac", revoked).status == 200
    r = w.delete("/ws1/consumers/alice")
    assert r.status == 403 and r.json == {"message": "sync, you do not have permissions to delete this resource"}
    assert admin.get("/__test/rbac").json["rbac"] == revoked
    # a bad body changes nothing
    assert admin.post("/__test/rbac", {"tokens": {"t": {"ws1": {"/x": ["fly"]}}}}).status == 400
    assert w.patch("/ws1/consumers/alice", {"custom_id": "x"}).status == 200
    # DELETE clears RBAC: no token needed any more; still an Enterprise node (workspaces)
    assert admin.delete("/__test/rbac").status == 204
    anon = ee.client()
    assert anon.delete("/ws1/consumers/alice").status == 204
    root = anon.get("/").json
    assert root["edition"] == "enterprise" and root["configuration"]["enforce_rbac"] == "off"
    w.close()
    anon.close()


def test_oss_server_has_no_workspaces(api):
    assert api.get("/workspaces").status == 404
    assert api.get("/default/consumers").json == {"message": "Not found"}
    assert api.get("/").json["edition"] == "community"


# --------------------------------------------------------------------------------------------
# §16 Konnect
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def konnect_server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("konnect"), "--konnect", CP, "--konnect-token", "kpat_good")
    yield running
    stop_server(running)


class Konnect(Client):
    def __init__(self, port, bearer="kpat_good"):
        super().__init__(port)
        self.bearer = bearer

    def request(self, method, path, body=None, headers=None, **kw):
        hdrs = dict(headers or {})
        if self.bearer is not None:
            hdrs["Authorization"] = f"Bearer {self.bearer}"
        return super().request(method, path, body, headers=hdrs, **kw)


@pytest.fixture
def kn(konnect_server):
    c = Konnect(konnect_server.port)
    assert c.post("/__test/reset").status == 200
    yield c
    c.close()


def test_konnect_control_plane_and_auth(konnect_server, kn):
    cp = kn.get(f"/v2/control-planes/{CP}")
    assert cp.status == 200
    body = cp.json
    assert body["id"] == CP and body["config"]["cluster_type"] == "CLUSTER_TYPE_CONTROL_PLANE"
    assert set(body) == {"id", "name", "description", "labels", "config", "created_at", "updated_at"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["created_at"])
    for bearer in (None, "kpat_bad"):
        c = Konnect(konnect_server.port, bearer)
        r = c.get(f"{KONNECT}/consumers")
        assert r.status == 401 and r.json == {"message": "Unauthorized", "status": 401}
        r = c.get(f"/v2/control-planes/{CP}")
        assert r.status == 401 and r.headers["Content-Type"] == "application/problem+json"
        assert r.json["title"] == "Unauthorized" and r.json["detail"] == "Invalid credentials"
        assert r.json["instance"].startswith("kong:trace:") and r.json["status"] == 401
        c.close()
    other = "00000000-0000-4000-8000-000000000001"
    r = kn.get(f"/v2/control-planes/{other}/core-entities/consumers")
    assert r.status == 404 and r.json["title"] == "Not Found"
    # the Admin API shape needs no bearer
    plain = Client(konnect_server.port)
    assert plain.get("/consumers").status == 200
    plain.close()


def test_konnect_reads_what_seed_wrote_and_pages(kn):
    seed = {"consumers": [{"username": f"user{i}", "tags": ["idp"] if i % 2 else None,
                           "keys": [{"key": f"k{i}"}],
                           "credentials": {"acls": [{"group": "g"}], "basic-auth": [{"username": f"b{i}", "password": "p"}]}}
                          for i in range(5)]}
    assert kn.post("/__test/seed", seed).status == 201
    ids = sorted(c["id"] for c in kn.get("/consumers").json["data"])
    first = kn.get(f"{KONNECT}/consumers?size=2")
    assert first.status == 200 and first.headers["Content-Type"] == "application/json"
    page = first.json
    assert [c["id"] for c in page["data"]] == ids[:2] and isinstance(page["offset"], str)
    assert page["next"].startswith(f"{KONNECT}/consumers?offset=")
    assert "\\/" not in first.raw.decode()
    items, pages = walk(kn, f"{KONNECT}/consumers?size=2")
    assert [c["id"] for c in items] == ids and "offset" not in pages[-1] and pages[-1]["next"] is None
    assert len(kn.get(f"{KONNECT}/consumers?tags=idp").json["data"]) == 2
    alice = kn.get(f"{KONNECT}/consumers/user1").json
    assert alice["username"] == "user1" and alice["tags"] == ["idp"]
    assert kn.get(f"{KONNECT}/consumers/user1/key-auth").json["data"][0]["key"] == "k1"
    assert kn.get(f"{KONNECT}/consumers/user1/acls").json["data"][0]["group"] == "g"
    assert len(kn.get(f"{KONNECT}/basic-auths").json["data"]) == 5
    assert len(kn.get(f"{KONNECT}/key-auths?size=1000").json["data"]) == 5
    # no custom_id lookup in Konnect: the parameter is ignored
    assert len(kn.get(f"{KONNECT}/consumers?custom_id=zzz").json["data"]) == 5
    r = kn.get(f"{KONNECT}/consumers?size=1001")
    assert r.status == 400 and r.json["code"] == 3 and r.json["details"][0]["field"] == "size"
    stats = kn.get("/__test/stats").json["by_route"]
    assert stats["GET /v2/control-planes/{controlPlaneId}/core-entities/consumers"] >= 5
    assert stats["GET /v2/control-planes/{controlPlaneId}/core-entities/consumers/{consumer}/acls"] == 1


def test_konnect_verbs(kn):
    c = created(kn.post(f"{KONNECT}/consumers", {"username": "alice", "custom_id": "a1", "tags": ["x"]}))
    assert kn.get(f"/consumers/{c['id']}").json == c          # same store, both shapes
    r = kn.patch(f"{KONNECT}/consumers/{c['id']}", {"tags": ["y"]})
    assert r.status == 405 and r.json == {"code": 12, "message": "Method Not Allowed", "details": []}
    put = kn.put(f"{KONNECT}/consumers/{c['id']}", {"username": "alice"})
    assert put.status == 200 and put.json["custom_id"] is None and put.json["tags"] is None
    key = created(kn.post(f"{KONNECT}/consumers/alice/key-auth", {"key": "secret-1"}))
    assert kn.get(f"{KONNECT}/key-auths/{key['id']}").json["key"] == "secret-1"
    assert kn.delete(f"{KONNECT}/consumers/alice/key-auth/{key['id']}").status == 204
    assert kn.delete(f"{KONNECT}/key-auths/{key['id']}").status == 404       # Konnect: 404, not 204
    p = created(kn.post(f"{KONNECT}/consumers/alice/plugins", {"name": "request-termination"}))
    assert kn.get(f"{KONNECT}/plugins/{p['id']}").json["consumer"] == {"id": c["id"]}
    assert kn.delete(f"{KONNECT}/consumers/{c['id']}").status == 204
    r = kn.delete(f"{KONNECT}/consumers/{c['id']}")
    assert r.status == 404 and r.json == {"code": 5, "message": "not found", "details": []}
    assert kn.get(f"{KONNECT}/consumers/{c['id']}").json == {"code": 5, "message": "not found", "details": []}
    # what Konnect does not serve
    assert kn.get(f"{KONNECT}/oauth2").status == 404
    assert kn.get(f"{KONNECT}/tags").status == 404
    assert kn.get(f"{KONNECT}/plugins/enabled").status == 404
    assert kn.get(f"/v2/control-planes/{CP}/nope").status == 404


def test_konnect_error_bodies(kn):
    created(kn.post(f"{KONNECT}/consumers", {"username": "alice"}))
    r = kn.post(f"{KONNECT}/consumers", {"username": "alice"})
    assert r.status == 400
    assert r.json == {"code": 3, "message": "data constraint error", "details": [{
        "@type": "type.googleapis.com/kong.admin.model.v1.ErrorDetail", "type": "ERROR_TYPE_REFERENCE",
        "field": "username", "messages": ["username (type: unique) constraint failed"]}]}
    r = kn.post(f"{KONNECT}/consumers", {"tags": ["a"]})
    assert r.status == 400 and r.json["message"] == "validation error"
    assert r.json["details"] == [{"@type": "type.googleapis.com/kong.admin.model.v1.ErrorDetail",
                                  "type": "ERROR_TYPE_ENTITY",
                                  "messages": ["at least one of these fields must be non-empty: 'custom_id', 'username'"]}]
    r = kn.post(f"{KONNECT}/consumers", {"username": "b", "nope": 1})
    assert r.json["details"][0] == {"@type": "type.googleapis.com/kong.admin.model.v1.ErrorDetail",
                                    "type": "ERROR_TYPE_FIELD", "field": "nope", "messages": ["unknown field"]}


def test_konnect_429_with_retry_after(kn):
    rule = {"rules": [{"method": "GET", "path_regex": "/core-entities/consumers$", "status": 429, "times": 1,
                       "retry_after": 3, "headers": {"RateLimit-Remaining": "0", "X-RateLimit-Remaining-Minute": "0"}}]}
    assert kn.post("/__test/faults", rule).status == 200
    r = kn.get(f"{KONNECT}/consumers")
    assert r.status == 429 and r.headers["Retry-After"] == "3"
    assert r.json == {"message": "API rate limit exceeded"} and len(r.raw) == 37
    assert kn.get(f"{KONNECT}/consumers").status == 200
    gaps = kn.get("/__test/stats").json["retry_gaps"]
    assert gaps[0]["path"] == f"{KONNECT}/consumers" and gaps[0]["gap_ms"] is not None


def test_konnect_switch_at_runtime(api):
    assert api.get(f"{KONNECT}/consumers").status == 404            # off by default
    r = api.post("/__test/konnect", {"control_plane_id": CP, "tokens": ["t1"]})
    assert r.status == 200 and r.json["control_plane"]["id"] == CP
    assert api.get(f"{KONNECT}/consumers").status == 401
    ok = api.get(f"{KONNECT}/consumers", headers={"Authorization": "Bearer t1"})
    assert ok.status == 200 and ok.json == {"data": [], "next": None}
    assert api.post("/__test/konnect", {"control_plane_id": CP}).json["tokens"] is None
    assert api.get(f"{KONNECT}/consumers", headers={"Authorization": "Bearer anything"}).status == 200
    assert api.post("/__test/konnect", {"control_plane_id": "nope"}).status == 400
    assert api.delete("/__test/konnect").status == 204
    assert api.get(f"{KONNECT}/consumers", headers={"Authorization": "Bearer t1"}).status == 404
