"""Registry credentials through the docker credential-helper protocol (issue 17, item 4):
`credsStore` and `credHelpers` in the client's config.json run `docker-credential-NAME
get|store|erase`; berth never writes a password in clear where a helper is configured, a
helper that holds nothing means no login, and a helper that fails is an error naming it. The
helper here is a script on PATH (`docker-credential-test`) that stores into a JSON file, as
Debian's golang-docker-credential-helpers' `pass`/`secretservice` helpers speak the protocol.

Needs `docker-registry` and `htpasswd` (apache2-utils); a missing one fails the tests.
"""

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import IMAGE, REGISTRY, Registry, berth_ok, describe

HELPER = r'''#!/usr/bin/env python3
import json, os, sys
store = os.environ["CRED_TEST_STORE"]
action = sys.argv[1]
data = sys.stdin.read()
with open(store + ".log", "a") as f:
    f.write(action + "\n")
creds = json.load(open(store)) if os.path.exists(store) else {}
if action == "store":
    c = json.loads(data)
    creds[c["ServerURL"]] = {"Username": c["Username"], "Secret": c["Secret"]}
elif action == "get":
    server = data.strip()
    if server not in creds:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({"ServerURL": server, **creds[server]}))
elif action == "erase":
    creds.pop(data.strip(), None)
else:
    print("unknown action"); sys.exit(1)
json.dump(creds, open(store, "w"))
'''

BROKEN = "#!/bin/sh\necho 'the keyring is locked'\nexit 1\n"


@pytest.fixture
def helpers(monkeypatch):
    """`docker-credential-test` (a working helper) and `docker-credential-broken` on PATH."""
    assert os.path.exists(REGISTRY), "docker-registry is not installed"
    assert shutil.which("htpasswd"), "htpasswd (apache2-utils) is not installed"
    tmp = tempfile.mkdtemp(prefix="berth-credhelper.")
    for name, text in (("test", HELPER), ("broken", BROKEN)):
        path = os.path.join(tmp, f"docker-credential-{name}")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
    store = os.path.join(tmp, "store.json")
    monkeypatch.setenv("PATH", tmp + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("CRED_TEST_STORE", store)
    yield store
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def auth_registry():
    tmp = tempfile.mkdtemp(prefix="berth-htpasswd.")
    htpasswd = os.path.join(tmp, "htpasswd")
    subprocess.run(["htpasswd", "-Bbc", htpasswd, "alice", "s3cret"], check=True,
                   capture_output=True)
    reg = Registry(auth={"htpasswd": htpasswd})
    yield reg
    reg.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def write_config(d, cfg: dict) -> str:
    path = os.path.join(d.docker_config, "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def helper_calls(store: str) -> list[str]:
    try:
        return open(store + ".log").read().split()
    except FileNotFoundError:
        return []


def test_creds_store_keeps_the_password_out_of_config(daemon, helpers, auth_registry):
    reg = auth_registry
    cfg_path = write_config(daemon, {"credsStore": "test"})
    p = daemon.berth_cli("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret\n")
    assert p.returncode == 0 and "Login Succeeded" in p.stdout, describe(p)
    assert "unencrypted" not in p.stderr, describe(p)
    text = open(cfg_path).read()
    assert "s3cret" not in text and "auth\"" not in text, text
    assert json.loads(text)["auths"] == {reg.host: {}}, text
    assert json.load(open(helpers))[reg.host] == {"Username": "alice", "Secret": "s3cret"}
    assert helper_calls(helpers) == ["store"]

    # Push and pull take the login from the helper.
    name = f"{reg.host}/cred/bb:v1"
    berth_ok(daemon, "tag", IMAGE, name)
    berth_ok(daemon, "push", name)
    berth_ok(daemon, "rmi", name)
    out = berth_ok(daemon, "pull", name)
    assert "Downloaded newer image" in out, out
    assert helper_calls(helpers).count("get") >= 2, helper_calls(helpers)

    # Logout erases it from the helper; then the registry refuses.
    out = berth_ok(daemon, "logout", reg.host)
    assert "Removing login credentials" in out, out
    assert json.load(open(helpers)) == {}
    assert "erase" in helper_calls(helpers)
    berth_ok(daemon, "rmi", name)
    p = daemon.berth_cli("pull", name)
    said = (p.stdout + p.stderr).lower()
    assert p.returncode != 0 and ("unauthorized" in said or "denied" in said), describe(p)
    assert "s3cret" not in open(cfg_path).read()


def test_cred_helpers_per_registry_win_over_creds_store(daemon, helpers, auth_registry):
    reg = auth_registry
    cfg_path = write_config(daemon, {"credsStore": "broken", "credHelpers": {reg.host: "test"}})
    p = daemon.berth_cli("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret\n")
    assert p.returncode == 0, describe(p)
    assert "s3cret" not in open(cfg_path).read()
    name = f"{reg.host}/credh/bb:v1"
    berth_ok(daemon, "tag", IMAGE, name)
    berth_ok(daemon, "push", name)
    # The docker CLI reads the same helper configuration.
    daemon.docker_ok("rmi", name)
    daemon.docker_ok("pull", name, timeout=120)


def test_a_failing_helper_is_an_error_not_an_anonymous_pull(daemon, helpers, auth_registry):
    reg = auth_registry
    write_config(daemon, {"credsStore": "broken"})
    p = daemon.berth_cli("pull", f"{reg.host}/any/bb:v1")
    assert p.returncode != 0, describe(p)
    assert "docker-credential-broken" in p.stderr and "the keyring is locked" in p.stderr, describe(p)
    # A helper that holds nothing for the registry is no login: the registry's own refusal.
    write_config(daemon, {"credsStore": "test"})
    p = daemon.berth_cli("pull", f"{reg.host}/any/bb:v1")
    assert p.returncode != 0 and "docker-credential" not in p.stderr, describe(p)
    # Login with a helper that cannot store: an error, and no password in config.json.
    cfg_path = write_config(daemon, {"credsStore": "broken"})
    p = daemon.berth_cli("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret\n")
    assert p.returncode != 0 and "docker-credential-broken" in p.stderr, describe(p)
    assert "s3cret" not in open(cfg_path).read()


def test_without_a_helper_the_clear_text_store_warns_as_docker(daemon, auth_registry):
    reg = auth_registry
    cfg_path = write_config(daemon, {})
    p = daemon.berth_cli("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret\n")
    assert p.returncode == 0, describe(p)
    assert "WARNING! Your password will be stored unencrypted in " + cfg_path in p.stderr, describe(p)
    assert json.load(open(cfg_path))["auths"][reg.host]["auth"], open(cfg_path).read()
