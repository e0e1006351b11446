"""Error sentences and settings: what users read when something is wrong, and how overrides combine.

The API error mapping is driven through ``Api`` with pylxd's own exception carrying a real
``requests.Response`` (the request itself is faked: this tier has no daemon).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from pydantic import ValidationError
from pylxd.exceptions import LXDAPIException
from ws.errors import WsError
from ws_plugin_incus.client import Api
from ws_plugin_incus.errors import IncusError, NotFound, api_error, connection_error, foreign_instance
from ws_plugin_incus.images import reference_source
from ws_plugin_incus.settings import IncusSettings


def _response(status: int, error: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"type": "error", "error": error, "error_code": status}).encode()
    return response


class _Node:
    """Stands in for pylxd's API node: every request fails with ``exc``."""

    def __init__(self, exc: Exception):
        self.exc = exc

    def __getitem__(self, _segment: str) -> _Node:
        return self

    def get(self, **_kwargs):
        raise self.exc

    post = get


class _Client:
    def __init__(self, exc: Exception):
        self.api = _Node(exc)
        self.host_info = {}


def _api(exc: Exception, **settings) -> Api:
    return Api(_Client(exc), IncusSettings(**settings))


def test_404_is_not_found_with_what_ws_was_doing():
    api = _api(LXDAPIException(_response(404, "Instance not found")))
    with pytest.raises(NotFound, match="reading workspace-dev: Instance not found"):
        api.get("instances/workspace-dev", "reading workspace-dev")


def test_a_missing_project_is_an_error_that_names_it_not_an_absent_instance():
    api = _api(LXDAPIException(_response(404, "Project not found")), project="ws-tests")
    with pytest.raises(IncusError) as error:
        api.get("instances/workspace-dev", "reading workspace-dev")
    assert not isinstance(error.value, NotFound), "status would call the workspace absent, up would create it"
    assert "the Incus project 'ws-tests' ([incus] project) does not exist" in str(error.value)
    assert "incus project create ws-tests" in str(error.value)


def test_missing_bridge_says_to_bring_the_network_up():
    api = _api(LXDAPIException(_response(400, 'Failed to start device "eth0": Parent device "sandbox-br" not found')))
    with pytest.raises(IncusError, match=r"the bridge is missing .* run `ws network up` first"):
        api.request("post", "instances", "creating workspace-dev")


def test_forbidden_names_the_trust_store():
    with pytest.raises(IncusError, match="client certificate is not trusted"):
        _api(LXDAPIException(_response(403, "not authorized"))).get("instances", "listing")


def test_transport_failure_on_the_socket_says_how_to_start_incusd():
    error = requests.exceptions.ConnectionError("[Errno 111] Connection refused")
    with pytest.raises(IncusError, match=r"incusd is not running .* `systemctl start incus`"):
        _api(error).get("instances", "listing")


def test_missing_socket_is_reported_before_pylxd_guesses_a_url(tmp_path):
    from ws_plugin_incus.client import connect

    with pytest.raises(IncusError, match="incusd is not running"):
        connect(IncusSettings(socket=tmp_path / "unix.socket"))


def test_permission_denied_names_the_group():
    message = str(connection_error("/var/lib/incus/unix.socket", PermissionError(13, "Permission denied"), False))
    assert "incus-admin" in message and "root" in message


def test_remote_certificate_mismatch_is_explained():
    exc = requests.exceptions.SSLError("Fingerprints did not match")
    message = str(connection_error("https://incus.example:8443", exc, remote=True))
    assert "does not match server_cert" in message


def test_missing_pool_and_image_errors():
    assert "incus storage create" in str(api_error("creating x", 400, 'Storage pool "default" not found'))
    assert isinstance(api_error("creating x", 400, "Image not found"), NotFound)


def test_foreign_instance_sentence():
    message = str(foreign_instance("workspace-dev", "/var/lib/incus/unix.socket"))
    assert "ws did not create it" in message and "never deletes" in message


def test_remote_needs_all_certificates_and_https():
    with pytest.raises(ValidationError, match="client_key, server_cert"):
        IncusSettings(url="https://incus.example:8443", client_cert=Path("/c.crt"))
    with pytest.raises(ValidationError, match="https://"):
        IncusSettings(url="http://incus.example:8443")


def test_a_remote_server_gets_no_host_paths_unless_it_sees_them(tmp_path):
    """Disk sources are read on the server: there a host path names that machine's folder. Refused at
    configuration time, naming the key (exit 2)."""
    from ws.config.loader import load_config
    from ws.errors import ConfigError
    from ws.plugins import PluginManager

    remote = {"url": "https://c:8443", "client_cert": "/c", "client_key": "/k", "server_cert": "/s"}
    with pytest.raises(ValidationError, match="shared_paths = true only if it sees this host's folders"):
        IncusSettings.model_validate(remote)
    assert IncusSettings.model_validate({**remote, "shared_paths": True}).remote
    registry = PluginManager(environ={"WS_PLUGINS": "incus"}).load().registry
    config = tmp_path / "ws.toml"
    table = "".join(f'{key} = "{value}"\n' for key, value in remote.items())
    config.write_text(f'state_dir = "{tmp_path}"\n[workspaces.far]\ntype = "incus"\n[workspaces.far.incus]\n{table}')
    with pytest.raises(ConfigError) as raised:
        load_config(config, registry, environ={})
    assert raised.value.exit_code == 2 and [p.location for p in raised.value.problems] == ["workspaces.far.incus"]


def test_workspace_keys_override_the_section_and_errors_name_the_key(tmp_path):
    """IncusSettings is the type's options model: core merges [workspaces.NAME.incus] over [incus] and
    validates both with the configuration (ws config check), so a bad key is a key path, not a failed ws up."""
    from ws.config.loader import load_config
    from ws.errors import ConfigError
    from ws.plugins import PluginManager

    registry = PluginManager(environ={"WS_PLUGINS": "incus"}).load().registry
    config = tmp_path / "ws.toml"
    base = f'state_dir = "{tmp_path}"\n[incus]\nproject = "team"\nstandby = false\nready_timeout = 60.0\n'
    remote = (
        '[workspaces.far.incus]\nurl = "https://c:8443"\nclient_cert = "/c"\nclient_key = "/k"\nserver_cert = "/s"\n'
        "shared_paths = true\n"
    )
    config.write_text(base + '[workspaces.near]\ntype = "incus"\n[workspaces.far]\ntype = "incus"\n' + remote)
    loaded = load_config(config, registry, environ={})
    near, far = loaded.workspaces["near"].options, loaded.workspaces["far"].options
    assert near is loaded.sections["incus"] and not near.remote
    assert far.project == "team" and far.standby is False and far.ready_timeout == 60.0
    assert far.remote and far.endpoint() == "https://c:8443"
    config.write_text(base + '[workspaces.far]\ntype = "incus"\n[workspaces.far.incus]\nurl = "http://c"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(config, registry, environ={})
    assert [p.location for p in raised.value.problems] == ["workspaces.far.incus.url"]


def test_image_references():
    api = _api(RuntimeError("no request expected"))
    pulled = reference_source(api, "images:debian/12").body
    assert pulled == {"type": "image", "mode": "pull", "server": "https://images.linuxcontainers.org",
                      "protocol": "simplestreams", "alias": "debian/12"}  # fmt: skip
    assert reference_source(api, "my-image").body == {"type": "image", "alias": "my-image"}
    assert reference_source(api, "d887ac155950").body == {"type": "image", "fingerprint": "d887ac155950"}
    with pytest.raises(WsError, match=r"\[incus.remotes.corp\]"):
        reference_source(api, "corp:base")
