"""The manifests baked into the node image name images the factory builds."""

from __future__ import annotations

import re

from chaoskit.images.factory import component_images, contexts_dir


def _images_in(manifest: str) -> set[str]:
    text = (contexts_dir() / manifest).read_text()
    return set(re.findall(r"^\s*image:\s*(\S+)", text, flags=re.MULTILINE))


def _normalised(image: str) -> str:
    return image.removeprefix("docker.io/")


def test_cni_and_storage_manifests_use_preloaded_images() -> None:
    preloaded = {_normalised(i) for i in component_images()}
    used = _images_in("cni/default-cni.yaml") | _images_in("local-path/default-storage.yaml")
    assert used, "no image references found"
    assert {_normalised(i) for i in used} <= preloaded
