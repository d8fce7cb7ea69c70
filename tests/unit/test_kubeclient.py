"""Every Kubernetes API request has a timeout; a hung API server ends in a clear error."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client
from urllib3.exceptions import HTTPError

from chaoskit.cluster import kubeclient
from chaoskit.cluster.health import api_client
from chaoskit.errors import OperationFailed
from chaoskit.faults.target import Target


def _kubeconfig(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "contexts: [{name: kind-c, context: {cluster: c, user: u}}]\n"
        "current-context: kind-c\n"
        "users: [{name: u, user: {token: x}}]\n"
    )
    return path


@pytest.fixture
def hung_server() -> object:
    """A server on loopback that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def test_the_default_timeout_of_a_request_and_of_a_watch() -> None:
    assert kubeclient.default_timeout("https://h/api/v1/nodes?limit=1") == (10.0, 60.0)
    assert kubeclient.default_timeout("https://h/api/v1/pods?watch=true&timeoutSeconds=290") == (
        10.0,
        320.0,
    )
    assert kubeclient.default_timeout("https://h/api/v1/pods?watch=true")[1] == 3600.0


def test_a_hung_api_server_ends_as_an_error_naming_the_request_and_the_wait(
    hung_server: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kubeclient, "READ_TIMEOUT_S", 0.5)
    api = api_client(_kubeconfig(tmp_path, hung_server))
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            client.CoreV1Api(api).list_node()
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - the test looks at what came out
            outcome.append(e)

    worker = threading.Thread(target=call, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=20)
    assert outcome, "the call did not return: no request timeout"
    error = outcome[0]
    assert isinstance(error, OperationFailed)
    assert isinstance(error, HTTPError), "retry loops that catch HTTPError keep working"
    assert "GET /api/v1/nodes did not answer within 0.5 s (connect 10 s)" in str(error)
    assert time.monotonic() - started < 15


def test_every_client_chaoskit_builds_sets_a_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[object] = []

    def request(self: object, method: str, url: str, **kwargs: object) -> object:
        seen.append(kwargs.get("_request_timeout"))
        raise RuntimeError("stop here")

    monkeypatch.setattr(client.rest.RESTClientObject, "request", request)
    kubeconfig = _kubeconfig(tmp_path, 1)
    target = Target("c", kubeconfig, "kind-c", ("shop",), managed=True)
    for api in (api_client(kubeconfig), target.api(), target.api(retries=False)):
        with pytest.raises(RuntimeError):
            client.CoreV1Api(api).list_namespace()
    assert seen == [(10.0, 60.0)] * 3
