"""The documentation is code: the site builds with `mkdocs build --strict`, README.md stays short, and every
command and snippet of README.md and of the pages below runs, in order, in one working directory, as a reader
would run them after the tutorial.

Fenced ```bash blocks run as bash scripts (`set -euo pipefail`), ```console blocks as the commands after their
`$ ` prompts, ```python blocks in a fresh interpreter, all in the working directory with the environment a reader
has (no schema mirror: the shipped schemas). ```text blocks
are output and illustration, not run; pages show installation commands as text, which tests/test_wheel.py runs
in a fresh venv. README's first block is CI's own entry (`scripts/test.sh`) and `scripts/demo.sh`, whose last
command, like README's quick start, the tutorial runs (checked below). The publish page and the examples of the
Python API that need a STAC API or S3 run against a stac-fastapi-pgstac server and a moto S3 server on loopback.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

import mlmkit
import mlmkit.api
from docs_snippets import CodeBlock, code_blocks, commands
from pgstac_server import pgstac_api  # noqa: F401  (fixture)
from s3_helpers import CREDENTIALS, moto_s3

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README_LIMIT = 6 * 1024
# Pages written for this site (other pages come from other work and are built, not run, here), in reading order.
OFFLINE_PAGES = ["how-to/install.md", "how-to/validate.md", "how-to/predict.md", "how-to/train.md", "how-to/run.md",
                 "reference/api.md", "reference/errors.md", "explanation/tiling.md", "explanation/provenance.md",
                 "explanation/untrusted-input.md", "explanation/stac-and-mlm.md", "index.md"]
# Pages that need a STAC API or S3, with the kinds of blocks run here: the match sections' ```bash blocks of the
# publish page are run by tests/test_match_docs.py, on the models and scenes its fixtures publish.
SERVICE_PAGES = {"how-to/object-stores.md": ("bash", "python"), "how-to/publish-and-search.md": ("console", "python")}
RUN = ("bash", "sh", "console", "python")
pytestmark = pytest.mark.slow


def reader_environment(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("MLMKIT_SCHEMA_DIR", "PYTHONPATH")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return {**env, **extra}


def run_block(block: CodeBlock, page: Path, cwd: Path, env: dict[str, str]) -> None:
    if block.lang in ("bash", "sh"):
        command = ["bash", "-c", "set -euo pipefail\n" + block.text]
    elif block.lang == "console":
        command = ["bash", "-c", "set -euo pipefail\n" + "\n".join(commands(block))]
    elif block.lang == "python":
        command = [sys.executable, "-c", block.text]
    else:
        return
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{block.where(page)} failed:\n{block.text}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"


def run_page(name: str, cwd: Path, env: dict[str, str], langs: tuple[str, ...] = RUN) -> int:
    page = DOCS / name
    blocks = [block for block in code_blocks(page) if block.lang in langs]
    for block in blocks:
        run_block(block, page, cwd, env)
    return len(blocks)


def bash_commands(page: Path) -> list[str]:
    return [line.strip() for block in code_blocks(page, "bash") for line in block.text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where a reader runs the tutorial; every other page starts from what it left."""
    root = tmp_path_factory.mktemp("reader")
    env = reader_environment(XDG_CACHE_HOME=str(root / ".cache"))
    assert run_page("tutorial.md", root, env) >= 8
    return root


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=REPO, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text()
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    for verb in mlmkit.api.__all__:
        assert f'id="mlmkit.api.{verb}"' in api, verb  # the API reference holds every verb's docstring
    for command in ("predict", "stage-in", "validate", "--schema-dir", "--overwrite"):
        assert command in cli, command  # the CLI reference is generated from click


def test_readme_is_short_and_its_commands_run_elsewhere() -> None:
    readme = REPO / "README.md"
    assert readme.stat().st_size <= README_LIMIT
    blocks = code_blocks(readme, "bash")
    assert [line.split("#")[0].strip() for line in blocks[0].text.splitlines()] == \
        ["bash scripts/demo.sh", "bash scripts/test.sh"]
    tutorial = bash_commands(DOCS / "tutorial.md")
    quick_start = bash_commands(readme)[2:]
    assert len(quick_start) == 3 and all(command in tutorial for command in quick_start), quick_start
    demo_script = (REPO / "scripts" / "demo.sh").read_text().strip().splitlines()[-1]
    assert demo_script == '.venv/bin/mlmkit demo --output "${1:-demo-output}" --overwrite'
    assert "mlmkit demo --output demo-output" in tutorial  # demo.sh's command, as the tutorial runs it


def test_pages_link_only_pages_that_exist() -> None:
    for page in [REPO / "README.md", *DOCS.rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"[a-z]+://", target):
                assert (page.parent / target).exists(), f"{page}: {target}"


@pytest.mark.parametrize("name", OFFLINE_PAGES)
def test_page_commands_and_snippets_run(workspace: Path, name: str) -> None:
    run_page(name, workspace, reader_environment(XDG_CACHE_HOME=str(workspace / ".cache")))


def verb_examples() -> dict[str, str]:
    """The ```python example of each verb's docstring, as the API reference shows it."""
    examples = {}
    for verb in mlmkit.api.__all__:
        doc = inspect.getdoc(getattr(mlmkit.api, verb))
        match = re.search(r"```python\n(.*?)```", doc.split("Example:")[1], re.S)
        examples[verb] = inspect.cleandoc(match.group(1))
        ast.parse(examples[verb])
    return examples


@pytest.mark.pgstac
def test_pages_and_examples_that_need_a_stac_api_or_s3(workspace: Path, pgstac_api) -> None:  # noqa: F811
    with moto_s3() as endpoint:
        env = reader_environment(XDG_CACHE_HOME=str(workspace / ".cache"), STAC_API=pgstac_api.url,
                                 MLMKIT_API_TOKEN=pgstac_api.token, AWS_ENDPOINT_URL=endpoint, **CREDENTIALS)
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket="my-bucket")
        if not (workspace / "described").exists():  # the publish page publishes what the validate page described
            run_page("how-to/validate.md", workspace, env)
        for name, langs in SERVICE_PAGES.items():
            run_page(name, workspace, env, langs)
        for verb, example in verb_examples().items():
            run_block(CodeBlock("python", example, 0), Path(f"mlmkit.{verb}"), workspace, env)
