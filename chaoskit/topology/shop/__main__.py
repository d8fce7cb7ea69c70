"""``python3 -m shop <service>``: runs one shop service on port 8080 (PORT).

Service: gateway, product, order, payment or notification (or SERVICE_NAME when no
argument is given). LOG_LEVEL sets the log level (default INFO). Exit code 2 for a
wrong argument or setting.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import uvicorn

from .config import SERVICES, ConfigError, Settings

log = logging.getLogger(__name__)


def main(argv: list[str]) -> int:
    service = argv[1] if len(argv) > 1 else os.environ.get("SERVICE_NAME", "")
    if service not in SERVICES:
        print(f"usage: python3 -m shop {{{'|'.join(SERVICES)}}}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.from_env(service)
    except ConfigError as exc:
        print(f"shop {service}: {exc}", file=sys.stderr)
        return 2
    module = importlib.import_module(f".{service}", __package__)
    app = module.create(settings)
    log.info("starting %s on port %d", service, settings.port)
    uvicorn.run(
        app,
        host="0.0.0.0",  # noqa: S104 - a container's service listens on its pod address
        port=settings.port,
        log_level=os.environ.get("LOG_LEVEL", "info").lower(),
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
