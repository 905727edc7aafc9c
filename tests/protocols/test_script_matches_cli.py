"""README's three-line script runs write-verify through the engine and gives the same metrics as
``xbarlab run write-verify --json`` for the same bench, seed and parameters."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from analogbench import analog_block

from xbarlab.cli import main

README = Path(__file__).parents[2] / "README.md"


def readme_script() -> tuple[str, ast.Call]:
    """The README's Python block that calls run_protocol("write-verify", ...), and that call."""
    for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.S):
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "run_protocol"
                    and ast.literal_eval(node.args[0]) == "write-verify"):
                return block, node
    raise AssertionError("README has no script that runs write-verify")


def test_readme_script_gives_the_metrics_of_the_command(tmp_path, monkeypatch, capsys):
    script, call = readme_script()
    assert len(script.strip().splitlines()) == 3
    bench_name = ast.literal_eval(call.args[1])
    params = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
    # the same chip twice: two copies of a small analog bench (one World per bench file)
    first = analog_block(tmp_path, 4, 8, seed=11, name="script")
    second = analog_block(tmp_path, 4, 8, seed=11, name="command")
    monkeypatch.setenv("XBARLAB_DATA", str(tmp_path / "script-store"))
    namespace: dict = {}
    exec(script.replace(repr(bench_name), repr(str(first))).replace(f'"{bench_name}"',
                                                                     repr(str(first))),
         namespace)
    from_script = namespace["result"]
    assert from_script.status == "completed"
    capsys.readouterr()

    sets = [item for key, value in params.items() for item in ("--set", f"{key}={value}")]
    assert main(["run", "write-verify", "--bench", str(second), *sets, "--json", "--quiet",
                 "--store", str(tmp_path / "command-store")]) == 0
    from_command = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["metrics"]
    script_metrics = json.loads(json.dumps(from_script.metrics))
    for metrics in (script_metrics, from_command):
        metrics.pop("plot")  # each run's own PNG path
    assert script_metrics == from_command
    assert from_command["cells"] == params["rows"] * params["cols"]
