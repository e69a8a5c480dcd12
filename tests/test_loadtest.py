"""scripts/loadtest.py's wrk plumbing against a real server (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from ktt.testing import free_port, stop_process

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "loadtest.py"


@pytest.fixture(scope="module")
def loadtest():
    spec = importlib.util.spec_from_file_location("loadtest", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["loadtest"] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("loadtest", None)


def test_lua_strings_survive_brackets_and_quotes(loadtest):
    assert loadtest.lua_string('{"text": "a"}') == '[[{"text": "a"}]]'
    assert loadtest.lua_string("x]]y") == "[=[x]]y]=]"
    assert loadtest.lua_string("ends with ]") == "[=[ends with ]]=]"


def test_wrk_posts_every_text_and_its_figures_are_parsed(loadtest, tmp_path):
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (bash scripts/setup.sh --dev installs it as root)")
    texts = ['Cholera due to Vibrio cholerae 01, biovar "eltor"', "Typhoid fever, unspecified", "Ulcer ]] of skin"]
    port = free_port()
    log = tmp_path / "echo.log"
    target = loadtest.Target("starlette_echo", [sys.executable, str(SCRIPT), "--serve", "echo", "--port", str(port)],
                             "/predict", "/readyz", "predict")
    server = loadtest.start(target, log)
    try:
        url = f"http://127.0.0.1:{port}/predict"
        loadtest.wait_ready(f"http://127.0.0.1:{port}/readyz", server, log, 60, "echo")
        loadtest.check_answer(target, url, texts, 1)
        script = loadtest.write_lua(tmp_path / "predict.lua", texts, "predict", 1)
        bodies = [json.loads(m.group(2)) for m in re.finditer(r"^  \[(=*)\[(.*)\]\1\],?$", script.read_text(),
                                                                re.MULTILINE)]
        assert bodies == [{"text": t} for t in texts]  # one body per text, in order, brackets and quotes intact
        result = loadtest.run_wrk(url, script, threads=1, connections=2, duration="1s", timeout="5s")
    finally:
        stop_process(server, group=True)
    assert result["requests"] > 0 and result["non_2xx"] == 0 and result["socket_errors"] == 0
    assert result["p99_ms"] >= result["p50_ms"] > 0 and result["rps"] > 0


def test_a_server_that_dies_is_one_clear_error(loadtest, tmp_path):
    log = tmp_path / "dead.log"
    target = loadtest.Target("dead", [sys.executable, "-c", "import sys; print('no model here'); sys.exit(3)"],
                             "/predict", "/readyz", "predict")
    server = loadtest.start(target, log)
    with pytest.raises(loadtest.ServerError, match=r"dead exited with status 3 before it was ready(.|\n)*no model here"):
        loadtest.wait_ready(f"http://127.0.0.1:{free_port()}/readyz", server, log, 30, "dead")
