"""Building and inspecting Docker images for the factory.

Images are built with the classic builder (``DOCKER_BUILDKIT=0``): Debian's dockerd 20.10
has no BuildKit daemon to speak of here, and the classic builder needs nothing pulled. Each
image carries the key of the build that made it in a label, so the factory can tell a
current image from a stale one with the same name.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from chaoskit.errors import BuildFailed
from chaoskit.proc import capture, run_logged

KEY_LABEL = "io.chaoskit.build-key"
BUILD_TIMEOUT_S = 3600.0
"""One ``docker build``: generous for a cold build that compiles on 2 cores; only a hung
build reaches it."""
BUILD_ENV = {"DOCKER_BUILDKIT": "0"}


def image_key(image: str) -> str | None:
    """The build key an image was made with, or None if it is absent or not chaoskit's."""
    proc = capture(
        [
            "docker",
            "image",
            "inspect",
            "--format",
            f'{{{{index .Config.Labels "{KEY_LABEL}"}}}}',
            image,
        ]
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def image_exists(image: str) -> bool:
    return capture(["docker", "image", "inspect", "--format", "{{.Id}}", image]).returncode == 0


def stage_context(source: Path, dest: Path, extra: Mapping[str, Path] = {}) -> Path:
    """Copies a build context to ``dest`` and adds files or folders under the given names."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    for name, path in extra.items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, target)
    return dest


def build_image(
    context: Path,
    tags: Sequence[str],
    *,
    key: str,
    log: Path,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
) -> None:
    cmd: list[str] = ["docker", "build", "--label", f"{KEY_LABEL}={key}"]
    if target:
        cmd += ["--target", target]
    for tag in tags:
        cmd += ["-t", tag]
    for name, value in (build_args or {}).items():
        cmd += ["--build-arg", f"{name}={value}"]
    cmd.append(str(context))
    run_logged(
        cmd,
        log=log,
        what=f"building image {tags[0]}",
        error=BuildFailed,
        env=BUILD_ENV,
        timeout=BUILD_TIMEOUT_S,
    )
