"""The pytest plugin without a cluster: which files become items, collection errors,
options, and a run that needs a cluster it cannot find. Each case runs a real pytest
session with the plugin as installed (its pytest11 entry point)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from chaoskit.pytest_plugin import (
    DEFAULT_CONFIG,
    ChaoskitCluster,
    ChaoskitSession,
    ChaoskitSystem,
    read_options,
)
from chaoskit.system.spec import load_system

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
POD_KILL = REPO / "experiments" / "pod-kill.yaml"
# Locust's own pytest plugin monkey-patches with gevent on import (as the repo's addopts);
# in-process sessions cannot rewrite the asserts of the already imported chaoskit package.
BASE_ARGS = (
    "-p",
    "no:locust",
    "-p",
    "no:cacheprovider",
    "-W",
    "ignore::pytest.PytestAssertRewriteWarning",
)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*BASE_ARGS, *args)


def experiment(**changes: object) -> str:
    doc = yaml.safe_load(POD_KILL.read_text())
    doc.update(changes)
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No chaoskit cluster exists as far as these sessions can tell."""
    monkeypatch.setenv("CHAOSKIT_CACHE_DIR", str(tmp_path / "cache"))


def test_experiment_files_are_items_and_nothing_else_is(pytester: pytest.Pytester) -> None:
    exp = pytester.mkdir("experiments")
    (exp / "pod-kill.yaml").write_text(POD_KILL.read_text())
    (exp / "more").mkdir()
    (exp / "more" / "pod-kill-json.json").write_text(
        json.dumps(yaml.safe_load(POD_KILL.read_text()))
    )
    # A suite file, even one that looks like an experiment, is not a test.
    (exp / "suites").mkdir()
    (exp / "suites" / "flash.yaml").write_text(experiment())
    (exp / "kind-config.yaml").write_text((REPO / "kind-config.quick.yaml").read_text())
    (exp / "notes.yaml").write_text("title: not an experiment\nsteps: [a, b]\n")
    (exp / "report.json").write_text('{"experiment": {"title": "x", "method": []}}')
    (exp / "broken.yml").write_text("title: [unclosed\n")
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")

    result = run(pytester, "--collect-only", "-q")

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    collected = {line for line in result.outlines if "::" in line}
    assert collected == {
        "experiments/pod-kill.yaml::pod-kill",
        "experiments/more/pod-kill-json.json::pod-kill-json",
        "test_plain.py::test_plain",
    }


def test_an_invalid_experiment_is_a_collection_error_naming_file_field_reason(
    pytester: pytest.Pytester,
) -> None:
    doc = yaml.safe_load(POD_KILL.read_text())
    doc["method"][0]["provider"]["func"] = "kill_podz"
    exp = pytester.mkdir("experiments")
    (exp / "bad.yaml").write_text(yaml.safe_dump(doc))
    (exp / "pod-kill.yaml").write_text(POD_KILL.read_text())

    result = run(pytester, "--collect-only", "-q")

    assert result.ret == pytest.ExitCode.INTERRUPTED
    out = result.stdout.str()
    assert "ERROR collecting experiments/bad.yaml" in out
    assert (
        "experiments/bad.yaml: method[0].provider.func: unknown chaoskit action 'kill_podz'" in out
    )
    assert "Traceback" not in out
    assert 'File "' not in out  # no frames at all


def test_an_experiment_that_does_not_parse_is_a_collection_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".yaml", broken="title: x\ndescription: y\nmethod:\n  - [unclosed\n")

    result = run(pytester, "--collect-only", "-q")

    assert result.ret == pytest.ExitCode.INTERRUPTED
    out = result.stdout.str()
    assert "broken.yaml: line 4: not valid YAML" in out
    assert "Traceback" not in out


def test_a_missing_cluster_is_one_line_for_each_item_and_user_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".yaml", **{"pod-kill": POD_KILL.read_text()})
    pytester.makepyfile(
        test_mine="""
        def test_uses_the_cluster(chaoskit_cluster):
            assert chaoskit_cluster.name
        """
    )

    result = run(pytester, "--chaoskit-cluster", "nosuch", "--no-chaoskit-deploy")

    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    message = "chaoskit: --chaoskit-cluster 'nosuch': no chaoskit cluster of that name"
    # The short summary repeats the message when the terminal is wide enough: count
    # only the error reports themselves.
    reports = [line for line in out.splitlines() if not line.startswith("ERROR ")]
    assert sum(message in line for line in reports) == 2
    assert "Traceback" not in out
    assert "During handling" not in out


def test_bad_options_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"pod-kill": POD_KILL.read_text()})

    not_key_value = run(pytester, "--chaoskit-var", "selector")
    assert not_key_value.ret == pytest.ExitCode.USAGE_ERROR
    assert "--chaoskit-var 'selector': not KEY=VALUE" in not_key_value.stderr.str()

    unknown_key = run(pytester, "--collect-only", "--chaoskit-var", "selectr=app=x")
    assert unknown_key.ret == pytest.ExitCode.USAGE_ERROR
    err = unknown_key.stderr.str()
    assert "--chaoskit-var selectr: no collected experiment has such a configuration key" in err
    assert "selector" in err

    bad_name = run(pytester, "--chaoskit-cluster", "Not_A_Name")
    assert bad_name.ret == pytest.ExitCode.USAGE_ERROR
    assert "--chaoskit-cluster 'Not_A_Name'" in bad_name.stderr.str()


def test_a_var_that_some_experiment_has_is_accepted(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"pod-kill": POD_KILL.read_text()})
    result = run(pytester, "--collect-only", "-q", "--chaoskit-var", "selector=app=nothing")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()


def test_options_come_from_the_command_line_over_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        chaoskit_cluster = from-ini
        chaoskit_config = configs/kind.yaml
        chaoskit_seed = 11
        chaoskit_namespaces = shop other
        chaoskit_vars = selector=app=web hold=5
        chaoskit_deploy = false
        chaoskit_keep = true
        chaoskit_out = out
        """
    )
    from_ini = read_options(pytester.parseconfig(*BASE_ARGS))
    assert from_ini.cluster == "from-ini"
    assert from_ini.config == pytester.path / "configs" / "kind.yaml"
    assert from_ini.seed == "11"
    assert from_ini.namespaces == ("shop", "other")
    assert from_ini.variables == {"selector": "app=web", "hold": "5"}
    assert from_ini.deploy is False
    assert from_ini.keep is True
    assert from_ini.out == pytester.path / "out"

    config = pytester.parseconfig(
        *BASE_ARGS,
        "--chaoskit-cluster=lab",
        "--chaoskit-seed=7",
        "--chaoskit-namespace=shop",
        "--chaoskit-var=hold=9",
        "--chaoskit-deploy",
        "--chaoskit-out=elsewhere",
        "--chaoskit-config=kind-config.quick.yaml",
    )
    options = read_options(config)
    assert options.cluster == "lab"
    assert options.seed == "7"
    assert options.namespaces == ("shop",)
    assert options.variables == {"selector": "app=web", "hold": "9"}
    assert options.deploy is True
    assert options.out == config.invocation_params.dir / "elsewhere"
    assert options.config == config.invocation_params.dir / "kind-config.quick.yaml"


def test_defaults_make_and_delete_a_cluster_from_the_rootdirs_kind_config(
    pytester: pytest.Pytester,
) -> None:
    options = read_options(pytester.parseconfig(*BASE_ARGS, "--no-chaoskit-deploy"))
    assert options.cluster is None
    assert options.config == pytester.path / DEFAULT_CONFIG
    assert options.keep is False
    assert options.deploy is False
    assert options.seed is None
    assert options.namespaces == ()
    assert options.variables == {}
    assert options.out is None
    assert read_options(pytester.parseconfig(*BASE_ARGS)).deploy is True


def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"pod-kill": POD_KILL.read_text()})
    result = run(pytester, "-p", "no:chaoskit", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_a_session_without_experiments_loads_nothing_heavy(pytester: pytest.Pytester) -> None:
    """Every pytest run loads the plugin; without an experiment it must stay out of the way:
    no Chaos Toolkit, no Kubernetes client, no cluster, no output."""
    pytester.makefile(".yaml", manifest="kind: ConfigMap\nmetadata: {name: title-method}\n")
    pytester.makepyfile(
        test_light="""
        import sys

        def test_nothing_heavy_is_imported(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("chaoskit")
            heavy = {"chaoslib", "kubernetes", "chaoskit.ctk", "chaoskit.cluster.lifecycle"}
            assert not heavy & set(sys.modules)
        """
    )
    result = pytester.runpytest_subprocess(*BASE_ARGS)
    result.assert_outcomes(passed=1)
    assert "chaoskit" not in result.stdout.str().split("collected")[-1]


def foreign_kubeconfig(path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "production",
                "contexts": [{"name": "production", "context": {"cluster": "p", "user": "p"}}],
                "clusters": [{"name": "p", "cluster": {"server": "https://10.0.0.1:6443"}}],
                "users": [{"name": "p", "user": {}}],
            }
        )
    )
    return path


def error_reports(result: pytest.RunResult) -> list[str]:
    # The short summary repeats a message when the terminal is wide enough.
    return [line for line in result.stdout.str().splitlines() if not line.startswith("ERROR ")]


def test_the_target_options_come_from_the_command_line_or_environment_never_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("CHAOSKIT_KUBECONFIG", "CHAOSKIT_CONTEXT", "CHAOSKIT_ALLOW_CONTEXT"):
        monkeypatch.delenv(variable, raising=False)
    pytester.makeini(
        """
        [pytest]
        chaoskit_kubeconfig = shared/config
        chaoskit_allow_context = production
        """
    )
    from_ini = read_options(pytester.parseconfig(*BASE_ARGS))
    assert (from_ini.kubeconfig, from_ini.context, from_ini.allow_context) == (None, None, None)

    config = pytester.parseconfig(
        *BASE_ARGS,
        "--chaoskit-kubeconfig=kube/config",
        "--chaoskit-context=production",
        "--chaoskit-allow-context=production",
    )
    options = read_options(config)
    assert options.kubeconfig == config.invocation_params.dir / "kube" / "config"
    assert (options.context, options.allow_context) == ("production", "production")

    monkeypatch.setenv("CHAOSKIT_KUBECONFIG", "/from/env")
    monkeypatch.setenv("CHAOSKIT_ALLOW_CONTEXT", "staging")
    from_env = read_options(pytester.parseconfig(*BASE_ARGS))
    assert (from_env.kubeconfig, from_env.allow_context) == (Path("/from/env"), "staging")


def test_a_cluster_name_and_a_kubeconfig_together_are_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    result = run(pytester, "--chaoskit-cluster", "lab", "--chaoskit-kubeconfig", "config")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--chaoskit-cluster: give it or --chaoskit-kubeconfig/--chaoskit-context" in (
        result.stderr.str()
    )


def test_a_missing_kubeconfig_is_one_line_for_each_item(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"pod-kill": POD_KILL.read_text()})
    result = run(pytester, "--chaoskit-kubeconfig", "nowhere/config", "--no-chaoskit-deploy")
    result.assert_outcomes(errors=1)
    message = f"chaoskit: --kubeconfig {pytester.path / 'nowhere' / 'config'}: no such file"
    assert sum(message in line for line in error_reports(result)) == 1
    assert "Traceback" not in result.stdout.str()


def test_a_foreign_context_needs_allow_context(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"pod-kill": POD_KILL.read_text()})
    foreign_kubeconfig(pytester.path / "config")
    result = run(pytester, "--chaoskit-kubeconfig", "config", "--no-chaoskit-deploy")
    result.assert_outcomes(errors=1)
    assert any("pass --allow-context production" in line for line in error_reports(result))


def test_an_allowed_foreign_context_deploys_nothing_and_refuses_power_faults(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(
        ".yaml", **{"node-stop": (REPO / "experiments" / "node-stop.yaml").read_text()}
    )
    foreign_kubeconfig(pytester.path / "config")
    target = ("--chaoskit-kubeconfig", "config", "--chaoskit-allow-context", "production")

    deploying = run(pytester, *target)
    deploying.assert_outcomes(errors=1)
    assert any(
        "--chaoskit-allow-context production: the topology is deployed and reached only on "
        "chaoskit's own kind clusters: give --no-chaoskit-deploy" in line
        for line in error_reports(deploying)
    )

    power = run(pytester, *target, "--no-chaoskit-deploy")
    power.assert_outcomes(failed=1)
    out = power.stdout.str()
    assert "node-stop is a power fault (docker stop of a kind node container)" in out
    assert "not on context 'production'" in out
    assert "Traceback" not in out


# --------------------------------------------------------------------------- a system folder

KVSTORE = REPO / "tests" / "unit" / "system" / "fixtures" / "kvstore"


def test_a_system_folder_is_named_as_a_topology_is(pytester: pytest.Pytester) -> None:
    """A path (as in a suite's ``topology:`` and ``chaoskit deploy``): relative to the
    invocation folder on the command line, to the ini file's folder in it."""
    (pytester.path / "conf").mkdir()
    (pytester.path / "conf" / "pytest.ini").write_text(
        "[pytest]\nchaoskit_topology = ./systems/kv\n"
    )
    from_ini = read_options(pytester.parseconfig(*BASE_ARGS, "-c", "conf/pytest.ini"))
    assert from_ini.system == pytester.path / "conf" / "systems" / "kv"
    assert from_ini.topology_option == "chaoskit_topology (ini)"

    config = pytester.parseconfig(*BASE_ARGS, "--chaoskit-topology", "./kv")
    options = read_options(config)
    assert options.system == config.invocation_params.dir / "kv"
    assert (options.topology, options.topology_option) == ("./kv", "--chaoskit-topology")

    named = read_options(pytester.parseconfig(*BASE_ARGS, "--chaoskit-topology=ecommerce-ha"))
    assert (named.topology, named.system) == ("ecommerce-ha", None)
    default = read_options(pytester.parseconfig(*BASE_ARGS))
    assert (default.topology, default.system) == ("ecommerce", None)


def test_a_missing_system_folder_is_one_line_before_any_cluster(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".yaml", **{"pod-kill": POD_KILL.read_text()})
    # The cluster named does not exist either: its error would come first if the system
    # folder were not read before the cluster.
    result = run(pytester, "--chaoskit-cluster=nosuch", "--chaoskit-topology=./nosuch")
    result.assert_outcomes(errors=1)
    message = (
        f"chaoskit: --chaoskit-topology ./nosuch: no such system folder: {pytester.path}/nosuch"
    )
    assert sum(message in line for line in error_reports(result)) == 1, result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_an_invalid_system_file_names_file_field_and_reason(pytester: pytest.Pytester) -> None:
    shutil.copytree(KVSTORE, pytester.path / "kv")
    system_file = pytester.path / "kv" / "chaoskit-system.yaml"
    system_file.write_text(
        system_file.read_text().replace("context: images/kv", "context: images/kvv")
    )
    pytester.makefile(".yaml", **{"pod-kill": POD_KILL.read_text()})
    pytester.makepyfile(test_mine="def test_mine(chaoskit_system):\n    pass\n")

    result = run(pytester, "--chaoskit-cluster=nosuch", "--chaoskit-topology=kv/")

    result.assert_outcomes(errors=2)
    message = (
        f"chaoskit: {system_file}: images[0].context: no such folder in the system folder: "
        "'images/kvv'"
    )
    assert sum(message in line for line in error_reports(result)) == 2, result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_the_fixtures_say_which_one_to_ask_for(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mine="""
        def test_topology(chaoskit_topology):
            pass

        def test_system(chaoskit_system):
            pass
        """
    )
    with_system = run(pytester, "--chaoskit-cluster=nosuch", "--chaoskit-topology=./kv")
    with_system.assert_outcomes(errors=2)
    reports = error_reports(with_system)
    assert any(
        "chaoskit: --chaoskit-topology ./kv: the session's topology is a system folder: ask "
        "for chaoskit_system, not chaoskit_topology" in line
        for line in reports
    ), with_system.stdout.str()

    without = run(pytester, "--chaoskit-cluster=nosuch", "-k", "test_system")
    without.assert_outcomes(errors=1)
    assert any(
        "chaoskit: chaoskit_system: the session has no system folder: give "
        "--chaoskit-topology ./FOLDER" in line
        for line in error_reports(without)
    ), without.stdout.str()


def test_experiments_act_in_the_systems_namespaces_unless_told_otherwise(
    pytester: pytest.Pytester,
) -> None:
    shutil.copytree(KVSTORE, pytester.path / "kv")

    def namespaces(*args: str) -> tuple[str, ...]:
        config = pytester.parseconfig(*BASE_ARGS, *args)
        return ChaoskitSession(config, read_options(config)).namespaces()

    assert namespaces("--chaoskit-topology=./kv") == ("kv",)
    assert namespaces("--chaoskit-topology=./kv", "--chaoskit-namespace=other") == ("other",)
    assert namespaces() == ()


CHECKS = """\
def echo(**given):
    return {"checked": 1, "violations": [], "details": given}


def strict(*, phase, **_):
    broken = [{"what": "never holds after"}] if phase == "after" else []
    return {"checked": 1, "violations": broken}
"""


def lite_system(folder: Path) -> ChaoskitSystem:
    folder.mkdir()
    (folder / "app.yaml").write_text("kind: ConfigMap\n")
    (folder / "checks.py").write_text(CHECKS)
    (folder / "chaoskit-system.yaml").write_text(
        "version: 1\nname: lite\nnamespaces: [lite]\ndeploy: {manifests: [app.yaml]}\n"
        "publish: [{name: web, service: lite/web, node_port: 30083}]\n"
        "invariants:\n  - {name: echo, python: 'checks:echo'}\n"
        "  - {name: strict, python: 'checks:strict'}\n"
    )
    return ChaoskitSystem(
        name="lite",
        namespaces=("lite",),
        cluster=ChaoskitCluster("lab", folder / "kubeconfig", created=False),
        published={"web": "http://127.0.0.1:41234"},
        spec=load_system(folder),
        deployed=False,
        since=1000.0,
    )


def test_a_test_runs_the_systems_invariant_checks(tmp_path: Path) -> None:
    """Each check as a suite runs it (a process of its own), given the published URLs, the
    cluster's kubeconfig and the window since the system was serving."""
    system = lite_system(tmp_path / "lite")

    echo, strict = system.check_invariants()
    assert echo.result is not None and strict.result is not None
    given = echo.result.details
    assert given["phase"] == "after"
    assert given["published"] == {"web": "http://127.0.0.1:41234"}
    assert given["kubeconfig"] == str(tmp_path / "lite" / "kubeconfig")
    assert given["acknowledged"] is None
    assert given["window"]["start"] == 1000.0
    assert given["window"]["end"] > 1000.0
    assert strict.violated

    before = system.check_invariants(phase="before", since=2000.0)
    assert [o.violated for o in before] == [False, False]
    assert before[0].result is not None
    assert before[0].result.details["window"] == {"start": 2000.0, "end": 2000.0}
    assert len(system.assert_invariants(phase="before")) == 2

    with pytest.raises(pytest.fail.Exception) as failed:
        system.assert_invariants()
    assert str(failed.value) == (
        "system 'lite': invariants (after) did not hold:\n"
        "  strict: 1 checked, 1 violations (first: never holds after)"
    )
