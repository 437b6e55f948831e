"""Checks of the release artifacts that `make release` writes to dist/ (run: make release-check).

Skipped unless dist/ (or $IDP_SYNC_DIST) holds the .deb and the tarball of the version in VERSION:
`make test` does not build a release (an optimised build takes minutes); `make release-check` builds
one and runs these.

- dpkg-deb --info: name, version, architecture, Depends computed by dpkg-shlibdeps (libc, libldap,
  libcurl, libstdc++; no Swift runtime) plus ca-certificates and adduser, the maintainer scripts.
- dpkg-deb --contents: every file the package promises (the units, the watch service among them,
  and the failure notifier; the Kubernetes manifests, the Prometheus rules and the Grafana dashboard
  among the examples), owned by root, nothing under /var/lib or /etc.
- The binary inside: stripped, the Swift runtime linked statically, runs, prints the version.
- lintian (when installed): no errors or warnings.
- The tarball holds the same files as the package.
"""

import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VERSION = (REPO / "VERSION").read_text().strip()
DIST = Path(os.environ.get("IDP_SYNC_DIST", REPO / "dist"))


def arch():
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no dpkg")


def artifacts():
    a = arch()
    deb = DIST / f"idp-sync_{VERSION}_{a}.deb"
    tarball = DIST / f"idp-sync-{VERSION}-linux-{a}.tar.gz"
    if not deb.exists() or not tarball.exists():
        pytest.skip(f"no release artifacts of {VERSION} in {DIST}: run make release-check")
    return deb, tarball


EXPECTED = {
    "./usr/bin/idp-sync",
    "./lib/systemd/system/idp-sync.service",
    "./lib/systemd/system/idp-sync.timer",
    "./lib/systemd/system/idp-sync-watch.service",
    "./lib/systemd/system/idp-sync-notify@.service",
    "./usr/libexec/idp-sync/idp-sync-notify",
    "./usr/share/doc/idp-sync/copyright",
    "./usr/share/doc/idp-sync/changelog.gz",
    "./usr/share/doc/idp-sync/CHANGELOG.md.gz",
    "./usr/share/doc/idp-sync/README.md.gz",
    "./usr/share/doc/idp-sync/examples/config.example.yaml",
    "./usr/share/doc/idp-sync/examples/idp-sync.cron",
    "./usr/share/doc/idp-sync/examples/kubernetes/cronjob.yaml",
    "./usr/share/doc/idp-sync/examples/kubernetes/watch-deployment.yaml",
    "./usr/share/doc/idp-sync/examples/prometheus/idp-sync-rules.yml",
    "./usr/share/doc/idp-sync/examples/grafana/idp-sync-dashboard.json",
    "./usr/share/doc/idp-sync/docs/configuration.md.gz",
    "./usr/share/doc/idp-sync/docs/journal.md.gz",
    "./usr/share/doc/idp-sync/docs/schema/config.schema.json",
    "./usr/share/man/man1/idp-sync.1.gz",
    "./usr/share/man/man1/idp-sync.sync.1.gz",
    "./usr/share/man/man1/idp-sync.journal.verify.1.gz",
    "./usr/share/man/man5/idp-sync.yaml.5.gz",
    "./usr/share/bash-completion/completions/idp-sync",
    "./usr/share/zsh/vendor-completions/_idp-sync",
    "./usr/share/fish/vendor_completions.d/idp-sync.fish",
}


def contents(deb):
    out = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    entries = {}
    for line in out.splitlines():
        fields = line.split(None, 5)
        mode, owner, path = fields[0], fields[1], fields[5].split(" -> ")[0]
        entries[path] = (mode, owner)
    return entries


def field(info, name):
    match = re.search(rf"^ {name}: (.*)$", info, re.M)
    assert match, f"no {name} in the control file"
    return match.group(1)


def test_control_file():
    deb, _ = artifacts()
    info = subprocess.run(["dpkg-deb", "--info", str(deb)], capture_output=True, text=True, check=True).stdout
    assert field(info, "Package") == "idp-sync"
    assert field(info, "Version") == VERSION
    assert field(info, "Architecture") == arch()
    depends = [d.strip() for d in field(info, "Depends").split(",")]
    names = {d.split()[0] for d in depends}
    assert {"libc6", "libcurl4", "libstdc++6", "ca-certificates", "adduser"} <= names, depends
    assert any(n.startswith("libldap-") for n in names), depends
    assert not any("swift" in n for n in names), depends
    assert all(re.fullmatch(r"[a-z0-9.+-]+( \((>=|=) [^)]+\))?", d) for d in depends), depends
    for script in ("postinst", "prerm", "postrm"):
        assert re.search(rf"^ +\d+ bytes, +\d+ lines +\* +{script} +#!/bin/sh$", info, re.M), info


def test_contents():
    deb, _ = artifacts()
    entries = contents(deb)
    missing = EXPECTED - set(entries)
    assert not missing, f"missing from the package: {sorted(missing)}"
    assert all(owner == "root/root" for _, owner in entries.values())
    executables = {"./usr/bin/idp-sync", "./usr/libexec/idp-sync/idp-sync-notify"}
    assert all(entries[path][0] == "-rwxr-xr-x" for path in executables)
    assert all(mode in ("-rw-r--r--", "drwxr-xr-x") for path, (mode, _) in entries.items() if path not in executables)
    # The journal directory and /etc are made by postinst, never owned by the package, so that
    # removing or purging it cannot delete them.
    assert not [p for p in entries if p.startswith(("./var/", "./etc/"))]
    # Units installed but not enabled: no links in *.wants.
    assert not [p for p in entries if ".wants" in p]


def test_binary(tmp_path):
    deb, _ = artifacts()
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    binary = tmp_path / "usr/bin/idp-sync"
    dynamic = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*?)\]", dynamic)
    assert not [n for n in needed if "swift" in n.lower() or "Foundation" in n or "dispatch" in n], needed
    assert "RPATH" not in dynamic and "RUNPATH" not in dynamic, dynamic
    sections = subprocess.run(["readelf", "-S", str(binary)], capture_output=True, text=True, check=True).stdout
    assert ".debug_info" not in sections and ".symtab" not in sections, "the binary is not stripped"
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    assert re.fullmatch(rf"{re.escape(VERSION)} \(commit [0-9a-f]{{7,40}}(-dirty)?\)\n", version.stdout), version


def test_units_in_the_package_run_the_packaged_binary(tmp_path):
    deb, _ = artifacts()
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    service = (tmp_path / "lib/systemd/system/idp-sync.service").read_text()
    assert "\nExecStart=/usr/bin/idp-sync sync --config /etc/idp-sync/config.yaml\n" in service
    # A failed run reaches the packaged notifier, which runs the packaged script.
    assert "\nOnFailure=idp-sync-notify@%n.service\n" in service
    watch = (tmp_path / "lib/systemd/system/idp-sync-watch.service").read_text()
    assert "\nExecStart=/usr/bin/idp-sync watch --config /etc/idp-sync/config.yaml\n" in watch
    assert "\nOnFailure=idp-sync-notify@%n.service\n" in watch
    notify = (tmp_path / "lib/systemd/system/idp-sync-notify@.service").read_text()
    assert "\nExecStart=/usr/libexec/idp-sync/idp-sync-notify %i\n" in notify
    assert os.access(tmp_path / "usr/libexec/idp-sync/idp-sync-notify", os.X_OK)
    cron = (tmp_path / "usr/share/doc/idp-sync/examples/idp-sync.cron").read_text()
    assert "/usr/bin/idp-sync sync" in cron


def test_lintian():
    deb, _ = artifacts()
    if not shutil.which("lintian"):
        pytest.skip("lintian not installed (apt-get install lintian; make release-check installs it)")
    result = subprocess.run(["lintian", "--fail-on", "error,warning", "--no-tag-display-limit", str(deb)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_tarball_holds_the_same_files():
    deb, tarball = artifacts()
    top = f"idp-sync-{VERSION}-linux-{arch()}"
    with tarfile.open(tarball) as tar:
        members = tar.getmembers()
    names = {m.name for m in members}
    assert all(n == top or n.startswith(top + "/") for n in names), "one top folder"
    assert all(m.uid == 0 and m.gid == 0 for m in members)
    in_tar = {"./" + n[len(top) + 1:] for n in names if n != top and n != f"{top}/INSTALL" and not tar_is_dir(members, n)}
    in_deb = {p for p, (mode, _) in contents(deb).items() if not mode.startswith("d")}
    assert in_tar == in_deb


def tar_is_dir(members, name):
    return any(m.name == name and m.isdir() for m in members)
