"""Kubernetes API clients with a request timeout on every call.

The generated client waits forever unless each call passes ``_request_timeout``; one
hung API server (a paused control plane, a half-open connection) would hang chaoskit with
it. :class:`TimedApiClient` fills in a default for every call that passes none; a watch
gets a read timeout just past its own ``timeout_seconds``. A call that times out raises
:class:`ApiTimeout`, which names the request and the wait; it is also a urllib3
``HTTPError``, so the loops that retry while the API is down keep retrying.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from kubernetes import client, config
from urllib3.exceptions import MaxRetryError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from chaoskit.errors import OperationFailed

CONNECT_TIMEOUT_S: Final = 10.0
READ_TIMEOUT_S: Final = 60.0
"""Default (connect, read) wait of one API request; generous for any non-watch call."""
WATCH_MARGIN_S: Final = 30.0
"""A watch's read timeout: its ``timeout_seconds`` (the server ends it then) plus this."""
WATCH_DEFAULT_S: Final = 3600.0
"""Read timeout of a watch that asks for no ``timeout_seconds`` of its own."""


class ApiTimeout(OperationFailed, Urllib3Timeout):
    """A Kubernetes API request did not answer within its timeout."""


def default_timeout(url: str) -> tuple[float, float]:
    """The (connect, read) timeout for a request to ``url`` that set none."""
    query = parse_qs(urlsplit(url).query)
    if query.get("watch", [""])[0].lower() == "true":
        seconds = query.get("timeoutSeconds", [""])[0]
        read = float(seconds) + WATCH_MARGIN_S if seconds.isdigit() else WATCH_DEFAULT_S
        return CONNECT_TIMEOUT_S, read
    return CONNECT_TIMEOUT_S, READ_TIMEOUT_S


def _seconds(timeout: Any) -> str:
    if isinstance(timeout, tuple):
        return f"{timeout[1]:g} s (connect {timeout[0]:g} s)"
    return f"{float(timeout):g} s"


class TimedApiClient(client.ApiClient):  # type: ignore[misc]  # the client is untyped
    """An ApiClient whose every request has a timeout (see the module docstring)."""

    def call_api(
        self,
        method: str,
        url: str,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        timeout = _request_timeout if _request_timeout is not None else default_timeout(url)
        try:
            return super().call_api(
                method, url, header_params, body, post_params, _request_timeout=timeout
            )
        except (Urllib3Timeout, MaxRetryError) as e:
            if isinstance(e, MaxRetryError) and not isinstance(e.reason, Urllib3Timeout):
                raise
            path = urlsplit(url).path
            raise ApiTimeout(
                f"Kubernetes API {method} {path} did not answer within {_seconds(timeout)}"
            ) from e


def new_client(
    kubeconfig: Path, *, context: str | None = None, retries: bool = True, pool: int = 0
) -> client.ApiClient:
    """A client of ``kubeconfig``'s cluster (``context``, else its current one).

    ``retries=False`` for callers that retry on their own; ``pool`` widens urllib3's
    connection pool (every informer holds a watch connection).
    """
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(kubeconfig),
        context=context,
        client_configuration=configuration,
        persist_config=False,
    )
    if pool:
        configuration.connection_pool_maxsize = pool
    if not retries:
        configuration.retries = False
    return TimedApiClient(configuration)
