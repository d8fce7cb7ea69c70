"""Go programs built from the Go module proxy into the cache, as static binaries.

Each program is built inside a small generated *wrapper module* that requires the program's
module at its pinned version. That one shape covers every case: a plain ``go install``-able
module (kind), modules that 404 on the checksum database (``GOSUMDB=off``; go.sum then pins
what was fetched), and k8s.io/kubernetes, whose own go.mod replaces its staging modules with
local paths that a module download does not have; the wrapper replaces them with their
published versions instead.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from chaoskit.errors import BuildFailed
from chaoskit.images.steps import BuildEnv
from chaoskit.proc import capture, run_logged

GO_DIRECTIVE = "1.24"


@dataclass(frozen=True)
class GoProgram:
    """A set of binaries built from one Go module at one version."""

    name: str
    """Cache name: binaries land in ``bin/<name>-<version>/``."""
    module: str
    version: str
    binaries: tuple[tuple[str, str], ...]
    """(output file name, import path of the main package)."""
    ldflags: tuple[str, ...] = ()
    """``-X`` flags, without the ``-X``: ``importpath.name=value``."""
    requires: tuple[tuple[str, str], ...] = ()
    """Extra modules to require at a version (modules that hold some of the binaries)."""
    replaces: tuple[tuple[str, str], ...] = ()
    """(module, version) to use instead of what the program's go.mod asks for: the way
    around a dependency version the module proxy will not serve."""
    replace_staging: str | None = None
    """For k8s.io/kubernetes: the version of the published staging modules to use."""
    checksum_db: bool = True
    """False where the checksum database does not know the module (``GOSUMDB=off``)."""
    in_module: bool = False
    """Build inside a writable copy of the module itself, with its own go.mod and go.sum,
    for modules whose ``replace`` directives a wrapper would not inherit (traefik).
    ``binaries`` then name packages relative to the module root (``./cmd/traefik``)."""
    cgo: bool = False
    """Build with cgo, linked statically (flannel's UDP backend is C on amd64)."""

    def out_dir(self, env: BuildEnv) -> Path:
        return env.bin_dir / f"{self.name}-{self.version}"

    def outputs(self, env: BuildEnv) -> list[Path]:
        return [self.out_dir(env) / out for out, _ in self.binaries]

    def recipe(self) -> str:
        """What the cache key is made of."""
        return json.dumps(
            {
                "module": self.module,
                "version": self.version,
                "binaries": self.binaries,
                "ldflags": self.ldflags,
                "requires": self.requires,
                "replace_staging": self.replace_staging,
                "replaces": self.replaces,
                "go_directive": GO_DIRECTIVE,
                "cgo": self.cgo,
                "in_module": self.in_module,
            },
            sort_keys=True,
        )


def go_env(env: BuildEnv, *, checksum_db: bool = True) -> dict[str, str]:
    """Go's caches live in chaoskit's cache so that every later build reuses them."""
    values = {
        "GOPATH": str(env.cache_dir / "go"),
        "GOMODCACHE": str(env.cache_dir / "go" / "pkg" / "mod"),
        "GOCACHE": str(env.cache_dir / "go-build"),
        "GOFLAGS": "-modcacherw -buildvcs=false",
        "CGO_ENABLED": "0",
        "GOTOOLCHAIN": "local",
        "GOWORK": "off",
    }
    if not checksum_db:
        values["GOSUMDB"] = "off"
        values["GONOSUMDB"] = "*"
    return values


def _staging_replaces(env: BuildEnv, program: GoProgram, log: Path) -> list[tuple[str, str]]:
    """The staging modules k8s.io/kubernetes replaces with ./staging paths, published instead."""
    assert program.replace_staging is not None
    genv = go_env(env)
    run_logged(
        ["go", "mod", "download", f"{program.module}@{program.version}"],
        log=log,
        what=f"downloading {program.module}@{program.version}",
        error=BuildFailed,
        env=genv,
        cwd=env.work_dir,
    )
    info = capture(
        ["go", "mod", "download", "-json", f"{program.module}@{program.version}"],
        env=genv,
        cwd=env.work_dir,
        timeout=120,
    )
    if info.returncode != 0:
        raise BuildFailed(f"cannot locate {program.module}@{program.version}", log=log)
    staging = staging_modules(Path(json.loads(info.stdout)["GoMod"]).read_text())
    if not staging:
        raise BuildFailed(f"{program.module} replaces no staging modules: unexpected go.mod")
    return [(m, program.replace_staging) for m in staging]


def staging_modules(gomod: str) -> list[str]:
    """The modules a go.mod replaces with ./staging paths (samples and generators aside)."""
    staging = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", gomod, flags=re.MULTILINE)
    skipped = ("k8s.io/sample-", "k8s.io/code-generator")
    return [m for m in staging if not m.startswith(skipped)]


def build_program(env: BuildEnv, program: GoProgram, log: Path) -> None:
    """Builds every binary of ``program`` into its cache folder."""
    work = env.cache_dir / "src" / f"{program.name}-{program.version}"
    env.work_dir.mkdir(parents=True, exist_ok=True)
    genv = go_env(env, checksum_db=program.checksum_db)
    if program.cgo:
        genv["CGO_ENABLED"] = "1"
    if program.in_module:
        _copy_module(env, program, work, log)
    else:
        work.mkdir(parents=True, exist_ok=True)
        _write_wrapper(env, program, work, log)
        run_logged(
            ["go", "mod", "tidy"],
            log=log,
            what=f"resolving {program.module}@{program.version}",
            error=BuildFailed,
            env=genv,
            cwd=work,
            timeout=1800,
        )
    _build_binaries(program, work, program.out_dir(env), genv, log)


def _copy_module(env: BuildEnv, program: GoProgram, work: Path, log: Path) -> None:
    run_logged(
        ["go", "mod", "download", f"{program.module}@{program.version}"],
        log=log,
        what=f"downloading {program.module}@{program.version}",
        error=BuildFailed,
        env=go_env(env, checksum_db=program.checksum_db),
        cwd=env.work_dir,
        timeout=1800,
    )
    info = capture(
        ["go", "mod", "download", "-json", f"{program.module}@{program.version}"],
        env=go_env(env, checksum_db=program.checksum_db),
        cwd=env.work_dir,
        timeout=300,
    )
    if info.returncode != 0:
        raise BuildFailed(f"cannot locate {program.module}@{program.version}", log=log)
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(json.loads(info.stdout)["Dir"], work)
    for path in [work, *work.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


def _write_wrapper(env: BuildEnv, program: GoProgram, work: Path, log: Path) -> None:
    lines = [f"module chaoskit.build/{program.name}", "", f"go {GO_DIRECTIVE}", ""]
    lines.append(f"require {program.module} {program.version}")
    lines += [f"require {mod} {ver}" for mod, ver in program.requires]
    replaces = list(program.replaces)
    if program.replace_staging:
        replaces += _staging_replaces(env, program, log)
    if replaces:
        lines.append("")
        lines += [f"replace {m} => {m} {v}" for m, v in replaces]
    (work / "go.mod").write_text("\n".join(lines) + "\n")
    (work / "go.sum").unlink(missing_ok=True)
    imports = "\n".join(f'\t_ "{pkg}"' for _, pkg in program.binaries)
    (work / "tools.go").write_text(
        f"//go:build tools\n\n// Package tools pins the programs chaoskit builds.\n"
        f"package tools\n\nimport (\n{imports}\n)\n"
    )


def _build_binaries(
    program: GoProgram, work: Path, out_dir: Path, genv: dict[str, str], log: Path
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    flags = ["-s", "-w", *(f"-X {flag}" for flag in program.ldflags)]
    tags: list[str] = []
    if program.cgo:
        flags.append("-extldflags=-static")
        tags = ["-tags", "netgo,osusergo"]  # no glibc NSS, which cannot be linked statically
    for out, pkg in program.binaries:
        tmp = out_dir / f".{out}.tmp"
        run_logged(
            ["go", "build", "-trimpath", *tags, "-ldflags", " ".join(flags), "-o", tmp, pkg],
            log=log,
            what=f"building {out} ({program.module}@{program.version})",
            error=BuildFailed,
            env=genv,
            cwd=work,
            timeout=3600,
        )
        tmp.replace(out_dir / out)
