"""pod-kill when the API answers its DELETE with 409 or 404: the victim's UID decides."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from kubernetes import client

from chaoskit.faults.base import FaultEnv, Victim
from chaoskit.faults.errors import FaultFailed
from chaoskit.faults.pod import PodKill, PodKillParams

VICTIM = Victim("pod", "mysql-2", namespace="shop", uid="old-uid")


class Core:
    """Answers the DELETE with ``status``; the pod called mysql-2 now has ``now_uid``."""

    def __init__(self, status: int, now_uid: str | None) -> None:
        self.status = status
        self.now_uid = now_uid

    def delete_namespaced_pod(self, *_: Any, **__: Any) -> None:
        raise client.ApiException(status=self.status, reason="Conflict")

    def read_namespaced_pod(self, *_: Any, **__: Any) -> Any:
        if self.now_uid is None:
            raise client.ApiException(status=404, reason="Not Found")
        return SimpleNamespace(metadata=SimpleNamespace(uid=self.now_uid))


def inject(core: Core) -> dict[str, Any]:
    fault = PodKill(PodKillParams(namespace="shop", selector="app=mysql", grace_period=0))
    env = cast(FaultEnv, SimpleNamespace(core=lambda: core))
    return fault.inject(env, VICTIM, record=lambda undo: cast(Any, None))


@pytest.mark.parametrize(("status", "now_uid"), [(409, "new-uid"), (409, None), (404, None)])
def test_a_victim_whose_uid_is_gone_counts_as_killed(status: int, now_uid: str | None) -> None:
    result = inject(Core(status, now_uid))
    assert result["victim"] == "pod shop/mysql-2"
    assert "already gone" in result["note"]


def test_a_conflict_while_the_victim_still_lives_fails_the_fault() -> None:
    with pytest.raises(FaultFailed, match="deleting pod shop/mysql-2: Conflict"):
        inject(Core(409, "old-uid"))


def test_other_errors_fail_the_fault() -> None:
    with pytest.raises(FaultFailed, match="deleting pod shop/mysql-2"):
        inject(Core(403, "new-uid"))
