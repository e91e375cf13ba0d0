"""The platform's executor: steps on threads of this process by default (test_threaded_executor.py); Dagster's
in-process, multiprocess or dagster-dask's executor by run config,
each validated against its own schema, with errors that name the run config's field."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import dagster as dg
import pytest

from ml_platform.adapters.executor import ExecutorConfigError, _sealed_dask_executor, chosen, platform_executor_for
from ml_platform_tests.helpers import REPO_ROOT


def test_dagsters_in_process_and_multiprocess_keep_their_settings():
    definition, config = chosen({"in_process": {}})
    assert definition is dg.multi_or_in_process_executor and set(config) == {"in_process"}
    definition, config = chosen({"multiprocess": {"max_concurrent": 2}})
    assert definition is dg.multi_or_in_process_executor and config["multiprocess"]["max_concurrent"] == 2
    platform_executor = platform_executor_for(lambda: False)
    assert platform_executor.get_requirements({"in_process": {}}) == []
    assert platform_executor.get_requirements({"dask": {}})  # another process needs a persistent instance


def test_a_misspelled_multiprocess_setting_is_refused_naming_the_field():
    with pytest.raises(ExecutorConfigError, match=r"run config execution\.config\.multiprocess: .*max_concurent"):
        chosen({"multiprocess": {"max_concurent": 2}})


def test_an_unknown_dask_cluster_kind_is_refused_naming_the_field():
    pytest.importorskip("dagster_dask", reason="the cluster extra is not installed (pip install -e '.[cluster]')")
    with pytest.raises(ExecutorConfigError, match=r"run config execution\.config\.dask: .*nowhere"):
        chosen({"dask": {"cluster": {"nowhere": {}}}})
    definition, config = chosen({"dask": {"cluster": {"existing": {"address": "tcp://127.0.0.1:8786"}}}})
    assert definition.name == "dask" and config == {"cluster": {"existing": {"address": "tcp://127.0.0.1:8786"}}}
    # a kind dagster-dask knows but the platform's sealed executor does not build
    with pytest.raises(ExecutorConfigError, match=r"execution\.config\.dask\.cluster: 'yarn' is not supported "
                                                  r"here; allowed: existing, local"):
        _sealed_dask_executor(chosen({"dask": {"cluster": {"yarn": {}}}})[1])


def test_dask_without_the_cluster_extra_says_how_to_install_it():
    # a Python in which dagster_dask cannot be imported, as on an installation without the extra
    script = textwrap.dedent("""
        import sys
        sys.modules["dagster_dask"] = None
        from ml_platform.adapters.executor import ExecutorConfigError, chosen
        try:
            chosen({"dask": {"cluster": {"existing": {"address": "tcp://127.0.0.1:8786"}}}})
        except ExecutorConfigError as error:
            print(error)
        else:
            raise SystemExit("no error")
    """)
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "execution.config.dask: the dask executor needs the cluster extra" in completed.stdout
    assert "pip install -e '.[cluster]'" in completed.stdout
