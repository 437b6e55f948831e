#!/usr/bin/env python3
"""Kong Admin API test server (Python 3.11 standard library only).

Follows Kong Gateway 3.9 OSS, DB-backed with the Postgres strategy, as summarised in
KONG-FACTS.md in this folder (cited below as "doc §N"). Only what the idp-sync worker touches
is modelled: node info, consumers, key-auth credentials (table `keyauth_credentials`), the other
credential types (basic-auth, hmac-auth, jwt, oauth2, acls: doc §14), plugins (request-termination,
key-auth, rate-limiting, acl, basic-auth, hmac-auth, jwt, oauth2, ip-restriction), tags, pagination
and the error bodies. With --workspaces or --rbac it acts as a Kong Enterprise 3.9.1.0 node
(workspaces and endpoint RBAC, doc §15); with --konnect it also serves Konnect's control-plane API
(/v2/control-planes/{id}/core-entities/…, doc §16) over the same store.
It is a fixture, not Kong: what it does not model is listed in README.md.

Usage:
  python3 kong_admin_server.py --port 0 --port-file PATH [--host 127.0.0.1] [--seed FILE.json]
                               [--dbless] [--token TOKEN] [--version 3.9.1] [--verbose]
                               [--workspaces ws1,ws2] [--rbac RBAC.json]
                               [--konnect CP_ID] [--konnect-token TOKEN …]

The real port is written to PATH (temp file + rename) once the socket listens. SIGTERM or SIGINT
stops the server and it exits 0.

Besides the Kong routes there is a test-control API under /__test/ (never counted in the stats,
never needs the token): stats, reset-stats, state, seed, generate, faults, quirks, clock, rbac,
konnect, reset. See README.md for its bodies. `quirks` switches on hostile behaviour for
GET /consumers (endless offsets, an ignored tags filter, a gzip bomb) for the client's security tests.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import copy
import email.utils
import heapq
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

DEFAULT_VERSION = "3.9.1"
DEFAULT_EE_VERSION = "3.9.1.0"       # what GET / reports with workspaces or RBAC on (doc §11)

# ---------------------------------------------------------------------------------------------
# JSON as lua-cjson writes it (doc §1): `/` is escaped as `\/`, non-ASCII is written raw,
# DEL is escaped. The Python encoder only emits `/` inside strings, so a plain replace is exact.
# ---------------------------------------------------------------------------------------------

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def cjson_bytes(value) -> bytes:
    text = _ENCODER.encode(value).replace("/", "\\/")
    if "\x7f" in text:
        text = text.replace("\x7f", "\\u007f")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates that came in through JSON escapes
        return text.encode("utf-8", "surrogatepass")


def state_bytes(value) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"
    )


# ---------------------------------------------------------------------------------------------
# Lua / nginx look-alikes
# ---------------------------------------------------------------------------------------------

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_uuid(value) -> bool:
    """kong.tools.uuid.is_valid_uuid: 8-4-4-4-12 hex, case-insensitive (doc §2)."""
    return isinstance(value, str) and len(value) == 36 and _UUID_RE.match(value) is not None


def ngx_unescape(raw: str) -> str:
    """ngx.unescape_uri: %XX decoded and `+` read as a space (lua-nginx-module docs:
    unescape_uri("b%20r56+7") == "b r56 7"). Invalid escapes are left alone."""
    data = unquote_to_bytes(raw.replace("+", " "))
    return data.decode("utf-8", "surrogateescape")


def ngx_escape(value) -> str:
    """ngx.escape_uri (component): everything but ALPHA, DIGIT and `-._~` becomes %XX."""
    if isinstance(value, bytes):
        return quote_from_bytes(value, safe="")
    return quote(value.encode("utf-8", "surrogateescape"), safe="")


_LUA_SPACE = " \t\n\v\f\r"
_LUA_DEC = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_LUA_HEX = re.compile(r"[+-]?0[xX][0-9a-fA-F]+")
_LUA_SPECIAL = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)


def lua_tonumber(text):
    """LuaJIT tonumber() on a string: surrounding whitespace ok, decimal, exponent, hex (doc §4)."""
    if not isinstance(text, str):
        return None
    s = text.strip(_LUA_SPACE)
    if _LUA_DEC.fullmatch(s):
        return float(s)
    if _LUA_HEX.fullmatch(s):
        return float(int(s, 16))
    if _LUA_SPECIAL.fullmatch(s):
        return float(s)
    return None


def lua_pretty(value) -> str:
    """pl.pretty.write(value, "") as used in kong/db/errors.lua messages: keys sorted,
    strings double-quoted, null printed as `null` (doc §10)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "{" + ",".join(lua_pretty(v) for v in value) + "}"
    if isinstance(value, dict):
        parts = []
        for key in sorted(value):
            name = key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else "[" + lua_pretty(key) + "]"
            parts.append(name + "=" + lua_pretty(value[key]))
        return "{" + ",".join(parts) + "}"
    return str(value)


# ---------------------------------------------------------------------------------------------
# Errors (doc §10, kong/db/errors.lua)
# ---------------------------------------------------------------------------------------------


class KongError(Exception):
    def __init__(self, status: int, body, headers=()):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = list(headers)


def plain(status: int, message: str) -> KongError:
    return KongError(status, {"message": message})


NOT_FOUND = {"message": "Not found"}


def not_found() -> KongError:
    return KongError(404, {"message": "Not found"})


def _violation_lines(fields: dict) -> list:
    buf = list(fields.get("@entity", []))
    for name in sorted(k for k in fields if k != "@entity"):
        err = fields[name]
        if isinstance(err, dict):
            for sub in sorted(err):
                val = err[sub]
                buf.append(f"{name}.{sub}: {lua_pretty(val) if isinstance(val, (dict, list)) else val}")
        elif isinstance(err, list):
            for i, val in enumerate(err, 1):
                if val is not None:
                    buf.append(f"{name}.{i}: {lua_pretty(val) if isinstance(val, (dict, list)) else val}")
        else:
            buf.append(f"{name}: {err}")
    return buf


def schema_violation(fields: dict) -> KongError:
    """Code 2: `schema violation (f: msg)` or `N schema violations (a: x; b: y)` (doc §10)."""
    buf = _violation_lines(fields)
    if len(buf) == 1:
        message = f"schema violation ({buf[0]})"
    else:
        message = f"{len(buf)} schema violations ({'; '.join(buf)})"
    return KongError(400, {"code": 2, "name": "schema violation", "message": message, "fields": fields})


def primary_key_violation(pk: dict) -> KongError:
    """Code 3, HTTP 400: POST with an existing id (doc §6)."""
    return KongError(400, {
        "code": 3, "name": "primary key violation",
        "message": f"primary key violation on key '{lua_pretty(pk)}'", "fields": pk,
    })


def foreign_key_violation(field: str, key: dict, parent: str) -> KongError:
    """Code 4: a well-formed id that references nothing (doc §6)."""
    return KongError(400, {
        "code": 4, "name": "foreign key violation",
        "message": f"the foreign key '{lua_pretty(key)}' does not reference an existing '{parent}' entity.",
        "fields": {field: key},
    })


def unique_violation(key: dict) -> KongError:
    """Code 5, HTTP 409 (doc §6, §8)."""
    return KongError(409, {
        "code": 5, "name": "unique constraint violation",
        "message": f"UNIQUE violation detected on '{lua_pretty(key)}'", "fields": key,
    })


def dao_not_found_pk(pk: dict) -> KongError:
    """Code 6 on PATCH by id (doc §6)."""
    return KongError(404, {
        "code": 6, "name": "not found",
        "message": f"could not find the entity with primary key '{lua_pretty(pk)}'", "fields": pk,
    })


def dao_not_found_field(filt: dict) -> KongError:
    """Code 6 on PATCH by endpoint key (doc §6)."""
    return KongError(404, {
        "code": 6, "name": "not found",
        "message": f"could not find the entity with '{lua_pretty(filt)}'", "fields": filt,
    })


def invalid_offset(token: str, why: str) -> KongError:
    return KongError(400, {"code": 7, "name": "invalid offset",
                           "message": f"'{token}' is not a valid offset: {why}"})


def invalid_size(message: str) -> KongError:
    return KongError(400, {"code": 9, "name": "invalid size", "message": message})


def invalid_unique(name: str, message: str) -> KongError:
    return KongError(400, {"code": 10, "name": f"invalid unique {name}", "message": message})


def invalid_options(options: dict) -> KongError:
    """Code 11: note the key is `options`, not `fields` (doc §5, §7)."""
    buf = [f"{k}: {options[k]}" for k in sorted(options)]
    if len(buf) == 1:
        message = f"invalid option ({buf[0]})"
    else:
        message = f"{len(buf)} option violations ({'; '.join(buf)})"
    return KongError(400, {"code": 11, "name": "invalid options", "message": message, "options": options})


def operation_unsupported(verb: str, table: str) -> KongError:
    """Code 12, HTTP 405 in DB-less mode (doc §1)."""
    return KongError(405, {
        "code": 12, "name": "operation unsupported",
        "message": f"cannot {verb} '{table}' entities when not using a database",
    })


def foreign_keys_unresolved(field: str, key_name: str, value, parent: str) -> KongError:
    """Code 13: a `{username:…}` reference that resolves to nothing (doc §6)."""
    reason = (f"the foreign key cannot be resolved with '{lua_pretty({key_name: value})}' "
              f"for an existing '{parent}' entity")
    return KongError(400, {
        "code": 13, "name": "foreign keys unresolved",
        "message": f"foreign key unresolved ({field}.{key_name}: {reason})",
        "fields": {field: {key_name: reason}},
    })


# ---------------------------------------------------------------------------------------------
# Field validation (kong/db/schema/init.lua messages; strings have an implicit len_min of 1)
# ---------------------------------------------------------------------------------------------

MISSING = object()


def v_string(value):
    if not isinstance(value, str):
        return "expected a string"
    if len(value) < 1:
        return "length must be at least 1"
    return None


def v_integer(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "expected an integer"
    if isinstance(value, float) and not value.is_integer():
        return "expected an integer"
    return None


def v_number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "expected a number"
    return None


def v_boolean(value):
    return None if isinstance(value, bool) else "expected a boolean"


def v_uuid(value):
    return None if is_uuid(value) else "expected a valid UUID"


def as_int(value):
    return int(value) if isinstance(value, float) else value


_TAG_BYTES_OK = re.compile(rb"^[\x20-\x2B\x2D\x2E\x30-\x7E\x80-\xF4]+$")
TAG_ERROR = "invalid tag '{}': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"


def tag_error(tag):
    """typedefs.tag (doc §5): non-empty, valid UTF-8, printable ASCII except `,` `/`, or non-ASCII."""
    err = v_string(tag)
    if err:
        return err
    try:
        data = tag.encode("utf-8")
    except UnicodeEncodeError:
        data = tag.encode("utf-8", "surrogateescape")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"invalid utf-8 character sequence detected at position {exc.start + 1}"
    if not _TAG_BYTES_OK.match(data):
        return TAG_ERROR.format(tag)
    return None


def normalize_tags(value):
    """Returns (tags_or_None, error). A set: duplicates dropped, order kept; per-element errors
    come back as an array aligned with the input (doc §5)."""
    if value is None:
        return None, None
    if not isinstance(value, list):
        return None, "expected a set"
    errors = [tag_error(t) for t in value]
    if any(errors):
        while errors and errors[-1] is None:
            errors.pop()
        return None, errors
    out, seen = [], set()
    for tag in value:
        if tag not in seen:
            seen.add(tag)
            out.append(tag)
    return out, None


_HEADER_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def v_header_name(value):
    err = v_string(value)
    if err:
        return err
    if not _HEADER_NAME.match(value):
        return f"bad header name '{value}', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
    return None


_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9.\-_~\u0080-\U0010ffff]+$")


def v_instance_name(value):
    err = v_string(value)
    if err:
        return err
    if not _INSTANCE_NAME.match(value):
        return f"invalid value '{value}': it must only contain alphanumeric and '., -, _, ~' characters"
    return None


# ---------------------------------------------------------------------------------------------
# Plugin schemas (doc §3, §8, §14). Only these names are "enabled" on this node.
# ---------------------------------------------------------------------------------------------

PROTOCOLS_HTTP = ["grpc", "grpcs", "http", "https"]


class F:
    """One config field: kind, default, required, extra check."""

    def __init__(self, kind, default=None, required=False, check=None, one_of=None, element=None):
        self.kind, self.default, self.required = kind, default, required
        self.check, self.one_of, self.element = check, one_of, element


def _between(lo, hi):
    def check(v):
        return None if lo <= v <= hi else f"value should be between {lo} and {hi}"
    return check


def _gt0(v):
    return None if v > 0 else "value must be greater than 0"


def _is_present(v):
    return isinstance(v, str) and len(v) > 0


def _rt_check(cfg):
    """request-termination custom_validator (plugins/request-termination/schema.lua)."""
    if _is_present(cfg.get("message")) and (_is_present(cfg.get("content_type")) or _is_present(cfg.get("body"))):
        return "message cannot be used with content_type or body"
    if _is_present(cfg.get("content_type")) and not _is_present(cfg.get("body")):
        return "content_type requires a body"
    if cfg.get("echo") and (_is_present(cfg.get("content_type")) or _is_present(cfg.get("body"))):
        return "echo cannot be used with content_type and body"
    return None


_RL_PERIODS = ["second", "minute", "hour", "day", "month", "year"]

PLUGIN_SCHEMAS = {
    "request-termination": {
        "version": None, "priority": 2, "no_consumer": False, "protocols": PROTOCOLS_HTTP,
        "fields": {
            "status_code": F("integer", 503, required=True, check=_between(100, 599)),
            "message": F("string"),
            "content_type": F("string"),
            "body": F("string"),
            "echo": F("boolean", False, required=True),
            "trigger": F("header_name"),
        },
        "record_check": _rt_check,
    },
    "key-auth": {
        "version": None, "priority": 1250, "no_consumer": True, "protocols": PROTOCOLS_HTTP,
        "fields": {
            "key_names": F("array", ["apikey"], required=True, element="header_name"),
            "hide_credentials": F("boolean", False, required=True),
            "anonymous": F("string"),
            "key_in_header": F("boolean", True, required=True),
            "key_in_query": F("boolean", True, required=True),
            "key_in_body": F("boolean", False, required=True),
            "run_on_preflight": F("boolean", True, required=True),
            "realm": F("string"),
        },
    },
    "acl": {
        "version": None, "priority": 950, "no_consumer": True, "protocols": PROTOCOLS_HTTP,
        "fields": {
            "allow": F("array", element="string"),
            "deny": F("array", element="string"),
            "hide_groups_header": F("boolean", False, required=True),
            "always_use_authenticated_groups": F("boolean", False, required=True),
            "include_consumer_groups": F("boolean", False, required=True),
        },
        "at_least_one_of": ["allow", "deny"],
        "only_one_of": ["allow", "deny"],
    },
    "rate-limiting": {
        "version": None, "priority": 910, "no_consumer": False, "protocols": PROTOCOLS_HTTP,
        "fields": {
            **{p: F("number", check=_gt0) for p in _RL_PERIODS},
            "limit_by": F("string", "consumer", required=True,
                          one_of=["consumer", "credential", "ip", "service", "header", "path", "consumer-group"]),
            "header_name": F("header_name"),
            "path": F("string"),
            "policy": F("string", "local", required=True, one_of=["local", "cluster", "redis"]),
            "fault_tolerant": F("boolean", True, required=True),
            "hide_client_headers": F("boolean", False, required=True),
            "error_code": F("number", 429),
            "error_message": F("string", "API rate limit exceeded"),
            "sync_rate": F("number", -1, required=True),
            "redis": F("record", {
                "host": None, "port": 6379, "timeout": 2000, "connect_timeout": 2000,
                "send_timeout": 2000, "read_timeout": 2000, "username": None, "password": None,
                "database": 0, "ssl": False, "ssl_verify": False, "server_name": None,
            }),
        },
        "at_least_one_of": _RL_PERIODS,
    },
    # doc §14: the other authentication plugins and ip-restriction. Their configs are modelled
    # loosely (defaults, unknown fields, basic types), like key-auth's.
    "basic-auth": {
        "version": None, "priority": 1100, "no_consumer": True, "protocols": PROTOCOLS_HTTP,
        "fields": {
            "anonymous": F("string"),
            "hide_credentials": F("boolean", False, required=True),
            "realm": F("string", "service", required=True),
        },
    },
    "hmac-auth": {
        "version": None, "priority": 1030, "no_consumer": True, "protocols": PROTOCOLS_HTTP,
        "fields": {
            "hide_credentials": F("boolean", False, required=True),
            "clock_skew": F("number", 300, check=_gt0),
            "anonymous": F("string"),
            "validate_request_body": F("boolean", False, required=True),
            "enforce_headers": F("array", [], element="string"),
            "algorithms": F("array", ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"], element="string"),
            "realm": F("string"),
        },
    },
    "jwt": {
        "version": None, "priority": 1450, "no_consumer": True, "protocols": PROTOCOLS_HTTP,
        "fields": {
            "uri_param_names": F("array", ["jwt"], element="string"),
            "cookie_names": F("array", [], element="string"),
            "key_claim_name": F("string", "iss", required=True),
            "secret_is_base64": F("boolean", False, required=True),
            "claims_to_verify": F("array", element="string"),
            "anonymous": F("string"),
            "run_on_preflight": F("boolean", True, required=True),
            "maximum_expiration": F("number", 0),
            "header_names": F("array", ["authorization"], element="string"),
            "realm": F("string"),
        },
    },
    "oauth2": {
        "version": None, "priority": 1400, "no_consumer": True, "protocols": PROTOCOLS_HTTP,
        "fields": {
            "scopes": F("array", element="string"),
            "mandatory_scope": F("boolean", False, required=True),
            "provision_key": F("string"),
            "token_expiration": F("number", 7200, required=True),
            "enable_authorization_code": F("boolean", False, required=True),
            "enable_implicit_grant": F("boolean", False, required=True),
            "enable_client_credentials": F("boolean", False, required=True),
            "enable_password_grant": F("boolean", False, required=True),
            "hide_credentials": F("boolean", False, required=True),
            "accept_http_if_already_terminated": F("boolean", False),
            "anonymous": F("string"),
            "global_credentials": F("boolean", False, required=True),
            "auth_header_name": F("string", "authorization"),
            "refresh_token_ttl": F("number", 1209600, required=True),
            "reuse_refresh_token": F("boolean", False, required=True),
            "persistent_refresh_token": F("boolean", False, required=True),
            "pkce": F("string", "lax", one_of=["none", "lax", "strict"]),
            "realm": F("string"),
        },
    },
    "ip-restriction": {
        "version": None, "priority": 990, "no_consumer": False, "protocols": PROTOCOLS_HTTP,
        "fields": {
            "allow": F("array", element="string"),
            "deny": F("array", element="string"),
            "status": F("number"),
            "message": F("string"),
        },
        "at_least_one_of": ["allow", "deny"],
    },
}


def _check_config_field(f: F, value):
    if f.kind == "integer":
        return v_integer(value) or (f.check(value) if f.check else None)
    if f.kind == "number":
        return v_number(value) or (f.check(value) if f.check else None)
    if f.kind == "boolean":
        return v_boolean(value)
    if f.kind == "header_name":
        return v_header_name(value)
    if f.kind == "string":
        err = v_string(value)
        if not err and f.one_of and value not in f.one_of:
            err = "expected one of: " + ", ".join(f.one_of)
        return err
    if f.kind == "array":
        if not isinstance(value, list):
            return "expected an array"
        check = v_header_name if f.element == "header_name" else v_string
        errs = [check(v) for v in value]
        if any(errs):
            while errs and errs[-1] is None:
                errs.pop()
            return errs
        return None
    if f.kind == "record":
        return None if isinstance(value, dict) else "expected a record"
    return None


def deep_merge(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def build_plugin_config(name: str, given, existing):
    """Returns (config, error). error is a dict of field errors or a record-level string
    (doc §8: `fields.config = "message cannot be used with content_type or body"`)."""
    schema = PLUGIN_SCHEMAS[name]
    fields = schema["fields"]
    if given is MISSING or given is None:
        given = {}
    if not isinstance(given, dict):
        return None, "expected a record"
    if existing is not None:
        merged = deep_merge(existing, given)
    else:
        merged = copy.deepcopy(given)
    errors = {}
    for key in merged:
        if key not in fields:
            errors[key] = "unknown field"
    config = {}
    for key, f in fields.items():
        if key in merged:
            value = merged[key]
        else:
            value = copy.deepcopy(f.default)
        if value is None:
            if f.required:
                errors[key] = "required field missing"
            config[key] = None
            continue
        if f.kind == "record" and isinstance(value, dict) and isinstance(f.default, dict):
            value = deep_merge(f.default, value)
        err = _check_config_field(f, value)
        if err:
            errors[key] = err
        config[key] = as_int(value) if f.kind == "integer" else value
    if errors:
        return None, errors
    check = schema.get("record_check")
    if check:
        err = check(config)
        if err:
            return None, err
    return config, None


# ---------------------------------------------------------------------------------------------
# Storage: one table per entity, rows in a dict plus a sorted id list (keyset pages by bisect),
# and a per-tag sorted id list for ?tags= filters.
# ---------------------------------------------------------------------------------------------


class Table:
    __slots__ = ("name", "api_name", "rows", "ids", "tag_index")

    def __init__(self, name: str, api_name: str):
        self.name, self.api_name = name, api_name
        self.rows: dict = {}
        self.ids: list = []
        self.tag_index: dict = {}

    def add(self, row: dict):
        rid = row["id"]
        self.rows[rid] = row
        bisect.insort(self.ids, rid)
        for tag in row["tags"] or ():
            bisect.insort(self.tag_index.setdefault(tag, []), rid)

    def bulk_add(self, rows: list):
        per_tag: dict = {}
        for row in rows:
            self.rows[row["id"]] = row
            for tag in row["tags"] or ():
                per_tag.setdefault(tag, []).append(row["id"])
        self.ids.extend(r["id"] for r in rows)
        self.ids.sort()
        for tag, ids in per_tag.items():
            lst = self.tag_index.setdefault(tag, [])
            lst.extend(ids)
            lst.sort()

    def remove(self, rid: str) -> dict:
        row = self.rows.pop(rid)
        i = bisect.bisect_left(self.ids, rid)
        del self.ids[i]
        self._unindex(rid, row["tags"] or ())
        return row

    def _unindex(self, rid, tags):
        for tag in tags:
            lst = self.tag_index.get(tag)
            if lst is None:
                continue
            i = bisect.bisect_left(lst, rid)
            if i < len(lst) and lst[i] == rid:
                del lst[i]
            if not lst:
                del self.tag_index[tag]

    def replace(self, row: dict):
        rid = row["id"]
        old = self.rows[rid]
        old_tags, new_tags = set(old["tags"] or ()), set(row["tags"] or ())
        self._unindex(rid, old_tags - new_tags)
        for tag in new_tags - old_tags:
            bisect.insort(self.tag_index.setdefault(tag, []), rid)
        self.rows[rid] = row

    def iter_after(self, cursor, cond=None, tags=None):
        """Ids greater than cursor in id order, optionally filtered by tags (AND / OR)."""
        if not tags:
            ids = self.ids
            start = bisect.bisect_right(ids, cursor) if cursor is not None else 0
            return (ids[i] for i in range(start, len(ids)))
        if cond == "and":
            lists = [self.tag_index.get(t) for t in tags]
            if any(lst is None for lst in lists):
                return iter(())
            base = min(lists, key=len)
            rows = self.rows
            need = list(dict.fromkeys(tags))

            def gen_and():
                start = bisect.bisect_right(base, cursor) if cursor is not None else 0
                for i in range(start, len(base)):
                    rid = base[i]
                    rtags = rows[rid]["tags"]
                    if all(t in rtags for t in need):
                        yield rid
            return gen_and()
        lists = [self.tag_index[t] for t in dict.fromkeys(tags) if t in self.tag_index]

        def part(lst):
            start = bisect.bisect_right(lst, cursor) if cursor is not None else 0
            return (lst[i] for i in range(start, len(lst)))

        def gen_or():
            last = None
            for rid in heapq.merge(*[part(lst) for lst in lists]):
                if rid != last:
                    last = rid
                    yield rid
        return gen_or()


def new_uuid() -> str:
    return str(uuid.uuid4())


def fast_uuids(n: int) -> list:
    """n random version-4 UUIDs, lowercase, quickly."""
    raw = os.urandom(16 * n)
    out = []
    append = out.append
    for i in range(n):
        b = bytearray(raw[16 * i:16 * i + 16])
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        h = b.hex()
        append(f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}")
    return out


_KEY_TRANS = bytes.maketrans(b"+/", b"xQ")


def random_keys(n: int) -> list:
    """kong.tools.rand.random_string style: 32 alphanumeric characters (doc §3)."""
    data = base64.b64encode(os.urandom(24 * n)).translate(_KEY_TRANS).decode("ascii")
    return [data[32 * i:32 * i + 32] for i in range(n)]


# ---------------------------------------------------------------------------------------------
# The other credential types (doc §14): one generic model for basic-auth, hmac-auth, jwt,
# oauth2 and acls. key-auth keeps its own code above (TTL, doc §7).
# ---------------------------------------------------------------------------------------------


class CF:
    """One credential field (daos.lua): kind string|boolean|uri_array, required, unique, auto."""

    def __init__(self, kind="string", required=False, unique=False, auto=False, default=None, one_of=None):
        self.kind, self.required, self.unique, self.auto = kind, required, unique, auto
        self.default, self.one_of = default, one_of


class CredKind:
    def __init__(self, plugin, table, top, nested, endpoint_key, fields, konnect=True, cache_key=None):
        self.plugin, self.table, self.top, self.nested = plugin, table, top, nested
        self.endpoint_key = endpoint_key        # None: only the id addresses it at top level
        self.fields = fields                    # ordered: rendered in this order
        self.konnect = konnect                  # served under Konnect's core-entities (doc §16)
        self.cache_key = cache_key              # acls: unique (consumer, group)
        self.allowed = ("id", "created_at", "consumer", "tags") + tuple(fields)


JWT_ALGORITHMS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512",
                  "PS256", "PS384", "PS512", "EdDSA"]
JWT_NEEDS_KEY = ("RS256", "RS512")          # jwt/daos.lua entity_checks conditional

CRED_KINDS = {
    "basic-auth": CredKind("basic-auth", "basicauth_credentials", "basic-auths", "basic-auth", "username", {
        "username": CF(required=True, unique=True),
        "password": CF(required=True),
    }),
    "hmac-auth": CredKind("hmac-auth", "hmacauth_credentials", "hmac-auths", "hmac-auth", "username", {
        "username": CF(required=True, unique=True),
        "secret": CF(auto=True),
    }),
    "jwt": CredKind("jwt", "jwt_secrets", "jwts", "jwt", "key", {
        "key": CF(unique=True, auto=True),
        "secret": CF(auto=True),
        "rsa_public_key": CF(),
        "algorithm": CF(default="HS256", one_of=JWT_ALGORITHMS),
    }),
    "oauth2": CredKind("oauth2", "oauth2_credentials", "oauth2", "oauth2", "client_id", {
        "name": CF(required=True),
        "client_id": CF(unique=True, auto=True),
        "client_secret": CF(auto=True),
        "hash_secret": CF("boolean", required=True, default=False),
        "redirect_uris": CF("uri_array"),
        "client_type": CF(required=True, default="confidential", one_of=["confidential", "public"]),
    }, konnect=False),
    "acls": CredKind("acls", "acls", "acls", "acls", None, {
        "group": CF(required=True),
    }, cache_key=("consumer", "group")),
}
CRED_BY_TOP = {k.top: k for k in CRED_KINDS.values()}
CRED_BY_NESTED = {k.nested: k for k in CRED_KINDS.values()}

_PEM_PUBLIC = re.compile(r"-----BEGIN (?:RSA )?PUBLIC KEY-----\s*[A-Za-z0-9+/=\s]+-----END (?:RSA )?PUBLIC KEY-----")


def v_pem_public_key(value):
    """jwt validate_ssl_key: the fixture only checks the PEM armour (no OpenSSL here)."""
    return None if isinstance(value, str) and _PEM_PUBLIC.search(value) else "invalid key"


def v_redirect_uri(uri):
    """oauth2/daos.lua validate_uri: scheme and host required, no fragment."""
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return f"cannot parse '{uri}'"
    if not parts.scheme or not host:
        return f"cannot parse '{uri}'"
    if parts.fragment or "#" in uri:
        return f"fragment not allowed in '{uri}'"
    return None


def basic_auth_hash(consumer_id: str, password) -> str:
    """basic-auth/crypto.lua: sha1 hex of password .. consumer_id (doc §14)."""
    import hashlib
    return hashlib.sha1(((password or "") + consumer_id).encode("utf-8", "surrogateescape")).hexdigest()


def oauth2_hash(secret: str) -> str:
    """oauth2/secret.lua with PBKDF2: `$pbkdf2-sha512$i=10000,l=32$salt$hash`, unpadded base64."""
    import hashlib
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode("utf-8", "surrogateescape"), salt, 10000, 32)
    b64 = lambda b: base64.b64encode(b).decode("ascii").rstrip("=")  # noqa: E731
    return f"$pbkdf2-sha512$i=10000,l=32${b64(salt)}${b64(digest)}"


def invalid_primary_key(fields: dict) -> KongError:
    """Code 1: a non-UUID id where no endpoint key exists (doc §14, /acls/{x})."""
    return KongError(400, {"code": 1, "name": "invalid primary key",
                           "message": f"invalid primary key: '{lua_pretty(fields)}'", "fields": fields})


class CredState:
    """One credential table of one workspace with its indexes."""
    __slots__ = ("kind", "table", "unique", "of", "cache")

    def __init__(self, kind: CredKind):
        self.kind = kind
        self.table = Table(kind.table, kind.top)
        self.unique = {name: {} for name, f in kind.fields.items() if f.unique}   # field -> value -> id
        self.of: dict = {}          # consumer id -> [ids]
        self.cache: dict = {}       # acls: (consumer id, group) -> id


CONSUMER_FIELDS = ("id", "created_at", "updated_at", "username", "custom_id", "tags")
KEYAUTH_FIELDS = ("id", "created_at", "consumer", "key", "tags")
PLUGIN_FIELDS = ("id", "name", "instance_name", "created_at", "updated_at", "route", "service",
                 "consumer", "config", "protocols", "enabled", "tags")
TTL_MAX = 100000000


class Clock:
    """The server clock's offset, shared by every workspace's store."""

    def __init__(self):
        self.offset = 0


class Store:
    """All entity state of one workspace. Callers hold `lock` around every use; the workspaces of
    one server share the lock and the clock (doc §15)."""

    def __init__(self, lock=None, clock=None):
        self.lock = lock if lock is not None else threading.RLock()
        self.clock = clock if clock is not None else Clock()
        self.reset()

    @property
    def clock_offset(self) -> int:
        return self.clock.offset

    @clock_offset.setter
    def clock_offset(self, value: int):
        self.clock.offset = value

    def reset(self):
        self.consumers = Table("consumers", "consumers")
        self.keys = Table("keyauth_credentials", "key-auths")
        self.plugins = Table("plugins", "plugins")
        self.creds = {name: CredState(kind) for name, kind in CRED_KINDS.items()}
        self.cred_of_table = {id(st.table): st.kind for st in self.creds.values()}
        self.by_username: dict = {}
        self.by_custom_id: dict = {}
        self.by_key: dict = {}
        self.by_instance: dict = {}
        self.by_cache_key: dict = {}
        self.keys_of: dict = {}      # consumer id -> [key ids]
        self.plugins_of: dict = {}   # consumer id -> [plugin ids]
        self.expiry: list = []       # heap of (expires_at, key id)

    def now(self) -> int:
        return int(time.time()) + self.clock_offset

    # ---- TTL (doc §7): expired credentials vanish from every read at once -------------------
    def purge_expired(self):
        now = self.now()
        heap = self.expiry
        while heap and heap[0][0] <= now:
            expires_at, kid = heapq.heappop(heap)
            row = self.keys.rows.get(kid)
            if row is not None and row["expires_at"] == expires_at:
                self._delete_key_row(kid)

    # ---- lookups by id or endpoint key (doc §2) ----------------------------------------------
    def find_consumer(self, ident: str):
        if is_uuid(ident):
            return self.consumers.rows.get(ident.lower())
        cid = self.by_username.get(ident)
        return self.consumers.rows.get(cid) if cid else None

    def find_key(self, ident: str):
        if is_uuid(ident):
            return self.keys.rows.get(ident.lower())
        kid = self.by_key.get(ident)
        return self.keys.rows.get(kid) if kid else None

    def find_plugin(self, ident: str):
        if is_uuid(ident):
            return self.plugins.rows.get(ident.lower())
        pid = self.by_instance.get(ident)
        return self.plugins.rows.get(pid) if pid else None

    # ---- rendering (doc §3: responses always include null fields) ----------------------------
    def render_key(self, row):
        exp = row["expires_at"]
        return {
            "id": row["id"], "created_at": row["created_at"], "consumer": {"id": row["consumer_id"]},
            "key": row["key"], "tags": row["tags"],
            "ttl": None if exp is None else max(0, exp - self.now()),
        }

    def render_plugin(self, row):
        cid = row["consumer_id"]
        return {
            "id": row["id"], "name": row["name"], "instance_name": row["instance_name"],
            "created_at": row["created_at"], "updated_at": row["updated_at"],
            "route": None, "service": None, "consumer": {"id": cid} if cid else None,
            "config": row["config"], "protocols": row["protocols"], "enabled": row["enabled"],
            "tags": row["tags"],
        }

    def render(self, table: Table, row):
        if table is self.keys:
            return self.render_key(row)
        if table is self.plugins:
            return self.render_plugin(row)
        kind = self.cred_of_table.get(id(table))
        if kind is not None:
            return self.render_cred(kind, row)
        return row

    # ---- common checks ------------------------------------------------------------------------
    @staticmethod
    def _unknown_fields(body: dict, allowed, errors: dict):
        for key in body:
            if key not in allowed:
                errors[key] = "unknown field"

    @staticmethod
    def _check_id_and_timestamps(body, errors):
        if body.get("id") is not None:
            err = v_uuid(body["id"])
            if err:
                errors["id"] = err
        for key in ("created_at", "updated_at"):
            if body.get(key) is not None:
                err = v_integer(body[key])
                if err:
                    errors[key] = err

    def _check_consumer_ref(self, value, errors):
        """Schema part of a `consumer` foreign value; resolution happens later."""
        if value is None:
            return
        if not isinstance(value, dict):
            errors["consumer"] = "expected a record"
            return
        sub = {}
        for key in value:
            if key not in ("id", "username", "custom_id"):
                sub[key] = "unknown field"
        if "id" in value:
            err = v_uuid(value["id"])
            if err:
                sub["id"] = err
        elif "username" in value or "custom_id" in value:
            for key in ("username", "custom_id"):
                if key in value:
                    err = v_string(value[key])
                    if err:
                        sub[key] = err
        else:
            sub["id"] = "required field missing"
        if sub:
            errors["consumer"] = sub

    def _resolve_consumer_ref(self, value):
        """-> consumer id or None; raises code 13 / code 4 (doc §6)."""
        if value is None:
            return None
        if "id" in value:
            cid = value["id"].lower()
            if cid not in self.consumers.rows:
                raise foreign_key_violation("consumer", {"id": cid}, "consumers")
            return cid
        for key, index in (("username", self.by_username), ("custom_id", self.by_custom_id)):
            if key in value:
                cid = index.get(value[key])
                if cid is None:
                    raise foreign_keys_unresolved("consumer", key, value[key], "consumers")
                return cid
        return None

    def _check_unique(self, index: dict, field: str, value, self_id):
        if value is None:
            return
        other = index.get(value)
        if other is not None and other != self_id:
            raise unique_violation({field: value})

    # ---- consumers (doc §3, §6) ---------------------------------------------------------------
    def build_consumer(self, body: dict, mode: str, existing=None, force=None) -> dict:
        """mode: insert (POST), upsert (PUT, full replacement) or update (PATCH, merge)."""
        force = force or {}
        errors: dict = {}
        self._unknown_fields(body, CONSUMER_FIELDS, errors)
        self._check_id_and_timestamps(body, errors)
        for key in ("username", "custom_id"):
            if body.get(key) is not None:
                err = v_string(body[key])
                if err:
                    errors[key] = err
        tags, terr = normalize_tags(body.get("tags"))
        if terr:
            errors["tags"] = terr
        now = self.now()
        if mode == "update":
            row = dict(existing)
            for key in ("username", "custom_id"):
                if key in body:
                    row[key] = body[key]
            if "tags" in body:
                row["tags"] = tags
            if body.get("created_at") is not None and "created_at" not in errors:
                row["created_at"] = as_int(body["created_at"])
        else:
            rid = force.get("id") or (existing["id"] if existing is not None else None)
            if rid is None and body.get("id") is not None and "id" not in errors:
                rid = body["id"].lower()
            row = {
                "id": rid or new_uuid(),
                "created_at": as_int(body["created_at"]) if body.get("created_at") is not None and "created_at" not in errors else now,
                "updated_at": now,
                "username": body.get("username"),
                "custom_id": body.get("custom_id"),
                "tags": tags,
            }
        for key, value in force.items():
            if key != "id":
                row[key] = value
        row["updated_at"] = now
        if "username" not in errors and "custom_id" not in errors and row["username"] is None and row["custom_id"] is None:
            errors["@entity"] = ["at least one of these fields must be non-empty: 'custom_id', 'username'"]
        if errors:
            raise schema_violation(errors)
        return row

    def insert_consumer(self, body: dict) -> dict:
        row = self.build_consumer(body, "insert")
        if row["id"] in self.consumers.rows:
            raise primary_key_violation({"id": row["id"]})
        self._check_unique(self.by_username, "username", row["username"], None)
        self._check_unique(self.by_custom_id, "custom_id", row["custom_id"], None)
        self._store_consumer(row, None)
        return row

    def _store_consumer(self, row, old):
        if old is not None:
            if old["username"] is not None:
                self.by_username.pop(old["username"], None)
            if old["custom_id"] is not None:
                self.by_custom_id.pop(old["custom_id"], None)
            self.consumers.replace(row)
        else:
            self.consumers.add(row)
        if row["username"] is not None:
            self.by_username[row["username"]] = row["id"]
        if row["custom_id"] is not None:
            self.by_custom_id[row["custom_id"]] = row["id"]

    def update_consumer(self, existing: dict, body: dict) -> dict:
        row = self.build_consumer(body, "update", existing)
        self._check_unique(self.by_username, "username", row["username"], row["id"])
        self._check_unique(self.by_custom_id, "custom_id", row["custom_id"], row["id"])
        self._store_consumer(row, existing)
        return row

    def upsert_consumer(self, ident: str, body: dict) -> dict:
        """PUT: full replacement; a UUID path is the id, otherwise the username (doc §6)."""
        if is_uuid(ident):
            existing = self.consumers.rows.get(ident.lower())
            row = self.build_consumer(body, "upsert", existing, force={"id": ident.lower()})
        else:
            existing = self.find_consumer(ident)
            row = self.build_consumer(body, "upsert", existing, force={"username": ident})
            if existing is None and row["id"] in self.consumers.rows:
                raise primary_key_violation({"id": row["id"]})
        self._check_unique(self.by_username, "username", row["username"], row["id"])
        self._check_unique(self.by_custom_id, "custom_id", row["custom_id"], row["id"])
        self._store_consumer(row, existing)
        return row

    def delete_consumer(self, cid: str):
        """Cascades to the consumer's credentials and plugins (doc §6, §14)."""
        for kid in list(self.keys_of.get(cid, ())):
            self._delete_key_row(kid)
        for kind in CRED_KINDS.values():
            st = self.cred(kind)
            for rid in list(st.of.get(cid, ())):
                self._delete_cred_row(kind, rid)
            st.of.pop(cid, None)
        for pid in list(self.plugins_of.get(cid, ())):
            self._delete_plugin_row(pid)
        self.keys_of.pop(cid, None)
        self.plugins_of.pop(cid, None)
        row = self.consumers.remove(cid)
        if row["username"] is not None:
            self.by_username.pop(row["username"], None)
        if row["custom_id"] is not None:
            self.by_custom_id.pop(row["custom_id"], None)

    # ---- key-auth credentials (doc §3, §7) ----------------------------------------------------
    @staticmethod
    def _ttl_option(body: dict):
        """`ttl` is an option, not a column (doc §7). Returns MISSING or the integer."""
        if "ttl" not in body:
            return MISSING
        ttl = body.pop("ttl")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or (isinstance(ttl, float) and not ttl.is_integer()) \
                or ttl < 0 or ttl > TTL_MAX:
            raise invalid_options({"ttl": f"must be an integer between 0 and {TTL_MAX}"})
        return int(ttl)

    def build_key(self, body: dict, mode: str, existing=None, force=None):
        force = force or {}
        body = dict(body)
        ttl = self._ttl_option(body)
        errors: dict = {}
        self._unknown_fields(body, KEYAUTH_FIELDS, errors)
        self._check_id_and_timestamps(body, errors)
        if "updated_at" in body:
            errors["updated_at"] = "unknown field"
        if body.get("key") is not None:
            err = v_string(body["key"])
            if err:
                errors["key"] = err
        tags, terr = normalize_tags(body.get("tags"))
        if terr:
            errors["tags"] = terr
        consumer_ref = MISSING
        if "consumer_id" in force:
            pass                                # nested routes set the consumer themselves
        elif "consumer" in body:
            consumer_ref = body["consumer"]
            self._check_consumer_ref(consumer_ref, errors)
            if consumer_ref is None:
                errors["consumer"] = "required field missing"
        elif mode != "update":
            errors["consumer"] = "required field missing"
        if errors:
            raise schema_violation(errors)
        now = self.now()
        if mode == "update":
            row = dict(existing)
            if "key" in body:
                if body["key"] is None:
                    raise schema_violation({"key": "required field missing"})
                row["key"] = body["key"]
            if "tags" in body:
                row["tags"] = tags
            if body.get("created_at") is not None:
                row["created_at"] = as_int(body["created_at"])
        else:
            rid = force.get("id") or (existing["id"] if existing is not None else None)
            if rid is None and body.get("id") is not None and "id" not in errors:
                rid = body["id"].lower()
            row = {
                "id": rid or new_uuid(),
                "created_at": as_int(body["created_at"]) if body.get("created_at") is not None else now,
                "consumer_id": None,
                "key": body.get("key") or random_keys(1)[0],
                "tags": tags,
                "expires_at": None,
            }
        if "key" in force:
            row["key"] = force["key"]
        if "consumer_id" in force:
            row["consumer_id"] = force["consumer_id"]
        elif consumer_ref is not MISSING:
            row["consumer_id"] = self._resolve_consumer_ref(consumer_ref)
        if ttl is not MISSING:
            row["expires_at"] = now + ttl if ttl > 0 else None
        elif mode == "upsert":
            row["expires_at"] = None     # PUT without ttl clears the expiry (doc §7)
        return row

    def _store_key(self, row, old):
        if old is not None:
            self.by_key.pop(old["key"], None)
            if old["consumer_id"] != row["consumer_id"]:
                lst = self.keys_of.get(old["consumer_id"])
                if lst and row["id"] in lst:
                    lst.remove(row["id"])
                self.keys_of.setdefault(row["consumer_id"], []).append(row["id"])
            self.keys.replace(row)
        else:
            self.keys.add(row)
            self.keys_of.setdefault(row["consumer_id"], []).append(row["id"])
        self.by_key[row["key"]] = row["id"]
        if row["expires_at"] is not None:
            heapq.heappush(self.expiry, (row["expires_at"], row["id"]))

    def insert_key(self, body: dict, force=None) -> dict:
        row = self.build_key(body, "insert", force=force)
        if row["id"] in self.keys.rows:
            raise primary_key_violation({"id": row["id"]})
        self._check_unique(self.by_key, "key", row["key"], None)
        self._store_key(row, None)
        return row

    def update_key(self, existing: dict, body: dict, force=None) -> dict:
        row = self.build_key(body, "update", existing, force=force)
        self._check_unique(self.by_key, "key", row["key"], row["id"])
        self._store_key(row, existing)
        return row

    def upsert_key(self, ident: str, body: dict, force=None) -> dict:
        force = dict(force or {})
        if is_uuid(ident):
            existing = self.keys.rows.get(ident.lower())
            force["id"] = ident.lower()
        else:
            existing = self.find_key(ident)
            force["key"] = ident
        row = self.build_key(body, "upsert", existing, force=force)
        if existing is None and row["id"] in self.keys.rows:
            raise primary_key_violation({"id": row["id"]})
        self._check_unique(self.by_key, "key", row["key"], row["id"])
        self._store_key(row, existing)
        return row

    def _delete_key_row(self, kid: str):
        row = self.keys.remove(kid)
        self.by_key.pop(row["key"], None)
        lst = self.keys_of.get(row["consumer_id"])
        if lst and kid in lst:
            lst.remove(kid)

    # ---- plugins (doc §3, §8) -----------------------------------------------------------------
    def build_plugin(self, body: dict, mode: str, existing=None, force=None) -> dict:
        force = force or {}
        errors: dict = {}
        self._unknown_fields(body, PLUGIN_FIELDS, errors)
        self._check_id_and_timestamps(body, errors)
        name = body.get("name", MISSING)
        if name is MISSING and existing is not None:
            name = existing["name"]
        if name is MISSING or name is None:
            errors["name"] = "required field missing"
            name = None
        else:
            err = v_string(name)
            if err:
                errors["name"] = err
                name = None
            elif name not in PLUGIN_SCHEMAS:
                errors["name"] = f"plugin '{name}' not enabled; add it to the 'plugins' configuration property"
                name = None
        if body.get("instance_name") is not None:
            err = v_instance_name(body["instance_name"])
            if err:
                errors["instance_name"] = err
        if "enabled" in body:
            if body["enabled"] is None:
                errors["enabled"] = "required field missing"
            else:
                err = v_boolean(body["enabled"])
                if err:
                    errors["enabled"] = err
        for ref in ("route", "service"):
            value = body.get(ref)
            if value is not None:
                if not isinstance(value, dict):
                    errors[ref] = "expected a record"
                elif "id" not in value:
                    errors[ref] = {"id": "required field missing"}
                elif v_uuid(value["id"]):
                    errors[ref] = {"id": v_uuid(value["id"])}
        consumer_ref = MISSING
        if "consumer_id" not in force and "consumer" in body:
            consumer_ref = body["consumer"]
            self._check_consumer_ref(consumer_ref, errors)
        tags, terr = normalize_tags(body.get("tags"))
        if terr:
            errors["tags"] = terr
        protocols = MISSING
        if "protocols" in body:
            protocols = body["protocols"]
            if protocols is None:
                errors["protocols"] = "required field missing"
            elif not isinstance(protocols, list):
                errors["protocols"] = "expected a set"
        config = None
        if name is not None:
            schema = PLUGIN_SCHEMAS[name]
            allowed = schema["protocols"]
            if isinstance(protocols, list):
                perrs = [None if p in allowed else "expected one of: " + ", ".join(allowed) for p in protocols]
                if any(perrs):
                    while perrs and perrs[-1] is None:
                        perrs.pop()
                    errors["protocols"] = perrs
                else:
                    protocols = list(dict.fromkeys(protocols))
            same_plugin = existing is not None and existing["name"] == name
            base = existing["config"] if (mode == "update" and same_plugin) else None
            config, cerr = build_plugin_config(name, body.get("config", MISSING), base)
            if cerr:
                errors["config"] = cerr
            elif "config" not in errors:
                entity_errs = []
                if schema.get("only_one_of"):
                    keys = schema["only_one_of"]
                    if sum(1 for k in keys if config.get(k) is not None) > 1:
                        entity_errs.append("only one of these fields must be non-empty: "
                                           + ", ".join(f"'config.{k}'" for k in keys))
                if schema.get("at_least_one_of"):
                    keys = schema["at_least_one_of"]
                    if all(config.get(k) is None for k in keys):
                        entity_errs.append("at least one of these fields must be non-empty: "
                                           + ", ".join(f"'config.{k}'" for k in keys))
                if entity_errs:
                    errors["@entity"] = entity_errs
        now = self.now()
        if mode == "update":
            row = dict(existing)
            row["name"] = name if name is not None else existing["name"]
        else:
            rid = force.get("id") or (existing["id"] if existing is not None else None)
            if rid is None and body.get("id") is not None and "id" not in errors:
                rid = body["id"].lower()
            row = {
                "id": rid or new_uuid(), "name": name, "instance_name": None,
                "created_at": now, "updated_at": now, "route": None, "service": None,
                "consumer_id": None, "config": None, "protocols": None, "enabled": True, "tags": None,
            }
        if body.get("created_at") is not None and "created_at" not in errors:
            row["created_at"] = as_int(body["created_at"])
        if "instance_name" in body:
            row["instance_name"] = body["instance_name"]
        if "enabled" in body and "enabled" not in errors:
            row["enabled"] = body["enabled"]
        if "tags" in body:
            row["tags"] = tags
        if config is not None:
            row["config"] = config
        if isinstance(protocols, list) and "protocols" not in errors:
            row["protocols"] = protocols
        elif row["protocols"] is None and name is not None:
            row["protocols"] = list(PLUGIN_SCHEMAS[name]["protocols"])
        if "instance_name" in force:
            row["instance_name"] = force["instance_name"]
        row["updated_at"] = now
        # consumer: key-auth and acl cannot be scoped to a consumer (doc §8: no_consumer)
        consumer_given = force.get("consumer_id") is not None or (
            consumer_ref is not MISSING and consumer_ref is not None) or (
            mode == "update" and consumer_ref is MISSING and row["consumer_id"] is not None)
        if name is not None and PLUGIN_SCHEMAS[name]["no_consumer"] and consumer_given and "consumer" not in errors:
            errors["consumer"] = "value must be null"
        if errors:
            raise schema_violation(errors)
        for ref in ("route", "service"):
            value = body.get(ref)
            if value is not None:
                raise foreign_key_violation(ref, {"id": value["id"].lower()}, ref + "s")
        if "consumer_id" in force:
            row["consumer_id"] = force["consumer_id"]
        elif consumer_ref is not MISSING:
            row["consumer_id"] = self._resolve_consumer_ref(consumer_ref)
        return row

    @staticmethod
    def _cache_key(row):
        return (row["name"], None, None, row["consumer_id"])

    def _check_plugin_unique(self, row):
        """instance_name is unique; so is (name, route, service, consumer) (doc §8)."""
        self._check_unique(self.by_instance, "instance_name", row["instance_name"], row["id"])
        other = self.by_cache_key.get(self._cache_key(row))
        if other is not None and other != row["id"]:
            cid = row["consumer_id"]
            raise unique_violation({
                "consumer": {"id": cid} if cid else None, "name": row["name"], "route": None, "service": None,
            })

    def _store_plugin(self, row, old):
        if old is not None:
            if old["instance_name"] is not None:
                self.by_instance.pop(old["instance_name"], None)
            self.by_cache_key.pop(self._cache_key(old), None)
            if old["consumer_id"] != row["consumer_id"]:
                lst = self.plugins_of.get(old["consumer_id"])
                if lst and row["id"] in lst:
                    lst.remove(row["id"])
                if row["consumer_id"]:
                    self.plugins_of.setdefault(row["consumer_id"], []).append(row["id"])
            self.plugins.replace(row)
        else:
            self.plugins.add(row)
            if row["consumer_id"]:
                self.plugins_of.setdefault(row["consumer_id"], []).append(row["id"])
        if row["instance_name"] is not None:
            self.by_instance[row["instance_name"]] = row["id"]
        self.by_cache_key[self._cache_key(row)] = row["id"]

    def insert_plugin(self, body: dict, force=None) -> dict:
        row = self.build_plugin(body, "insert", force=force)
        if row["id"] in self.plugins.rows:
            raise primary_key_violation({"id": row["id"]})
        self._check_plugin_unique(row)
        self._store_plugin(row, None)
        return row

    def update_plugin(self, existing: dict, body: dict, force=None) -> dict:
        row = self.build_plugin(body, "update", existing, force=force)
        self._check_plugin_unique(row)
        self._store_plugin(row, existing)
        return row

    def upsert_plugin(self, ident: str, body: dict, force=None) -> dict:
        force = dict(force or {})
        if is_uuid(ident):
            existing = self.plugins.rows.get(ident.lower())
            force["id"] = ident.lower()
        else:
            existing = self.find_plugin(ident)
            force["instance_name"] = ident
        row = self.build_plugin(body, "upsert", existing, force=force)
        if existing is None and row["id"] in self.plugins.rows:
            raise primary_key_violation({"id": row["id"]})
        self._check_plugin_unique(row)
        self._store_plugin(row, existing)
        return row

    def _delete_plugin_row(self, pid: str):
        row = self.plugins.remove(pid)
        if row["instance_name"] is not None:
            self.by_instance.pop(row["instance_name"], None)
        self.by_cache_key.pop(self._cache_key(row), None)
        lst = self.plugins_of.get(row["consumer_id"])
        if lst and pid in lst:
            lst.remove(pid)

    # ---- the other credential types (doc §14) ------------------------------------------------
    def cred(self, kind: CredKind) -> CredState:
        return self.creds[kind.plugin]

    def render_cred(self, kind: CredKind, row):
        out = {"id": row["id"], "created_at": row["created_at"], "consumer": {"id": row["consumer_id"]}}
        for name in kind.fields:
            out[name] = row[name]
        out["tags"] = row["tags"]
        return out

    def find_cred(self, kind: CredKind, ident: str, consumer_id=None):
        """By id, else by the endpoint key; acls by group within one consumer (acl/api.lua)."""
        st = self.cred(kind)
        if is_uuid(ident):
            return st.table.rows.get(ident.lower())
        if kind.endpoint_key is not None:
            rid = st.unique[kind.endpoint_key].get(ident)
            return st.table.rows.get(rid) if rid else None
        if kind.cache_key is not None and consumer_id is not None:
            rid = st.cache.get((consumer_id, ident))
            return st.table.rows.get(rid) if rid else None
        raise invalid_primary_key({"id": "expected a valid UUID"})

    def build_cred(self, kind: CredKind, body: dict, mode: str, existing=None, force=None) -> dict:
        force = force or {}
        errors: dict = {}
        self._unknown_fields(body, kind.allowed, errors)
        self._check_id_and_timestamps(body, errors)
        for name, f in kind.fields.items():
            value = body.get(name)
            if value is None:
                if name in body and f.required:
                    errors[name] = "required field missing"
                continue
            if f.kind == "boolean":
                err = v_boolean(value)
            elif f.kind == "uri_array":
                if not isinstance(value, list):
                    err = "expected an array"
                else:
                    errs = [v_string(u) or v_redirect_uri(u) for u in value]
                    while errs and errs[-1] is None:
                        errs.pop()
                    err = errs or None
            else:
                err = v_string(value)
                if not err and f.one_of and value not in f.one_of:
                    err = "expected one of: " + ", ".join(f.one_of)
            if err:
                errors[name] = err
        tags, terr = normalize_tags(body.get("tags"))
        if terr:
            errors["tags"] = terr
        consumer_ref = MISSING
        if "consumer_id" in force:
            pass
        elif "consumer" in body:
            consumer_ref = body["consumer"]
            self._check_consumer_ref(consumer_ref, errors)
            if consumer_ref is None:
                errors["consumer"] = "required field missing"
        elif mode != "update":
            errors["consumer"] = "required field missing"
        if mode == "update":
            row = dict(existing)
            for name in kind.fields:
                if name in body and name not in errors:
                    row[name] = body[name]
            if "tags" in body:
                row["tags"] = tags
            if body.get("created_at") is not None and "created_at" not in errors:
                row["created_at"] = as_int(body["created_at"])
        else:
            rid = force.get("id") or (existing["id"] if existing is not None else None)
            if rid is None and body.get("id") is not None and "id" not in errors:
                rid = body["id"].lower()
            row = {"id": rid or new_uuid(),
                   "created_at": as_int(body["created_at"]) if body.get("created_at") is not None
                   and "created_at" not in errors else self.now(),
                   "consumer_id": None, "tags": tags}
            for name, f in kind.fields.items():
                value = body.get(name) if name not in errors else None
                if value is None and name not in force:
                    if f.auto:
                        value = random_keys(1)[0]
                    elif f.default is not None:
                        value = f.default
                    elif f.required and name not in errors:
                        errors[name] = "required field missing"
                row[name] = value
        for name, value in force.items():
            if name in kind.fields:
                row[name] = value
        if kind.plugin == "jwt" and "algorithm" not in errors and row["algorithm"] in JWT_NEEDS_KEY \
                and "rsa_public_key" not in errors:
            if row["rsa_public_key"] is None:
                errors["rsa_public_key"] = "required field missing"
            elif v_pem_public_key(row["rsa_public_key"]):
                errors["rsa_public_key"] = "invalid key"
        if errors:
            raise schema_violation(errors)
        if "consumer_id" in force:
            row["consumer_id"] = force["consumer_id"]
        elif consumer_ref is not MISSING:
            row["consumer_id"] = self._resolve_consumer_ref(consumer_ref)
        # transformations (doc §14): run when this write carries the input field
        if kind.plugin == "basic-auth" and (mode != "update" or "password" in body):
            row["password"] = basic_auth_hash(row["consumer_id"], row["password"])
        if kind.plugin == "oauth2" and row["hash_secret"] and row["client_secret"] is not None:
            fresh = mode != "update" or "client_secret" in body
            if fresh or ("hash_secret" in body and not row["client_secret"].startswith("$pbkdf2-")):
                row["client_secret"] = oauth2_hash(row["client_secret"])
        return row

    def _check_cred_unique(self, kind: CredKind, row):
        st = self.cred(kind)
        for name, index in st.unique.items():
            self._check_unique(index, name, row[name], row["id"])
        if kind.cache_key is not None:
            other = st.cache.get((row["consumer_id"], row["group"]))
            if other is not None and other != row["id"]:
                raise unique_violation({"consumer": {"id": row["consumer_id"]}, "group": row["group"]})

    def _store_cred(self, kind: CredKind, row, old):
        st = self.cred(kind)
        if old is not None:
            for name, index in st.unique.items():
                if old[name] is not None:
                    index.pop(old[name], None)
            if kind.cache_key is not None:
                st.cache.pop((old["consumer_id"], old["group"]), None)
            if old["consumer_id"] != row["consumer_id"]:
                lst = st.of.get(old["consumer_id"])
                if lst and row["id"] in lst:
                    lst.remove(row["id"])
                st.of.setdefault(row["consumer_id"], []).append(row["id"])
            st.table.replace(row)
        else:
            st.table.add(row)
            st.of.setdefault(row["consumer_id"], []).append(row["id"])
        for name, index in st.unique.items():
            if row[name] is not None:
                index[row[name]] = row["id"]
        if kind.cache_key is not None:
            st.cache[(row["consumer_id"], row["group"])] = row["id"]

    def insert_cred(self, kind: CredKind, body: dict, force=None) -> dict:
        row = self.build_cred(kind, body, "insert", force=force)
        if row["id"] in self.cred(kind).table.rows:
            raise primary_key_violation({"id": row["id"]})
        self._check_cred_unique(kind, row)
        self._store_cred(kind, row, None)
        return row

    def update_cred(self, kind: CredKind, existing: dict, body: dict, force=None) -> dict:
        row = self.build_cred(kind, body, "update", existing, force=force)
        self._check_cred_unique(kind, row)
        self._store_cred(kind, row, existing)
        return row

    def upsert_cred(self, kind: CredKind, ident: str, body: dict, force=None, existing=MISSING) -> dict:
        """PUT: a UUID path is the id, otherwise the endpoint key (doc §6, §14)."""
        force = dict(force or {})
        st = self.cred(kind)
        if existing is not MISSING:
            pass                                    # acls by group: the caller resolved it
        elif is_uuid(ident):
            existing = st.table.rows.get(ident.lower())
            force["id"] = ident.lower()
        elif kind.endpoint_key is not None:
            existing = self.find_cred(kind, ident)
            force[kind.endpoint_key] = ident
        else:
            raise invalid_primary_key({"id": "expected a valid UUID"})
        if existing is not None:
            force.setdefault("id", existing["id"])
        row = self.build_cred(kind, body, "upsert", existing, force=force)
        if existing is None and row["id"] in st.table.rows:
            raise primary_key_violation({"id": row["id"]})
        self._check_cred_unique(kind, row)
        self._store_cred(kind, row, existing)
        return row

    def _delete_cred_row(self, kind: CredKind, rid: str):
        st = self.cred(kind)
        row = st.table.remove(rid)
        for name, index in st.unique.items():
            if row[name] is not None and index.get(row[name]) == rid:
                del index[row[name]]
        if kind.cache_key is not None:
            st.cache.pop((row["consumer_id"], row["group"]), None)
        lst = st.of.get(row["consumer_id"])
        if lst and rid in lst:
            lst.remove(rid)

    # ---- snapshot for tests ---------------------------------------------------------------------
    def snapshot(self) -> dict:
        keys = []
        for kid in self.keys.ids:
            row = self.keys.rows[kid]
            keys.append({"id": row["id"], "created_at": row["created_at"], "consumer": {"id": row["consumer_id"]},
                         "key": row["key"], "tags": row["tags"], "expires_at": row["expires_at"]})
        out = {
            "consumers": [self.consumers.rows[i] for i in self.consumers.ids],
            "keyauth_credentials": keys,
            "plugins": [self.render_plugin(self.plugins.rows[i]) for i in self.plugins.ids],
        }
        for kind in CRED_KINDS.values():
            table = self.cred(kind).table
            out[kind.table] = [self.render_cred(kind, table.rows[i]) for i in table.ids]
        return out


# ---------------------------------------------------------------------------------------------
# Query arguments, pagination (doc §4) and tag filters (doc §5)
# ---------------------------------------------------------------------------------------------


def parse_query(query: str) -> dict:
    """ngx.req.get_uri_args: `+` is a space, a key without `=` is `true` (None here),
    repeated keys give a list. Values are kept as bytes."""
    args: dict = {}
    if not query:
        return args
    for part in query.split("&"):
        if not part:
            continue
        if "=" in part:
            k, v = part.split("=", 1)
            value = unquote_to_bytes(v.replace("+", " "))
        else:
            k, value = part, None
        key = unquote_to_bytes(k.replace("+", " ")).decode("utf-8", "surrogateescape")
        if not key:
            continue
        args.setdefault(key, []).append(value)
    return args


def arg_str(value):
    return None if value is None else value.decode("utf-8", "surrogateescape")


PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
_TAG_CLASS = rb"[\x20-\x2B\x2D\x2E\x30-\x7E\x80-\xF4]"
TAGS_AND_RE = re.compile(rb"^(" + _TAG_CLASS + rb"+(?:,|$))+$")
TAGS_OR_RE = re.compile(rb"^(" + _TAG_CLASS + rb"+(?:/|$))+$")


def page_size(args: dict) -> int:
    """`size`: default 100, Lua tonumber, then an integer in 1..1000, never clamped (doc §4)."""
    values = args.get("size")
    if values is None:
        return PAGE_SIZE
    if len(values) != 1 or values[0] is None:
        raise invalid_size("size must be a number")
    n = lua_tonumber(arg_str(values[0]))
    if n is None:
        raise invalid_size("size must be a number")
    if n != n or n in (float("inf"), float("-inf")) or not n.is_integer() or n < 1 or n > MAX_PAGE_SIZE:
        raise invalid_size(f"size must be an integer between 1 and {MAX_PAGE_SIZE}")
    return int(n)


def tags_filter(args: dict):
    """-> (cond, [tags]) or (None, None). Errors are code 11 with `options` (doc §5)."""
    values = args.get("tags")
    if values is None:
        return None, None
    raw = values[0]
    if raw is None or raw == b"":
        raise invalid_options({"tags": "cannot be null"})
    if TAGS_AND_RE.match(raw):
        # 'a,' is accepted: an AND with an empty tag, which matches nothing (doc §5 edge case)
        cond, parts = "and", raw.split(b",")
    elif TAGS_OR_RE.match(raw):
        cond, parts = "or", raw.split(b"/")
    else:
        raise invalid_options({"tags": "invalid filter syntax"})
    if len(parts) > 5:
        raise invalid_options({"tags": "cannot query more than 5 tags"})
    return cond, [p.decode("utf-8", "surrogateescape") for p in parts]


def encode_offset(key: list) -> str:
    """Unpadded base64 of the JSON array of the last primary key (doc §4)."""
    return base64.b64encode(cjson_bytes(key)).decode("ascii").rstrip("=")


_B64_RE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def decode_offset(args: dict):
    values = args.get("offset")
    if values is None:
        return None
    raw = values[0]
    token = arg_str(raw) if raw is not None else ""
    t = token.rstrip("=")
    if not _B64_RE.match(token) or len(t) % 4 == 1:
        raise invalid_offset(token, "bad base64 encoding")
    try:
        data = base64.b64decode(t + "=" * (-len(t) % 4), validate=True)
    except Exception:
        raise invalid_offset(token, "bad base64 encoding")
    try:
        decoded = json.loads(data.decode("utf-8"))
    except Exception:
        raise invalid_offset(token, "bad json encoding")
    if not isinstance(decoded, list) or not decoded or not isinstance(decoded[0], str):
        raise invalid_offset(token, "bad json encoding")
    return decoded


def cursor_id(decoded):
    if decoded is None:
        return None
    value = decoded[0]
    return value.lower() if is_uuid(value) else value


# ---------------------------------------------------------------------------------------------
# Stats and fault injection (test control)
# ---------------------------------------------------------------------------------------------

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class Stats:
    """Counters are updated under store.lock. The two observations (writes in flight, gaps after
    a 429) have their own small lock: they are touched outside store.lock, before and after it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.writes_in_flight = 0
        self.reset()

    def reset(self):
        self.total = 0
        self.writes = 0
        self.by_route: dict = {}
        self.by_status: dict = {}
        with self.lock:
            # writes still running are in flight "since the reset"; the gauge itself is not reset
            self.max_writes_in_flight = self.writes_in_flight
            self.retry_gaps: list = []
            self.gap_waiting: dict = {}     # (method, raw path) -> [(entry, monotonic sent)]

    def write_started(self):
        with self.lock:
            self.writes_in_flight += 1
            if self.writes_in_flight > self.max_writes_in_flight:
                self.max_writes_in_flight = self.writes_in_flight

    def write_finished(self):
        with self.lock:
            self.writes_in_flight -= 1

    def sending_429(self, method: str, path: str, retry_after):
        """Called just before a fault's 429 is written; the gap is timed from here."""
        entry = {"method": method, "path": path, "retry_after": retry_after, "gap_ms": None}
        with self.lock:
            self.retry_gaps.append(entry)
            self.gap_waiting.setdefault((method, path), []).append((entry, time.monotonic()))
        return entry

    def unsent_429(self, entry):
        """The write failed: the 429 was never sent."""
        with self.lock:
            self.retry_gaps = [e for e in self.retry_gaps if e is not entry]
            key = (entry["method"], entry["path"])
            waiting = [w for w in self.gap_waiting.get(key, ()) if w[0] is not entry]
            if waiting:
                self.gap_waiting[key] = waiting
            else:
                self.gap_waiting.pop(key, None)

    def arrived(self, method: str, path: str, at: float):
        """A Kong request came in: it closes the gap of every earlier 429 on the same method and path."""
        with self.lock:
            waiting = self.gap_waiting.get((method, path))
            if not waiting:
                return
            keep = []
            for entry, sent in waiting:
                if sent <= at:
                    entry["gap_ms"] = int((at - sent) * 1000)
                else:
                    keep.append((entry, sent))
            if keep:
                self.gap_waiting[(method, path)] = keep
            else:
                del self.gap_waiting[(method, path)]

    def count(self, method: str, template: str):
        self.total += 1
        if method in WRITE_METHODS:
            self.writes += 1
        key = f"{method} {template}"
        self.by_route[key] = self.by_route.get(key, 0) + 1

    def status(self, code: int):
        key = str(code)
        self.by_status[key] = self.by_status.get(key, 0) + 1

    def as_json(self):
        out = {"total": self.total, "writes": self.writes, "by_route": dict(self.by_route),
               "by_status": dict(self.by_status)}
        with self.lock:
            # Left out while zero / empty, so the zeroed stats keep their original shape.
            if self.max_writes_in_flight:
                out["max_writes_in_flight"] = self.max_writes_in_flight
            if self.retry_gaps:
                out["retry_gaps"] = [dict(e) for e in self.retry_gaps]
        return out


DEFAULT_FAULT_MESSAGES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 409: "Conflict",
    429: "API rate limit exceeded", 500: "An unexpected error occurred", 502: "Bad Gateway",
    503: "Service unavailable", 504: "Gateway timeout",
}


class FaultRule:
    def __init__(self, spec: dict):
        if not isinstance(spec, dict):
            raise ValueError("each rule must be an object")
        known = {"method", "methods", "path_regex", "status", "times", "body", "after", "retry_after",
                 "drop", "delay_ms", "fraction", "seed", "headers"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"unknown rule field(s): {', '.join(unknown)}")
        methods = spec.get("methods")
        if methods is None and spec.get("method") is not None:
            methods = [spec["method"]]
        self.methods = None if methods is None else {str(m).upper() for m in methods}
        self.path_regex_src = spec.get("path_regex") or ".*"
        self.path_regex = re.compile(self.path_regex_src)
        self.drop = bool(spec.get("drop", False))
        self.delay_ms = spec.get("delay_ms")
        if self.delay_ms is not None and (not isinstance(self.delay_ms, (int, float)) or self.delay_ms < 0):
            raise ValueError("delay_ms must be a non-negative number")
        default_status = None if (self.delay_ms is not None and not self.drop) else 500
        self.status = spec.get("status", default_status)
        if self.status is not None and (not isinstance(self.status, int) or not 100 <= self.status <= 599):
            raise ValueError("status must be an integer 100..599 or null")
        self.body = spec.get("body", MISSING)
        if self.body is MISSING and self.status is not None:
            self.body = {"message": DEFAULT_FAULT_MESSAGES.get(self.status, "Injected fault")}
        self.times = spec.get("times")
        self.after = spec.get("after") or 0
        self.retry_after = spec.get("retry_after")
        self.headers = spec.get("headers") or {}
        if not isinstance(self.headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()):
            raise ValueError("headers must be an object of strings")
        self.fraction = spec.get("fraction")
        if self.fraction is not None and not (isinstance(self.fraction, (int, float)) and 0 <= self.fraction <= 1):
            raise ValueError("fraction must be a number in 0..1")
        self.seed = spec.get("seed", 0)
        self.rng = random.Random(self.seed)
        self.matched = 0
        self.fired = 0

    def describe(self):
        return {
            "methods": sorted(self.methods) if self.methods else None, "path_regex": self.path_regex_src,
            "status": self.status, "times": self.times, "after": self.after, "drop": self.drop,
            "delay_ms": self.delay_ms, "retry_after": self.retry_after, "fraction": self.fraction,
            "seed": self.seed, "matched": self.matched, "fired": self.fired,
        }

    def consider(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        if not self.path_regex.search(path):
            return False
        self.matched += 1
        if self.matched <= self.after:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        if self.fraction is not None and self.rng.random() >= self.fraction:
            return False
        self.fired += 1
        return True


class Faults:
    def __init__(self):
        self.rules: list = []

    def configure(self, body):
        if not isinstance(body, dict):
            raise ValueError("body must be an object")
        rules = []
        if "rules" in body:
            if not isinstance(body["rules"], list):
                raise ValueError("rules must be an array")
            rules = [FaultRule(spec) for spec in body["rules"]]
        elif "fraction" in body:
            spec = dict(body)
            spec.setdefault("status", 503)
            rules = [FaultRule(spec)]
        else:
            raise ValueError("expected {\"rules\": [...]} or {\"fraction\": f, ...}")
        self.rules = rules

    def match(self, method: str, path: str):
        for rule in self.rules:
            if rule.consider(method, path):
                return rule
        return None


# ---------------------------------------------------------------------------------------------
# Hostile quirks (test control): what a broken or malicious Admin API could answer to
# GET /consumers. See README.md, "Hostile quirks".
# ---------------------------------------------------------------------------------------------

GZIP_BOMB_PREFIX = b'{"data":['
GZIP_BOMB_SUFFIX = b'],"next":null}'
GZIP_BOMB_MIN = len(GZIP_BOMB_PREFIX) + len(GZIP_BOMB_SUFFIX)
GZIP_BOMB_MAX = 1 << 35
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03"   # no name, mtime 0, level 9, Unix
_BOMB_CHUNK = 1 << 20
_CRC_POLY = 0xEDB88320


def _gf2_times(mat: list, vec: int) -> int:
    out, i = 0, 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _gf2_square(mat: list) -> list:
    return [_gf2_times(mat, row) for row in mat]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A+B from crc(A), crc(B) and len(B): zlib's crc32_combine, which Python lacks."""
    if len2 <= 0:
        return crc1
    odd = [_CRC_POLY] + [1 << n for n in range(31)]     # one zero bit
    even = _gf2_square(odd)                              # two
    odd = _gf2_square(even)                              # four
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def crc32_repeat(crc_unit: int, unit_len: int, count: int) -> int:
    """CRC-32 of `count` copies of a unit, by doubling."""
    out, base, base_len = 0, crc_unit, unit_len
    while count:
        if count & 1:
            out = crc32_combine(out, base, base_len)
        count >>= 1
        if count:
            base = crc32_combine(base, base, base_len)
            base_len *= 2
    return out


def gzip_bomb(n: int) -> bytes:
    """One gzip member that inflates to exactly n bytes: `{"data":[`, spaces, `],"next":null}`.

    zlib level 9 deflates the spaces 1 MiB at a time with a full flush after each chunk. A full
    flush resets the compressor, so every chunk deflates to the same bytes; once two chunks in a
    row have, the rest repeat them instead of being compressed. The CRC-32 of the repeats comes
    from crc32_combine. So no n-byte buffer is ever built or scanned: 4e9 bytes take well under
    a second and about 4 MB."""
    fill = n - GZIP_BOMB_MIN
    count, rest = divmod(fill, _BOMB_CHUNK)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [_GZIP_HEADER, comp.compress(GZIP_BOMB_PREFIX), comp.flush(zlib.Z_FULL_FLUSH)]
    crc = zlib.crc32(GZIP_BOMB_PREFIX)
    if count:
        chunk = b" " * _BOMB_CHUNK
        done, prev = 0, None
        while done < count:
            out = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
            parts.append(out)
            done += 1
            if out == prev:
                break
            prev = out
        parts.extend([out] * (count - done))
        crc = crc32_combine(crc, crc32_repeat(zlib.crc32(chunk), _BOMB_CHUNK, count), count * _BOMB_CHUNK)
    tail = b" " * rest + GZIP_BOMB_SUFFIX
    parts.append(comp.compress(tail))
    parts.append(comp.flush(zlib.Z_FINISH))
    crc = zlib.crc32(tail, crc)
    parts.append(struct.pack("<II", crc, n & 0xFFFFFFFF))
    return b"".join(parts)


ENDLESS_MODES = ("same", "fresh")
ENDLESS_EMPTY_ID = "00000000-0000-4000-8000-000000000000"   # the "same" offset when page 1 is empty


class Quirks:
    """Settings are replaced whole under store.lock; readers take one attribute at a time."""

    def __init__(self):
        self.bomb_lock = threading.Lock()
        self.bombs: dict = {}           # n -> compressed body
        self.clear()

    def clear(self):
        self.endless_offset = None
        self.endless_fresh_data = False
        self.ignore_tags = False
        self.gzip_bomb_bytes = None
        self.endless_serial = 0         # last N of the synthetic `endless-N` consumers

    def configure(self, body):
        if not isinstance(body, dict):
            raise ValueError("body must be an object")
        unknown = sorted(set(body) - {"endless_offset", "endless_fresh_data", "ignore_tags", "gzip_bomb_bytes"})
        if unknown:
            raise ValueError(f"unknown quirk(s): {', '.join(unknown)}")
        endless = body.get("endless_offset")
        if endless is not None and endless not in ENDLESS_MODES:
            raise ValueError('endless_offset must be "same", "fresh" or null')
        flags = {}
        for key in ("endless_fresh_data", "ignore_tags"):
            value = body.get(key)
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"{key} must be a boolean or null")
            flags[key] = bool(value)
        bomb = body.get("gzip_bomb_bytes")
        if bomb is not None and (isinstance(bomb, bool) or not isinstance(bomb, int)
                                 or not GZIP_BOMB_MIN <= bomb <= GZIP_BOMB_MAX):
            raise ValueError(f"gzip_bomb_bytes must be an integer in {GZIP_BOMB_MIN}..{GZIP_BOMB_MAX} or null")
        if bomb is not None:
            self.bomb(bomb)             # built now, so the first GET is not the slow one
        self.clear()
        self.endless_offset = endless
        self.endless_fresh_data = flags["endless_fresh_data"]
        self.ignore_tags = flags["ignore_tags"]
        self.gzip_bomb_bytes = bomb

    def as_json(self):
        return {"endless_offset": self.endless_offset, "endless_fresh_data": self.endless_fresh_data,
                "ignore_tags": self.ignore_tags, "gzip_bomb_bytes": self.gzip_bomb_bytes}

    def bomb(self, n: int) -> bytes:
        with self.bomb_lock:
            body = self.bombs.get(n)
            if body is None:
                if len(self.bombs) >= 4:
                    self.bombs.clear()
                body = self.bombs[n] = gzip_bomb(n)
            return body

    def synthetic_consumer(self, now: int, tags) -> dict:
        """Not stored anywhere; carries the requested tags so that it looks managed."""
        self.endless_serial += 1
        return {"id": new_uuid(), "created_at": now, "updated_at": now,
                "username": f"endless-{self.endless_serial}", "custom_id": new_uuid(),
                "tags": list(tags) if tags else None}


# ---------------------------------------------------------------------------------------------
# Kong routes (doc §1)
# ---------------------------------------------------------------------------------------------

READ = ("GET",)
COLL = ("GET", "POST")
ENTITY = ("GET", "PUT", "PATCH", "DELETE")


ROOT_NAMES = {"status", "consumers", "key-auths", "plugins", "tags", "workspaces"} | set(CRED_BY_TOP)


def match_route(segments: list):
    """-> (template, handler name, allowed methods, captured raw segments, credential kind) or None."""
    route = _match_route(segments)
    if route is None or len(route) == 5:
        return route
    return route + (None,)


def _match_route(segments: list):
    n = len(segments)
    if n == 0:
        return "/", "root", READ, []
    if any(s == "" for s in segments):
        return None
    head = segments[0]
    top_kind = CRED_BY_TOP.get(head)
    if n == 1:
        if head == "status":
            return "/status", "status", READ, []
        if head == "consumers":
            return "/consumers", "consumers", COLL, []
        if head == "key-auths":
            return "/key-auths", "keys", COLL, []
        if head == "plugins":
            return "/plugins", "plugins", COLL, []
        if head == "tags":
            return "/tags", "tags", READ, []
        if head == "workspaces":
            return "/workspaces", "workspaces", READ, []
        if top_kind is not None:
            return f"/{head}", "creds", COLL, [], top_kind
        return None
    if n == 2:
        if head == "consumers":
            return "/consumers/{consumer}", "consumer", ENTITY, [segments[1]]
        if head == "key-auths":
            return "/key-auths/{credential}", "key", ENTITY, [segments[1]]
        if head == "plugins":
            if segments[1] == "enabled":
                return "/plugins/enabled", "plugins_enabled", READ, []
            return "/plugins/{plugin}", "plugin", ENTITY, [segments[1]]
        if head == "tags":
            return "/tags/{tag}", "tag", READ, [segments[1]]
        if head == "workspaces":
            return "/workspaces/{workspace}", "workspace", READ, [segments[1]]
        if top_kind is not None:
            return f"/{head}/{{credential}}", "cred", ENTITY, [segments[1]], top_kind
        return None
    if n == 3:
        if head == "consumers" and segments[2] == "key-auth":
            return "/consumers/{consumer}/key-auth", "consumer_keys", COLL, [segments[1]]
        if head == "consumers" and segments[2] == "plugins":
            return "/consumers/{consumer}/plugins", "consumer_plugins", COLL, [segments[1]]
        if head == "consumers" and segments[2] in CRED_BY_NESTED:
            kind = CRED_BY_NESTED[segments[2]]
            return f"/consumers/{{consumer}}/{kind.nested}", "consumer_creds", COLL, [segments[1]], kind
        if head == "key-auths" and segments[2] == "consumer":
            return "/key-auths/{credential}/consumer", "key_consumer", ENTITY, [segments[1]]
        if head == "plugins" and segments[2] == "consumer":
            return "/plugins/{plugin}/consumer", "plugin_consumer", ENTITY, [segments[1]]
        if top_kind is not None and segments[2] == "consumer":
            return f"/{head}/{{credential}}/consumer", "cred_consumer", ENTITY, [segments[1]], top_kind
        return None
    if n == 4:
        if head == "consumers" and segments[2] == "key-auth":
            return "/consumers/{consumer}/key-auth/{credential}", "consumer_key", ENTITY, [segments[1], segments[3]]
        if head == "consumers" and segments[2] == "plugins":
            return "/consumers/{consumer}/plugins/{plugin}", "consumer_plugin", ENTITY, [segments[1], segments[3]]
        if head == "consumers" and segments[2] in CRED_BY_NESTED:
            kind = CRED_BY_NESTED[segments[2]]
            return (f"/consumers/{{consumer}}/{kind.nested}/{{credential}}", "consumer_cred", ENTITY,
                    [segments[1], segments[3]], kind)
    return None


class Request:
    __slots__ = ("method", "raw", "params", "args", "body", "kind")

    def __init__(self, method, raw, args, body, kind=None):
        self.kind = kind                            # CredKind for the generic credential routes
        self.method = method
        self.raw = raw                              # raw path captures, as sent
        self.params = [ngx_unescape(s) for s in raw]  # decoded (doc §2)
        self.args = args
        self.body = body


class KongApp:
    """Kong's Admin API semantics on top of Store. Every method runs with store.lock held."""

    def __init__(self, store: Store, version: str, dbless: bool, hostname: str, port_ref,
                 workspaces=None, version_explicit=True):
        self.default_store = store
        self.store = store                  # the store of the request's workspace (set per request)
        self.prefix = ""                    # path prefix of the request: "/ws1", Konnect's, or ""
        self.konnect = False                # serving the Konnect shape (doc §16)
        self.version = version
        self.version_explicit = version_explicit
        self.dbless = dbless
        self.hostname = hostname
        self.node_id = new_uuid()
        self.port_ref = port_ref
        self.requests_served = 0
        self.quirks = Quirks()
        # Enterprise (doc §15): None = OSS, no workspace prefixes
        self.workspace_mode = workspaces is not None
        self.rbac = None                    # Rbac, while configured
        self.workspaces: dict = {}          # name -> (meta, store)
        now = store.now()
        for name in ["default"] + [w for w in (workspaces or []) if w != "default"]:
            ws_store = store if name == "default" else Store(store.lock, store.clock)
            meta = {"id": new_uuid(), "name": name, "comment": None, "created_at": now,
                    "config": {"meta": None, "portal": False}, "meta": {"color": None, "thumbnail": None}}
            self.workspaces[name] = (meta, ws_store)
        # Konnect (doc §16): None = off
        self.konnect_cp = None              # the control plane object
        self.konnect_tokens = None          # None: any bearer token is accepted

    @property
    def enterprise(self) -> bool:
        return self.workspace_mode or self.rbac is not None

    def all_stores(self):
        return [st for _, st in self.workspaces.values()]

    def configure_konnect(self, cp_id, tokens=None, name=None):
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        short = cp_id.replace("-", "")[:10]
        self.konnect_cp = {
            "id": cp_id, "name": name or "idp-sync test control plane", "description": None, "labels": {},
            "config": {"control_plane_endpoint": f"https://{short}.cp0.konghq.com",
                       "telemetry_endpoint": f"https://{short}.tp0.konghq.com",
                       "cluster_type": "CLUSTER_TYPE_CONTROL_PLANE", "auth_type": "pinned_client_certs",
                       "cloud_gateway": False, "proxy_urls": []},
            "created_at": now, "updated_at": now,
        }
        self.konnect_tokens = list(tokens) if tokens else None

    # ---- paging helpers ------------------------------------------------------------------------
    def _page(self, table: Table, ids_iter, size: int, render):
        out, last = [], None
        for rid in ids_iter:
            if len(out) == size:
                return out, last, True
            row = table.rows[rid]
            out.append(render(row))
            last = rid
        return out, last, False

    def list_top(self, req: Request, table: Table):
        """Top-level collection: size, tags and offset; `next` keeps tags and size (doc §4, §5)."""
        args = req.args
        size = page_size(args)
        cond, tags = tags_filter(args)
        cursor = cursor_id(decode_offset(args))
        render = lambda row: self.store.render(table, row)  # noqa: E731
        data, last, more = self._page(table, table.iter_after(cursor, cond, tags), size, render)
        return 200, self._list_body(data, last if more else None, f"{self.prefix}/{table.api_name}", args, top=True)

    def _list_body(self, data, last_id, path, args, top, offset_key=None, token=None):
        body = {"data": data}
        if last_id is None and token is None:
            body["next"] = None
            return body
        if token is None:
            token = encode_offset(offset_key if offset_key is not None else [last_id])
        nxt = f"{path}?offset={ngx_escape(token)}"
        if top:
            if "tags" in args:
                raw = args["tags"][0]
                nxt += "&tags=" + ngx_escape(raw if raw is not None else b"")
            if "size" in args and args["size"][0] is not None:
                nxt += "&size=" + arg_str(args["size"][0])
        body["offset"] = token
        body["next"] = nxt
        return body

    def list_nested(self, req: Request, table: Table, child_ids, nested_name: str):
        """Nested collection: tags validated but ignored, `next` drops size and tags (doc §4, §5)."""
        args = req.args
        size = page_size(args)
        tags_filter(args)
        cursor = cursor_id(decode_offset(args))
        ids = sorted(child_ids)
        start = bisect.bisect_right(ids, cursor) if cursor is not None else 0
        render = lambda row: self.store.render(table, row)  # noqa: E731
        data, last, more = self._page(table, (ids[i] for i in range(start, len(ids))), size, render)
        path = f"{self.prefix}/consumers/{req.raw[0]}/{nested_name}"
        return 200, self._list_body(data, last if more else None, path, args, top=False)

    def list_endless(self, req: Request, table: Table, synthetic_tags):
        """Quirk endless_offset: the offset is never null. "same" answers page 1 with one fixed
        offset every time; "fresh" answers page 1 (request without offset) normally, then empty
        or synthetic pages, each with a new random offset."""
        q = self.quirks
        args = req.args
        size = page_size(args)
        cond, tags = tags_filter(args)
        first = decode_offset(args) is None          # validated as usual, then ignored
        render = lambda row: self.store.render(table, row)  # noqa: E731
        if q.endless_offset == "same":
            data, last, _ = self._page(table, table.iter_after(None, cond, tags), size, render)
            token = encode_offset([last if last is not None else ENDLESS_EMPTY_ID])
        else:
            if first:
                data, _, _ = self._page(table, table.iter_after(None, cond, tags), size, render)
            elif q.endless_fresh_data:
                now = self.store.now()
                data = [q.synthetic_consumer(now, synthetic_tags) for _ in range(size)]
            else:
                data = []
            token = encode_offset([new_uuid()])
        return 200, self._list_body(data, None, f"{self.prefix}/{table.api_name}", args, top=True, token=token)

    # ---- node ----------------------------------------------------------------------------------
    def h_root(self, req):
        plugins = {name: {"version": self.version, "priority": s["priority"]} for name, s in sorted(PLUGIN_SCHEMAS.items())}
        in_use = sorted({row["name"] for row in self.store.plugins.rows.values()})
        port = self.port_ref()
        enterprise = self.enterprise
        version = self.version
        if enterprise and not self.version_explicit:
            version = DEFAULT_EE_VERSION                # four parts (doc §11)
        return 200, {
            "version": version,
            "edition": "enterprise" if enterprise else "community",
            "tagline": "Welcome to kong",
            "node_id": self.node_id,
            "hostname": self.hostname,
            "lua_version": "LuaJIT 2.1.0-20231117",
            "plugins": {"available_on_server": plugins, "enabled_in_cluster": in_use},
            "configuration": {
                "database": "off" if self.dbless else "postgres",
                "admin_listen": [f"127.0.0.1:{port}"],
                "plugins": ["bundled"],
                "loaded_plugins": {name: True for name in sorted(PLUGIN_SCHEMAS)},
                "enforce_rbac": "on" if self.rbac is not None else "off",
            },
            "timers": {"running": 0, "pending": 1},
            "pids": {"master": os.getpid(), "workers": [os.getpid()]},
        }

    def h_status(self, req):
        body = {
            "database": {"reachable": True},
            "memory": {"lua_shared_dicts": {}, "workers_lua_vms": [{"http_allocated_gc": "0 MiB", "pid": os.getpid()}]},
            "server": {"connections_accepted": self.requests_served, "connections_active": 1,
                       "connections_handled": self.requests_served, "connections_reading": 0,
                       "connections_waiting": 0, "connections_writing": 1,
                       "total_requests": self.requests_served},
        }
        if self.dbless:
            body["configuration_hash"] = "00000000000000000000000000000000"
        return 200, body

    def h_plugins_enabled(self, req):
        return 200, {"enabled_plugins": sorted(PLUGIN_SCHEMAS)}

    # ---- consumers -----------------------------------------------------------------------------
    def h_consumers(self, req):
        s = self.store
        if req.method == "GET":
            if "custom_id" in req.args and not self.konnect:
                values = req.args["custom_id"]
                if len(values) != 1 or values[0] is None or values[0] == b"":
                    raise plain(400, "custom_id must be an unempty string")
                cid = s.by_custom_id.get(arg_str(values[0]))
                data = [s.consumers.rows[cid]] if cid else []
                return 200, {"data": data, "next": None}   # never an offset (doc §2)
            q = self.quirks
            synthetic_tags = None
            if q.endless_offset == "fresh" and q.endless_fresh_data:
                try:
                    synthetic_tags = [t for t in dict.fromkeys(tags_filter(req.args)[1] or ()) if t]
                except KongError:
                    pass
            if q.ignore_tags and "tags" in req.args:
                # as if a proxy had dropped the parameter: no filter, no check, and `next` has no tags
                req.args = {k: v for k, v in req.args.items() if k != "tags"}
            if q.endless_offset is not None:
                return self.list_endless(req, s.consumers, synthetic_tags)
            return self.list_top(req, s.consumers)
        return 201, s.insert_consumer(req.body)

    def h_consumer(self, req):
        s = self.store
        ident = req.params[0]
        if req.method == "GET":
            row = s.find_consumer(ident)
            if row is None:
                raise not_found()
            return 200, row
        if req.method == "PATCH":
            row = s.find_consumer(ident)
            if row is None:
                if is_uuid(ident):
                    raise dao_not_found_pk({"id": ident.lower()})
                raise dao_not_found_field({"username": ident})
            return 200, s.update_consumer(row, req.body)
        if req.method == "PUT":
            return 200, s.upsert_consumer(ident, req.body)
        row = s.find_consumer(ident)        # DELETE: 204 even when nothing matched (doc §6)
        if row is not None:
            s.delete_consumer(row["id"])
        elif self.konnect:
            raise not_found()               # Konnect: 404 (doc §16)
        return 204, None

    def _parent(self, req):
        row = self.store.find_consumer(req.params[0])
        if row is None:
            raise not_found()
        return row

    # ---- key-auth ------------------------------------------------------------------------------
    def h_keys(self, req):
        s = self.store
        if req.method == "GET":
            return self.list_top(req, s.keys)
        return 201, s.render_key(s.insert_key(req.body))

    def h_key(self, req):
        s = self.store
        ident = req.params[0]
        if req.method == "GET":
            row = s.find_key(ident)
            if row is None:
                raise not_found()
            return 200, s.render_key(row)
        if req.method == "PATCH":
            row = s.find_key(ident)
            if row is None:
                if is_uuid(ident):
                    raise dao_not_found_pk({"id": ident.lower()})
                raise dao_not_found_field({"key": ident})
            return 200, s.render_key(s.update_key(row, req.body))
        if req.method == "PUT":
            return 200, s.render_key(s.upsert_key(ident, req.body))
        row = s.find_key(ident)
        if row is not None:
            s._delete_key_row(row["id"])
        elif self.konnect:
            raise not_found()
        return 204, None

    def h_consumer_keys(self, req):
        s = self.store
        parent = self._parent(req)
        if req.method == "GET":
            return self.list_nested(req, s.keys, s.keys_of.get(parent["id"], ()), "key-auth")
        body = dict(req.body)
        body.pop("consumer", None)
        return 201, s.render_key(s.insert_key(body, force={"consumer_id": parent["id"]}))

    def _owned(self, row, parent):
        if row is None or row["consumer_id"] != parent["id"]:
            raise not_found()
        return row

    def h_consumer_key(self, req):
        s = self.store
        parent = self._parent(req)
        ident = req.params[1]
        if req.method == "PUT":
            # nested PUT does no ownership check and moves the key to this consumer (doc §6)
            body = dict(req.body)
            body.pop("consumer", None)
            return 200, s.render_key(s.upsert_key(ident, body, force={"consumer_id": parent["id"]}))
        row = self._owned(s.find_key(ident), parent)
        if req.method == "GET":
            return 200, s.render_key(row)
        if req.method == "PATCH":
            body = dict(req.body)
            force = None if body.get("consumer") else {"consumer_id": parent["id"]}
            if force:
                body.pop("consumer", None)
            return 200, s.render_key(s.update_key(row, body, force=force))
        s._delete_key_row(row["id"])
        return 204, None

    def _foreign_consumer(self, row, req):
        """/key-auths/{k}/consumer and /plugins/{p}/consumer (endpoints.lua foreign entity)."""
        s = self.store
        cid = row["consumer_id"] if row is not None else None
        if row is None or cid is None:
            raise not_found()
        if req.method == "GET":
            consumer = s.consumers.rows.get(cid)
            if consumer is None:
                raise not_found()
            return 200, consumer
        if req.method == "DELETE":
            raise plain(405, "Method not allowed")
        consumer = s.consumers.rows.get(cid)
        if req.method == "PATCH":
            if consumer is None:
                raise not_found()
            return 200, s.update_consumer(consumer, req.body)
        return 200, s.upsert_consumer(cid, req.body)

    def h_key_consumer(self, req):
        return self._foreign_consumer(self.store.find_key(req.params[0]), req)

    def h_plugin_consumer(self, req):
        return self._foreign_consumer(self.store.find_plugin(req.params[0]), req)

    # ---- plugins -------------------------------------------------------------------------------
    def h_plugins(self, req):
        s = self.store
        if req.method == "GET":
            return self.list_top(req, s.plugins)
        return 201, s.render_plugin(s.insert_plugin(req.body))

    def h_plugin(self, req):
        s = self.store
        ident = req.params[0]
        if req.method == "GET":
            row = s.find_plugin(ident)
            if row is None:
                raise not_found()
            return 200, s.render_plugin(row)
        if req.method == "PATCH":
            row = s.find_plugin(ident)
            if row is None:
                body = req.body
                # routes/plugins.lua reads before writing unless name, route, service and consumer
                # are all in the body; that read answers a plain 404
                if any(body.get(k) is None for k in ("name", "route", "service", "consumer")):
                    raise not_found()
                if is_uuid(ident):
                    raise dao_not_found_pk({"id": ident.lower()})
                raise dao_not_found_field({"instance_name": ident})
            return 200, s.render_plugin(s.update_plugin(row, req.body))
        if req.method == "PUT":
            return 200, s.render_plugin(s.upsert_plugin(ident, req.body))
        row = s.find_plugin(ident)
        if row is not None:
            s._delete_plugin_row(row["id"])
        elif self.konnect:
            raise not_found()
        return 204, None

    def h_consumer_plugins(self, req):
        s = self.store
        parent = self._parent(req)
        if req.method == "GET":
            return self.list_nested(req, s.plugins, s.plugins_of.get(parent["id"], ()), "plugins")
        body = dict(req.body)
        body.pop("consumer", None)
        return 201, s.render_plugin(s.insert_plugin(body, force={"consumer_id": parent["id"]}))

    def h_consumer_plugin(self, req):
        s = self.store
        parent = self._parent(req)
        ident = req.params[1]
        if req.method == "PUT":
            body = dict(req.body)
            body.pop("consumer", None)
            return 200, s.render_plugin(s.upsert_plugin(ident, body, force={"consumer_id": parent["id"]}))
        row = self._owned(s.find_plugin(ident), parent)
        if req.method == "GET":
            return 200, s.render_plugin(row)
        if req.method == "PATCH":
            body = dict(req.body)
            force = None if body.get("consumer") else {"consumer_id": parent["id"]}
            if force:
                body.pop("consumer", None)
            return 200, s.render_plugin(s.update_plugin(row, body, force=force))
        s._delete_plugin_row(row["id"])
        return 204, None

    # ---- the other credential types (doc §14) -----------------------------------------------
    def h_creds(self, req):
        s, kind = self.store, req.kind
        if req.method == "GET":
            return self.list_top(req, s.cred(kind).table)
        return 201, s.render_cred(kind, s.insert_cred(kind, req.body))

    def h_cred(self, req):
        s, kind = self.store, req.kind
        ident = req.params[0]
        if req.method == "PUT":
            return 200, s.render_cred(kind, s.upsert_cred(kind, ident, req.body))
        row = s.find_cred(kind, ident)
        if req.method == "GET":
            if row is None:
                raise not_found()
            return 200, s.render_cred(kind, row)
        if req.method == "PATCH":
            if row is None:
                if is_uuid(ident):
                    raise dao_not_found_pk({"id": ident.lower()})
                raise dao_not_found_field({kind.endpoint_key: ident})
            return 200, s.render_cred(kind, s.update_cred(kind, row, req.body))
        if row is not None:
            s._delete_cred_row(kind, row["id"])
        elif self.konnect:
            raise not_found()
        return 204, None

    def h_consumer_creds(self, req):
        s, kind = self.store, req.kind
        parent = self._parent(req)
        if req.method == "GET":
            st = s.cred(kind)
            return self.list_nested(req, st.table, st.of.get(parent["id"], ()), kind.nested)
        body = dict(req.body)
        body.pop("consumer", None)
        return 201, s.render_cred(kind, s.insert_cred(kind, body, force={"consumer_id": parent["id"]}))

    def h_consumer_cred(self, req):
        s, kind = self.store, req.kind
        parent = self._parent(req)
        ident = req.params[1]
        if req.method == "PUT":
            # nested PUT does no ownership check and moves the credential here (doc §6)
            body = dict(req.body)
            body.pop("consumer", None)
            force = {"consumer_id": parent["id"]}
            if kind.cache_key is not None and not is_uuid(ident):
                # acl/api.lua: the group in the path names the consumer's ACL, or a new one
                existing = s.find_cred(kind, ident, parent["id"])
                if existing is None:
                    force["id"] = new_uuid()
                if body.get("group") is None:
                    body["group"] = ident
                return 200, s.render_cred(kind, s.upsert_cred(kind, ident, body, force=force, existing=existing))
            return 200, s.render_cred(kind, s.upsert_cred(kind, ident, body, force=force))
        row = self._owned(s.find_cred(kind, ident, parent["id"]), parent)
        if req.method == "GET":
            return 200, s.render_cred(kind, row)
        if req.method == "PATCH":
            body = dict(req.body)
            force = None if body.get("consumer") else {"consumer_id": parent["id"]}
            if force:
                body.pop("consumer", None)
            return 200, s.render_cred(kind, s.update_cred(kind, row, body, force=force))
        s._delete_cred_row(kind, row["id"])
        return 204, None

    def h_cred_consumer(self, req):
        return self._foreign_consumer(self.store.find_cred(req.kind, req.params[0]), req)

    # ---- workspaces (doc §15) -----------------------------------------------------------------
    def h_workspaces(self, req):
        size = page_size(req.args)
        data = sorted((meta for meta, _ in self.workspaces.values()), key=lambda m: m["id"])
        return 200, {"data": data[:size], "next": None}

    def h_workspace(self, req):
        ident = req.params[0]
        for meta, _ in self.workspaces.values():
            if meta["name"] == ident or (is_uuid(ident) and meta["id"] == ident.lower()):
                return 200, meta
        raise not_found()

    # ---- tags (doc §5) -------------------------------------------------------------------------
    def _tag_tables(self):
        s = self.store
        return (s.consumers, s.keys, s.plugins) + tuple(st.table for st in s.creds.values())

    def h_tags(self, req):
        """One row per (entity, tag), ordered by entity_id then tag position; ?tags= ignored."""
        args = req.args
        size = page_size(args)
        decoded = decode_offset(args)
        cur_id = cursor_id(decoded)
        cur_pos = decoded[1] if decoded is not None and len(decoded) > 1 and isinstance(decoded[1], int) else None
        tables = self._tag_tables()

        def part(table):
            ids = table.ids
            start = bisect.bisect_left(ids, cur_id) if cur_id is not None else 0
            return ((ids[i], table) for i in range(start, len(ids)))

        def entities():
            return heapq.merge(*[part(t) for t in tables], key=lambda pair: pair[0])

        data, last = [], None
        more = False
        for rid, table in entities():
            tags = table.rows[rid]["tags"] or []
            for pos, tag in enumerate(tags, 1):
                if cur_id is not None and rid == cur_id and (cur_pos is None or pos <= cur_pos):
                    continue
                if len(data) == size:
                    more = True
                    break
                data.append({"entity_id": rid, "entity_name": table.name, "tag": tag})
                last = [rid, pos]
            if more:
                break
        return 200, self._list_body(data, last[0] if more else None, f"{self.prefix}/tags", args, top=True,
                                    offset_key=last if more else None)

    def h_tag(self, req):
        raw_tag = req.params[0]
        err = tag_error(raw_tag)
        if err:
            raise invalid_unique("tag", err)
        args = req.args
        size = page_size(args)
        cursor = cursor_id(decode_offset(args))

        def part(table):
            lst = table.tag_index.get(raw_tag, [])
            start = bisect.bisect_right(lst, cursor) if cursor is not None else 0
            return ((lst[i], table) for i in range(start, len(lst)))

        data, last, more = [], None, False
        for rid, table in heapq.merge(*[part(t) for t in self._tag_tables()], key=lambda pair: pair[0]):
            if len(data) == size:
                more = True
                break
            data.append({"entity_id": rid, "entity_name": table.name, "tag": raw_tag})
            last = rid
        body = {"data": data}
        if more:
            token = encode_offset([last])
            body["offset"] = token
            body["next"] = f"{self.prefix}/tags/{req.raw[0]}?offset={ngx_escape(token)}"
        else:
            body["next"] = None
        return 200, body


# ---------------------------------------------------------------------------------------------
# Seeding and bulk generation (test control)
# ---------------------------------------------------------------------------------------------


class SeedError(Exception):
    def __init__(self, where: str, err: KongError):
        super().__init__(where)
        self.where, self.err = where, err


def seed_store(store: Store, spec) -> dict:
    """Adds consumers (with keys, other credentials and plugins) and top-level plugins, validated
    like POSTs. All or nothing: on error everything added by this call is removed again (a
    consumer's credentials go with it)."""
    if not isinstance(spec, dict):
        raise SeedError("$", plain(400, "seed body must be an object"))
    created_consumers, created_keys, created_plugins = [], [], []
    out = {"consumers": [], "plugins": []}
    where = "$"
    try:
        consumers = spec.get("consumers") or []
        if not isinstance(consumers, list):
            raise SeedError("consumers", plain(400, "consumers must be an array"))
        for i, c in enumerate(consumers):
            where = f"consumers[{i}]"
            if not isinstance(c, dict):
                raise plain(400, "expected an object")
            c = dict(c)
            keys = c.pop("keys", None) or []
            plugins = c.pop("plugins", None) or []
            creds = c.pop("credentials", None) or {}
            if not isinstance(creds, dict) or any(k not in CRED_KINDS for k in creds):
                where = f"consumers[{i}].credentials"
                raise plain(400, "credentials must be an object with keys " + ", ".join(CRED_KINDS))
            row = store.insert_consumer(c)
            created_consumers.append(row["id"])
            entry = dict(row)
            entry["keys"], entry["plugins"] = [], []
            if creds:
                entry["credentials"] = {}
            for name, items in creds.items():
                kind = CRED_KINDS[name]
                entry["credentials"][name] = []
                if not isinstance(items, list):
                    where = f"consumers[{i}].credentials.{name}"
                    raise plain(400, "expected an array")
                for j, item in enumerate(items):
                    where = f"consumers[{i}].credentials.{name}[{j}]"
                    if not isinstance(item, dict):
                        raise plain(400, "expected an object")
                    item = dict(item)
                    item.pop("consumer", None)
                    crow = store.insert_cred(kind, item, force={"consumer_id": row["id"]})
                    entry["credentials"][name].append(store.render_cred(kind, crow))
            for j, k in enumerate(keys):
                where = f"consumers[{i}].keys[{j}]"
                k = dict(k) if isinstance(k, dict) else k
                if not isinstance(k, dict):
                    raise plain(400, "expected an object")
                k.pop("consumer", None)
                krow = store.insert_key(k, force={"consumer_id": row["id"]})
                created_keys.append(krow["id"])
                entry["keys"].append(store.render_key(krow))
            for j, p in enumerate(plugins):
                where = f"consumers[{i}].plugins[{j}]"
                if not isinstance(p, dict):
                    raise plain(400, "expected an object")
                p = dict(p)
                p.pop("consumer", None)
                prow = store.insert_plugin(p, force={"consumer_id": row["id"]})
                created_plugins.append(prow["id"])
                entry["plugins"].append(store.render_plugin(prow))
            out["consumers"].append(entry)
        for j, p in enumerate(spec.get("plugins") or []):
            where = f"plugins[{j}]"
            if not isinstance(p, dict):
                raise plain(400, "expected an object")
            prow = store.insert_plugin(dict(p))
            created_plugins.append(prow["id"])
            out["plugins"].append(store.render_plugin(prow))
        return out
    except KongError as err:
        for pid in reversed(created_plugins):
            if pid in store.plugins.rows:
                store._delete_plugin_row(pid)
        for kid in reversed(created_keys):
            if kid in store.keys.rows:
                store._delete_key_row(kid)
        for cid in reversed(created_consumers):
            if cid in store.consumers.rows:
                store.delete_consumer(cid)
        raise SeedError(where, err)


def generate(store: Store, spec) -> dict:
    """Bulk-creates consumers (and keys) fast: bypasses per-row validation but keeps every index."""
    if not isinstance(spec, dict):
        raise ValueError("body must be an object")
    count = spec.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 1_000_000:
        raise ValueError("count must be an integer 0..1000000")
    kpc = spec.get("keys_per_consumer", 0)
    if not isinstance(kpc, int) or isinstance(kpc, bool) or not 0 <= kpc <= 20:
        raise ValueError("keys_per_consumer must be an integer 0..20")
    prefix = spec.get("username_prefix", "user")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("username_prefix must be a non-empty string")
    mode = spec.get("custom_id", "uuid5")
    if mode not in ("uuid5", "none"):
        raise ValueError("custom_id must be \"uuid5\" or \"none\"")
    start = spec.get("start", 1)
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise ValueError("start must be a non-negative integer")
    tags, terr = normalize_tags(spec.get("tags"))
    if terr:
        raise ValueError(f"tags: {terr}")
    key_tags, terr = normalize_tags(spec.get("key_tags"))
    if terr:
        raise ValueError(f"key_tags: {terr}")
    width = max(6, len(str(start + count - 1))) if count else 6
    names = [f"{prefix}{i:0{width}d}" for i in range(start, start + count)]
    for name in names:
        if name in store.by_username:
            raise ValueError(f"username {name!r} already exists")
    customs = None
    if mode == "uuid5":
        ns = uuid.NAMESPACE_URL
        customs = [str(uuid.uuid5(ns, "user:" + name)) for name in names]
        for value in customs:
            if value in store.by_custom_id:
                raise ValueError(f"custom_id {value!r} already exists")
    now = store.now()
    ids = fast_uuids(count)
    rows = []
    for i in range(count):
        rows.append({
            "id": ids[i], "created_at": now, "updated_at": now, "username": names[i],
            "custom_id": customs[i] if customs else None, "tags": list(tags) if tags is not None else None,
        })
    key_rows = []
    if kpc:
        kids = fast_uuids(count * kpc)
        keys = random_keys(count * kpc)
        for n in range(count * kpc):
            key_rows.append({"id": kids[n], "created_at": now, "consumer_id": ids[n // kpc], "key": keys[n],
                             "tags": list(key_tags) if key_tags is not None else None, "expires_at": None})
    store.consumers.bulk_add(rows)
    for row in rows:
        store.by_username[row["username"]] = row["id"]
        if row["custom_id"] is not None:
            store.by_custom_id[row["custom_id"]] = row["id"]
    if key_rows:
        store.keys.bulk_add(key_rows)
        keys_of = store.keys_of
        for row in key_rows:
            store.by_key[row["key"]] = row["id"]
            lst = keys_of.get(row["consumer_id"])
            if lst is None:
                keys_of[row["consumer_id"]] = [row["id"]]
            else:
                lst.append(row["id"])
    return {
        "consumers": count, "keys": len(key_rows),
        "first_username": names[0] if names else None, "last_username": names[-1] if names else None,
    }


# ---------------------------------------------------------------------------------------------
# Kong Enterprise RBAC (doc §15). Enterprise's code is not public: the permission is derived from
# the method and the path inside the workspace, matched against endpoint patterns. The file format
# is this fixture's own (README.md, "Enterprise").
# ---------------------------------------------------------------------------------------------

RBAC_ACTIONS = ("read", "create", "update", "delete")
METHOD_ACTION = {"GET": "read", "HEAD": "read", "OPTIONS": "read", "POST": "create", "PUT": "update",
                 "PATCH": "update", "DELETE": "delete"}


def _rbac_pattern(pattern: str):
    if not isinstance(pattern, str) or not (pattern == "*" or pattern.startswith("/")):
        raise ValueError(f"endpoint {pattern!r} must be \"*\" or start with /")
    if pattern == "*":
        return None                                  # every endpoint
    return [p for p in pattern.strip("/").split("/")] if pattern != "/" else []


def rbac_matches(pattern, segments: list) -> bool:
    """`*` is one segment; a trailing `/*` also covers everything below; None is every endpoint."""
    if pattern is None:
        return True
    if len(pattern) == len(segments) and all(p == "*" or p == s for p, s in zip(pattern, segments)):
        return True
    return (bool(pattern) and pattern[-1] == "*" and len(segments) > len(pattern)
            and all(p == "*" or p == s for p, s in zip(pattern[:-1], segments)))


class Rbac:
    """{"tokens": {TOKEN: {WORKSPACE|"*": {ENDPOINT: [ACTION…]}}}} or, to name the RBAC user,
    {"tokens": {TOKEN: {"name": "alice", "workspaces": {…}}}}. ACTION is read, create, update,
    delete or "*"."""

    def __init__(self, spec):
        if not isinstance(spec, dict) or set(spec) != {"tokens"} or not isinstance(spec["tokens"], dict):
            raise ValueError('expected {"tokens": {TOKEN: {WORKSPACE: {ENDPOINT: [ACTION, …]}}}}')
        self.spec = spec
        self.tokens: dict = {}
        for token, entry in spec["tokens"].items():
            if not token:
                raise ValueError("a token must not be empty")
            if not isinstance(entry, dict):
                raise ValueError(f"tokens.{token} must be an object")
            name = token
            workspaces = entry
            if "workspaces" in entry:
                extra = sorted(set(entry) - {"name", "workspaces"})
                if extra:
                    raise ValueError(f"tokens.{token}: unknown key(s) {', '.join(extra)}")
                name = entry.get("name", token)
                workspaces = entry["workspaces"]
                if not isinstance(name, str) or not name or not isinstance(workspaces, dict):
                    raise ValueError(f"tokens.{token}: name must be a string, workspaces an object")
            perms: dict = {}
            for ws, endpoints in workspaces.items():
                if not isinstance(endpoints, dict):
                    raise ValueError(f"tokens.{token}.{ws} must be an object of endpoint: [actions]")
                rules = []
                for pattern, actions in endpoints.items():
                    if not isinstance(actions, list) or any(a not in RBAC_ACTIONS + ("*",) for a in actions):
                        raise ValueError(f"tokens.{token}.{ws}.{pattern}: actions must be a list of "
                                         + ", ".join(RBAC_ACTIONS) + " or \"*\"")
                    allowed = set(RBAC_ACTIONS) if "*" in actions else set(actions)
                    rules.append((_rbac_pattern(pattern), allowed))
                perms[ws] = rules
            self.tokens[token] = (name, perms)

    def user(self, token):
        return self.tokens.get(token)

    @staticmethod
    def allowed(user, workspace: str, segments: list, action: str) -> bool:
        _, perms = user
        for ws in (workspace, "*"):
            for pattern, actions in perms.get(ws, ()):
                if action in actions and rbac_matches(pattern, segments):
                    return True
        return False


# ---------------------------------------------------------------------------------------------
# Konnect (doc §16): the same store, Konnect's paths, verbs, auth and error bodies
# ---------------------------------------------------------------------------------------------

KONNECT_BASE = "/v2/control-planes/"
KONNECT_VERBS = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"}
KONNECT_ROOTS = {"consumers", "key-auths", "plugins"} | {k.top for k in CRED_KINDS.values() if k.konnect}
KONNECT_NESTED = {"key-auth", "plugins"} | {k.nested for k in CRED_KINDS.values() if k.konnect}
ERROR_DETAIL_TYPE = "type.googleapis.com/kong.admin.model.v1.ErrorDetail"


def konnect_route(segments: list):
    """Kong's route for a core-entities path, or None when Konnect does not offer it."""
    if not segments or segments[0] not in KONNECT_ROOTS:
        return None
    if segments[0] == "consumers" and len(segments) >= 3 and segments[2] not in KONNECT_NESTED:
        return None
    if segments[-1] == "consumer" and len(segments) == 3:
        return None
    if segments[:2] == ["plugins", "enabled"]:
        return None
    return match_route(segments)


def konnect_problem(status: int, title: str, detail: str) -> dict:
    """Konnect platform errors (SDK UnauthorizedError, NotFoundError): problem JSON."""
    return {"status": status, "title": title, "type": f"https://httpstatuses.com/{status}",
            "instance": f"kong:trace:{random.getrandbits(63)}", "detail": detail}


def _detail(kind: str, messages, field=None) -> dict:
    d = {"@type": ERROR_DETAIL_TYPE, "type": kind}
    if field is not None:
        d["field"] = field
    d["messages"] = messages
    return d


def _field_details(fields: dict, prefix="") -> list:
    out = []
    for name in sorted(fields):
        err = fields[name]
        if name == "@entity":
            out.append(_detail("ERROR_TYPE_ENTITY", list(err)))
        elif isinstance(err, dict):
            out.extend(_field_details(err, f"{prefix}{name}."))
        elif isinstance(err, list):
            msgs = [m if isinstance(m, str) else json.dumps(m) for m in err if m is not None]
            out.append(_detail("ERROR_TYPE_FIELD", msgs, prefix + name))
        else:
            out.append(_detail("ERROR_TYPE_FIELD", [str(err)], prefix + name))
    return out


def konnect_error(status: int, body):
    """Kong's error -> Konnect's core-entities error (doc §16). -> (status, body)."""
    if not isinstance(body, dict):
        return status, body
    code = body.get("code")
    if status == 404:
        return 404, {"code": 5, "message": "not found", "details": []}
    if status == 405:
        return 405, {"code": 12, "message": "Method Not Allowed", "details": []}
    if code == 2:
        return 400, {"code": 3, "message": "validation error", "details": _field_details(body.get("fields") or {})}
    if code in (3, 5):
        fields = body.get("fields") or {}
        return 400, {"code": 3, "message": "data constraint error", "details": [
            _detail("ERROR_TYPE_REFERENCE", [f"{name} (type: unique) constraint failed"], name)
            for name in sorted(fields)]}
    if code in (4, 13):
        fields = body.get("fields") or {}
        return 400, {"code": 3, "message": "data constraint error", "details": [
            _detail("ERROR_TYPE_REFERENCE", [f"{name} (type: foreign) constraint failed"], name)
            for name in sorted(fields)]}
    if code in (1, 7, 9, 10, 11):
        options = body.get("options") or body.get("fields")
        if isinstance(options, dict):
            details = _field_details(options)
        else:
            field = {7: "offset", 9: "size"}.get(code)
            details = [_detail("ERROR_TYPE_FIELD", [body.get("message", "")], field)]
        return 400, {"code": 3, "message": "validation error", "details": details}
    message = body.get("message", "error")
    return status, {"code": 3 if status == 400 else 13, "message": message, "details": []}


def plain_json_bytes(value) -> bytes:
    """Konnect's JSON: compact, `/` not escaped (doc §16)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------

STATUS_TEXT = {
    200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Not Allowed", 409: "Conflict", 415: "Unsupported Media Type",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}


def parse_form(raw: bytes) -> dict:
    """application/x-www-form-urlencoded with Kong's conventions: `a.b=` nests, `a[]=` or a
    repeated key makes an array; values are inferred for the few typed fields we know."""
    out: dict = {}
    for part in raw.decode("latin-1").split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        key = unquote_to_bytes(k.replace("+", " ")).decode("utf-8", "surrogateescape")
        value = unquote_to_bytes(v.replace("+", " ")).decode("utf-8", "surrogateescape")
        is_list = key.endswith("[]")
        if is_list:
            key = key[:-2]
        path = key.split(".")
        node = out
        for p in path[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                break
        last = path[-1]
        if is_list or last in node:
            prev = node.get(last)
            if prev is None:
                node[last] = [value]
            elif isinstance(prev, list):
                prev.append(value)
            else:
                node[last] = [prev, value]
        else:
            node[last] = value
    return _infer(out)


_INT_FIELDS = {"status_code", "ttl", "created_at", "updated_at", "error_code", "port", "database"}
_BOOL_FIELDS = {"enabled", "echo", "hide_credentials", "key_in_header", "key_in_query", "key_in_body",
                "run_on_preflight", "hide_groups_header", "fault_tolerant", "hide_client_headers", "hash_secret"}
_SET_FIELDS = {"tags", "protocols", "key_names", "allow", "deny", "redirect_uris"}


def _infer(obj: dict) -> dict:
    for key, value in list(obj.items()):
        if isinstance(value, dict):
            obj[key] = _infer(value)
        elif key in _SET_FIELDS and not isinstance(value, list):
            obj[key] = [value] if value != "" else []
        elif key in _INT_FIELDS and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            obj[key] = int(value)
        elif key in _BOOL_FIELDS and value in ("true", "false"):
            obj[key] = value == "true"
        elif key in _SET_FIELDS | _INT_FIELDS | _BOOL_FIELDS and value == "":
            obj[key] = None
    return obj


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def get_request(self):
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kong"
    # set by main()
    app: KongApp = None
    stats: Stats = None
    faults: Faults = None
    token = None
    verbose = False

    def version_string(self):
        return f"kong/{self.app.version}"

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    # every method goes through one dispatcher
    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_OPTIONS(self):
        self.dispatch("OPTIONS")

    def __getattr__(self, name):
        # any other method (TRACE, FOO, ...) is routed too: 405 on a known path, 404 elsewhere
        if name.startswith("do_") and name[3:].isupper():
            return lambda: self.dispatch(name[3:])
        raise AttributeError(name)

    # ---- I/O helpers ---------------------------------------------------------------------------
    def read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        return b""

    def send(self, status: int, body, headers=(), head=False, content_type="application/json; charset=utf-8"):
        """body: None, already-encoded bytes, or a JSON value (encoded the cjson way)."""
        if body is None:
            payload = b""
        elif isinstance(body, bytes):
            payload = body
        else:
            payload = cjson_bytes(body)
        lines = [f"HTTP/1.1 {status} {STATUS_TEXT.get(status, 'Unknown')}",
                 f"Date: {email.utils.formatdate(usegmt=True)}"]
        if payload or status not in (204, 415):
            lines.append(f"Content-Type: {content_type}")
        if status != 204:
            lines.append(f"Content-Length: {len(payload)}")
        lines.append(f"Server: kong/{self.app.version}")
        lines.append("Access-Control-Allow-Origin: *")
        lines.append("X-Kong-Admin-Latency: 0")
        for name, value in headers:
            lines.append(f"{name}: {value}")
        if self.close_connection:
            lines.append("Connection: close")
        else:
            lines.append("Connection: keep-alive")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head and status != 204:
            data += payload
        self.wfile.write(data)
        self.log_request(status, len(payload))

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ---- dispatch ------------------------------------------------------------------------------
    def dispatch(self, method: str):
        arrived = time.monotonic()
        target = self.path
        if target.startswith("http://") or target.startswith("https://"):
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
        path, _, query = target.partition("?")
        control = path.startswith("/__test/") or path == "/__test"
        write = not control and method in WRITE_METHODS
        if not control:
            self.stats.arrived(method, path, arrived)
        if write:
            self.stats.write_started()      # in flight from the request head to the last byte sent
        try:
            self.dispatch_in(method, path, query, control)
        finally:
            if write:
                self.stats.write_finished()

    def dispatch_in(self, method: str, path: str, query: str, control: bool):
        try:
            raw_body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        try:
            if control:
                status, body, headers = self.control(method, path, query, raw_body)
                if body is not None and not isinstance(body, bytes):
                    body = state_bytes(body)        # plain JSON: this part is not Kong
                self.send(status, body, headers, head=(method == "HEAD"))
                return
            self.kong(method, path, query, raw_body)
        except Exception:  # noqa: BLE001 - a fixture must answer, not die
            traceback.print_exc()
            try:
                self.send(500, {"message": "An unexpected error occurred"})
            except OSError:
                pass

    def resolve(self, segments: list) -> dict:
        """Which surface, workspace and route a path names (doc §1, §15, §16)."""
        app = self.app
        ctx = {"surface": "kong", "workspace": None, "prefix": "", "route": None, "segments": segments,
               "cp": None}
        if app.konnect_cp is not None and segments[:2] == ["v2", "control-planes"] and len(segments) >= 3:
            ctx["cp"] = segments[2]
            base = "/v2/control-planes/{controlPlaneId}"
            if len(segments) == 3:
                ctx["surface"] = "konnect_cp"
                ctx["template"] = base
                return ctx
            ctx["surface"] = "konnect"
            ctx["template"] = "<unknown>"
            if segments[3] == "core-entities":
                rest = segments[4:]
                ctx["segments"] = rest
                ctx["prefix"] = "/" + "/".join(segments[:4])
                ctx["route"] = konnect_route(rest)
                if ctx["route"] is not None:
                    ctx["template"] = base + "/core-entities" + ctx["route"][0]
            return ctx
        if app.enterprise and segments and segments[0] not in ROOT_NAMES:
            ctx["workspace"] = segments[0]
            ctx["prefix"] = "/" + segments[0]
            segments = segments[1:]
            ctx["segments"] = segments
        route = match_route(segments)
        if route is not None and route[1] in ("workspaces", "workspace") and not app.enterprise:
            route = None
        ctx["route"] = route
        if route is None:
            ctx["template"] = "<unknown>"
        elif ctx["workspace"] is not None:
            ctx["template"] = "/{workspace}" + (route[0] if route[0] != "/" else "")
        else:
            ctx["template"] = route[0]
        return ctx

    def kong(self, method: str, path: str, query: str, raw_body: bytes):
        app, store = self.app, self.app.default_store
        p = path
        if len(p) > 1 and p.endswith("/"):
            p = p[:-1]                              # one trailing slash accepted (doc §1)
        segments = [] if p == "/" else p[1:].split("/")
        ctx = self.resolve(segments)
        template = ctx["template"]
        with store.lock:
            self.stats.count(method, template)
            app.requests_served += 1
            rule = self.faults.match(method, path)
        if rule is not None:
            if rule.delay_ms:
                time.sleep(rule.delay_ms / 1000.0)
            if rule.drop:
                with store.lock:
                    self.stats.status(0)
                self.drop()
                return
            if rule.status is not None:
                headers = []
                retry_after = None if rule.retry_after is None else str(rule.retry_after)  # a string goes out verbatim
                if retry_after is not None:
                    headers.append(("Retry-After", retry_after))
                headers.extend(rule.headers.items())                # e.g. a Location for a redirect
                body = rule.body
                if isinstance(body, str):
                    body = body.encode("utf-8")
                with store.lock:
                    self.stats.status(rule.status)
                gap = self.stats.sending_429(method, path, retry_after) if rule.status == 429 else None
                try:
                    self.send(rule.status, body, headers, head=(method == "HEAD"))
                except OSError:
                    if gap is not None:
                        self.stats.unsent_429(gap)
                    raise
                return
        bomb = app.quirks.gzip_bomb_bytes
        if bomb is not None and template == "/consumers" and method in ("GET", "HEAD"):
            # quirk gzip_bomb_bytes: whatever was asked, whatever Accept-Encoding said
            payload = app.quirks.bomb(bomb)
            with store.lock:
                self.stats.status(200)
            self.send(200, payload, [("Content-Encoding", "gzip")], head=(method == "HEAD"),
                      content_type="application/json")
            return
        if ctx["surface"] == "kong":
            status, body, headers, ctype = self.kong_response(method, ctx, query, raw_body)
        else:
            status, body, headers, ctype = self.konnect_response(method, ctx, query, raw_body)
        with store.lock:
            self.stats.status(status)
        if ctype is None:
            self.send(status, body, headers, head=(method == "HEAD"))
        else:
            self.send(status, body, headers, head=(method == "HEAD"), content_type=ctype)

    def kong_response(self, method, ctx, query, raw_body):
        app = self.app
        user = None
        if app.rbac is not None:                                        # doc §15
            token = self.headers.get("Kong-Admin-Token")
            user = app.rbac.user(token) if token else None
            if user is None:
                return 401, {"message": "Invalid RBAC credentials"}, [], None
        elif self.token is not None and self.headers.get("Kong-Admin-Token") != self.token:
            return 401, {"message": "Invalid RBAC credentials"}, [], None      # doc §11
        ws_name = "default"
        if ctx["workspace"] is not None:
            ws_name = ngx_unescape(ctx["workspace"])
            if ws_name not in app.workspaces:
                return 404, {"message": f"Workspace '{ws_name}' not found"}, [], None
        if user is not None:
            action = METHOD_ACTION.get(method, "read")
            endpoint = [ngx_unescape(x) for x in ctx["segments"]]
            if not Rbac.allowed(user, ws_name, endpoint, action):
                return 403, {"message": f"{user[0]}, you do not have permissions to {action} this resource"}, [], None
        return self.entity_response(method, ctx, query, raw_body, app.workspaces[ws_name][1], konnect=False)

    def konnect_response(self, method, ctx, query, raw_body):
        """Konnect's shape over the default workspace's store (doc §16)."""
        app = self.app
        auth = self.headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        authorized = scheme.lower() == "bearer" and bool(token) and (
            app.konnect_tokens is None or token in app.konnect_tokens)
        problem = "application/problem+json"
        cp_known = ngx_unescape(ctx["cp"]) == app.konnect_cp["id"]
        if ctx["surface"] == "konnect_cp":
            if not authorized:
                return 401, konnect_problem(401, "Unauthorized", "Invalid credentials"), [], problem
            if not cp_known:
                return 404, konnect_problem(404, "Not Found", "Not found"), [], problem
            if method not in ("GET", "HEAD"):
                return 405, konnect_problem(405, "Method Not Allowed", "Method not allowed"), [], problem
            return 200, plain_json_bytes(app.konnect_cp), [], "application/json"
        if not authorized:
            return 401, plain_json_bytes({"message": "Unauthorized", "status": 401}), [], "application/json"
        if not cp_known:
            return 404, konnect_problem(404, "Not Found", "Not found"), [], problem
        if method not in KONNECT_VERBS:
            status, body = konnect_error(405, {"message": "Method not allowed"})
            return status, plain_json_bytes(body), [], "application/json"
        status, body, headers, _ = self.entity_response(method, ctx, query, raw_body, app.default_store,
                                                         konnect=True)
        if isinstance(body, dict):
            status, body = konnect_error(status, body)
            body = plain_json_bytes(body)
        return status, body, headers, "application/json"

    def entity_response(self, method, ctx, query, raw_body, store, konnect):
        app = self.app
        route = ctx["route"]
        if route is None:
            return 404, dict(NOT_FOUND), [], None
        template, name, allowed, raw, kind = route
        if method == "OPTIONS":
            allow = ", ".join(sorted(set(allowed) | {"HEAD", "OPTIONS"}))
            return 204, None, [("Allow", allow)], None
        effective = "GET" if method == "HEAD" else method
        if effective not in allowed:
            return 405, {"message": "Method not allowed"}, [], None
        body = None
        if effective in ("POST", "PUT", "PATCH"):
            ctype = (self.headers.get("Content-Type") or "").strip().lower()
            if not ctype:
                if raw_body:
                    return 415, None, [], None                      # doc §6
                body = {}
            elif ctype.startswith("application/json"):
                try:
                    body = json.loads(raw_body.decode("utf-8"), parse_constant=_reject_constant)
                except (ValueError, UnicodeDecodeError):
                    body = None
                if not isinstance(body, dict):
                    return 400, {"message": "Cannot parse JSON body"}, [], None
            elif ctype.startswith("application/x-www-form-urlencoded"):
                body = parse_form(raw_body)
            else:
                return 415, None, [], None                          # multipart is not modelled
        if app.dbless and effective in WRITE_METHODS:
            verb = {"POST": "create", "PUT": "create or update", "PATCH": "update", "DELETE": "remove"}[effective]
            if kind is not None:
                table = kind.table
            else:
                table = "plugins" if "plugin" in name else ("keyauth_credentials" if "key" in name else "consumers")
            return 405, operation_unsupported(verb, table).body, [], None  # doc §1
        req = Request(effective, raw, parse_query(query), body, kind)
        encode = plain_json_bytes if konnect else cjson_bytes
        with store.lock:
            app.store, app.prefix, app.konnect = store, ctx["prefix"], konnect
            try:
                store.purge_expired()
                status, payload = getattr(app, "h_" + name)(req)
                if payload is not None:
                    payload = encode(payload)           # serialise under the lock: a consistent view
                return status, payload, [], None
            except KongError as err:
                return err.status, err.body, err.headers, None
            finally:
                app.store, app.prefix, app.konnect = app.default_store, "", False

    # ---- test control --------------------------------------------------------------------------
    def control(self, method: str, path: str, query: str, raw_body: bytes):
        app = self.app
        store = app.default_store
        name = path[len("/__test/"):].rstrip("/")
        args = parse_query(query)
        if "workspace" in args and name in ("state", "seed", "generate"):
            # doc §15: these three act on one workspace's store
            ws = arg_str(args["workspace"][0]) or ""
            if ws not in app.workspaces:
                return 404, {"message": f"Workspace '{ws}' not found"}, []
            store = app.workspaces[ws][1]

        def body_json():
            if not raw_body:
                return {}
            try:
                return json.loads(raw_body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise KongError(400, {"message": "Cannot parse JSON body"})

        try:
            with store.lock:
                if name == "stats" and method == "GET":
                    return 200, self.stats.as_json(), []
                if name == "reset-stats" and method == "POST":
                    self.stats.reset()
                    return 200, self.stats.as_json(), []
                if name == "state" and method == "GET":
                    store.purge_expired()
                    return 200, state_bytes(store.snapshot()), []
                if name == "seed" and method == "POST":
                    try:
                        return 201, seed_store(store, body_json()), []
                    except SeedError as err:
                        return err.err.status, {"message": f"seed failed at {err.where}", "error": err.err.body}, []
                if name == "generate" and method == "POST":
                    t0 = time.perf_counter()
                    try:
                        result = generate(store, body_json())
                    except ValueError as err:
                        return 400, {"message": str(err)}, []
                    result["seconds"] = round(time.perf_counter() - t0, 3)
                    return 201, result, []
                if name == "faults":
                    if method == "GET":
                        return 200, {"rules": [r.describe() for r in self.faults.rules]}, []
                    if method == "DELETE":
                        self.faults.rules = []
                        return 204, None, []
                    if method == "POST":
                        try:
                            self.faults.configure(body_json())
                        except (ValueError, re.error) as err:
                            return 400, {"message": str(err)}, []
                        return 200, {"rules": [r.describe() for r in self.faults.rules]}, []
                if name == "quirks":
                    quirks = self.app.quirks
                    if method == "GET":
                        return 200, quirks.as_json(), []
                    if method == "DELETE":
                        quirks.clear()
                        return 204, None, []
                    if method == "POST":
                        try:
                            quirks.configure(body_json())
                        except ValueError as err:
                            return 400, {"message": str(err)}, []
                        return 200, quirks.as_json(), []
                if name == "clock":
                    if method == "POST":
                        spec = body_json()
                        if "advance" in spec:
                            store.clock_offset += int(spec["advance"])
                        if "now" in spec:
                            store.clock_offset = int(spec["now"]) - int(time.time())
                        store.purge_expired()
                    if method in ("GET", "POST"):
                        return 200, {"now": store.now(), "offset": store.clock_offset}, []
                if name == "rbac":
                    if method == "GET":
                        return 200, {"rbac": app.rbac.spec if app.rbac is not None else None}, []
                    if method == "DELETE":
                        app.rbac = None
                        return 204, None, []
                    if method == "POST":
                        try:
                            app.rbac = Rbac(body_json())
                        except ValueError as err:
                            return 400, {"message": str(err)}, []
                        return 200, {"rbac": app.rbac.spec}, []
                if name == "konnect":
                    if method == "GET":
                        return 200, {"control_plane": app.konnect_cp, "tokens": app.konnect_tokens}, []
                    if method == "DELETE":
                        app.konnect_cp = None
                        app.konnect_tokens = None
                        return 204, None, []
                    if method == "POST":
                        spec = body_json()
                        cp_id = spec.get("control_plane_id") if isinstance(spec, dict) else None
                        tokens = spec.get("tokens") if isinstance(spec, dict) else None
                        if not is_uuid(cp_id) or (tokens is not None and (
                                not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens))):
                            return 400, {"message": 'expected {"control_plane_id": UUID, "tokens": [TOKEN, …] or null, "name": …}'}, []
                        app.configure_konnect(cp_id.lower(), tokens, spec.get("name"))
                        return 200, {"control_plane": app.konnect_cp, "tokens": app.konnect_tokens}, []
                if name == "reset" and method == "POST":
                    for ws_store in app.all_stores():
                        ws_store.reset()
                    store.clock_offset = 0
                    self.stats.reset()
                    self.faults.rules = []
                    self.app.quirks.clear()
                    return 200, {"ok": True}, []
            return 404, {"message": "Not found"}, []
        except KongError as err:
            return err.status, err.body, []


def write_port_file(path: str, port: int):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(f"{port}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Kong Admin API test server (Kong 3.9 OSS, Postgres strategy)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--seed", help="JSON file in the /__test/seed format, loaded at start")
    parser.add_argument("--dbless", action="store_true", help="GET / says database off; writes answer 405 code 12")
    parser.add_argument("--token", help="require Kong-Admin-Token on every Kong request (401 otherwise)")
    parser.add_argument("--version", default=None,
                        help=f"version reported by GET / and Server (default {DEFAULT_VERSION}; "
                             f"{DEFAULT_EE_VERSION} in GET / with workspaces or RBAC)")
    parser.add_argument("--workspaces", help="Enterprise: comma-separated workspaces besides default (doc §15)")
    parser.add_argument("--rbac", help="Enterprise: JSON file mapping tokens to permissions (doc §15)")
    parser.add_argument("--konnect", metavar="CP_ID", help="also serve Konnect's /v2/control-planes/CP_ID (doc §16)")
    parser.add_argument("--konnect-token", action="append",
                        help="a bearer token Konnect accepts (repeatable; default: any non-empty token)")
    parser.add_argument("--verbose", action="store_true", help="log each request on stderr")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="the certificate's private key (PEM)")
    parser.add_argument("--client-ca", help="with --tls-cert: require client certificates signed by this CA (mTLS)")
    opts = parser.parse_args(argv)

    store = Store()
    workspaces = None
    if opts.workspaces is not None or opts.rbac:
        workspaces = [w.strip() for w in (opts.workspaces or "").split(",") if w.strip()]
        bad = [w for w in workspaces if w in ROOT_NAMES or w.startswith("__") or "/" in w]
        if bad:
            sys.stderr.write(f"invalid workspace name(s): {', '.join(bad)}\n")
            return 2
    rbac = None
    if opts.rbac:
        try:
            with open(opts.rbac, "rb") as fh:
                rbac = Rbac(json.load(fh))
        except (OSError, ValueError) as err:
            sys.stderr.write(f"invalid --rbac file: {err}\n")
            return 2
    if opts.konnect is not None and not is_uuid(opts.konnect):
        sys.stderr.write("--konnect needs a control plane UUID\n")
        return 2
    server = Server((opts.host, opts.port), Handler)
    if opts.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(opts.tls_cert, opts.tls_key)
        ctx.set_alpn_protocols(["http/1.1"])
        if opts.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(opts.client_ca)
        # The handshake happens in the handler thread, so a failing client cannot stall accept().
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    port = server.server_address[1]
    app = KongApp(store, opts.version or DEFAULT_VERSION, opts.dbless, socket.gethostname(), lambda: port,
                  workspaces=workspaces, version_explicit=opts.version is not None)
    app.rbac = rbac
    if opts.konnect:
        app.configure_konnect(opts.konnect.lower(), opts.konnect_token)
    Handler.app = app
    Handler.stats = Stats()
    Handler.faults = Faults()
    Handler.token = opts.token
    Handler.verbose = opts.verbose

    if opts.seed:
        with open(opts.seed, "rb") as fh:
            spec = json.load(fh)
        try:
            with store.lock:
                seed_store(store, spec)
        except SeedError as err:
            sys.stderr.write(f"seed failed at {err.where}: {json.dumps(err.err.body)}\n")
            server.server_close()
            return 2

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    if opts.port_file:
        write_port_file(opts.port_file, port)
    if opts.verbose:
        sys.stderr.write(f"kong fixture listening on {opts.host}:{port}\n")
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
