"""docs/how-to/serve.md: its bash block runs as shown (on a free port instead of 8080), and it deploys."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from docs_snippets import code_blocks
from mlmkit import __version__

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "how-to" / "serve.md"


def test_serve_page_commands_run(tmp_path: Path) -> None:
    [block] = code_blocks(PAGE, "bash")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert "PORT=8080\n" in block.text
    script = block.text.replace("PORT=8080\n", f"PORT={port}\n")
    (tmp_path / "cwl").symlink_to(REPO / "cwl")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    deployed = json.loads(run.stdout)
    assert deployed["id"] == "mlmkit-inference" and deployed["version"] == __version__
    description = json.loads((tmp_path / "mlmkit-inference.json").read_text())
    assert set(description["inputs"]) >= {"model", "imagery"}
    assert (tmp_path / "serve-state" / "processes" / "mlmkit-inference" / "package.cwl").is_file()
