"""docs/leaked-key.md, run as written: each ```sh block in bash, in order, with the
installed n8n-deploy, against a real local server standing in for n8n (the key is revoked
on it where the page says to revoke it in n8n)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from n8n_deploy.base.settings import resolve_settings
from n8n_deploy.store.lifecycle import open_database
from tests.fake_n8n import fake_server, n8n_like
from tests.helpers import add_key, add_server, installed_script, make_jwt

PAGE = Path(__file__).parents[1] / "docs" / "leaked-key.md"


def steps() -> list[tuple[int, str, int]]:
    """(step number, commands, expected exit status) for each block, in page order."""
    found, step = [], 0
    text = PAGE.read_text(encoding="utf-8")
    # A status marker goes right after the block it is about; move it onto the block.
    text = re.sub(r"```\n\n<!-- exit (\d+) -->\n", r"```EXIT\1\n", text)
    for match in re.finditer(r"^## (\d+)\.|```sh\n(.*?)```(?:EXIT(\d+))?", text, re.S | re.M):
        if match.group(1):
            step = int(match.group(1))
        else:
            found.append((step, match.group(2), int(match.group(3) or 0)))
    return found


def test_the_page_has_the_steps_the_procedure_needs() -> None:
    numbered = [step for step, _, _ in steps()]
    assert numbered == [1, 2, 4, 5]
    assert [status for _, _, status in steps()] == [0, 0, 4, 0]


@pytest.mark.e2e
def test_the_leaked_key_procedure_works_as_written(tmp_path: Path, data_dir: Path) -> None:
    old, new = make_jwt(exp_days=90, sub="leaked"), make_jwt(exp_days=90, sub="fresh")
    valid = {old, new}
    with fake_server(n8n_like(valid)) as server:
        database = open_database(resolve_settings())
        try:
            add_server(database, "Production", server.url)
            add_key(database, "prod_key", old, ["Production"])
        finally:
            database.dispose()
        script = Path(installed_script())
        env = {
            **os.environ,
            "PATH": f"{script.parent}{os.pathsep}{os.environ['PATH']}",
            "NEW_KEY": new,
            "N8N_DEPLOY_ACTOR": "incident-responder",
        }
        state = tmp_path / "state.sh"
        state.write_text("", encoding="utf-8")
        outputs = []
        for step, commands, expected in steps():
            if step == 4:
                valid.discard(old)  # step 3: revoked in n8n
            program = (
                f"source {state}\n{commands}\nstatus=$?\n"
                f"declare -p OLD_KEY > {state} 2>/dev/null || : > {state}\nexit $status\n"
            )
            run = subprocess.run(
                ["bash", "-c", program], env=env, capture_output=True, text=True, timeout=60
            )
            assert run.returncode == expected, (step, run.stdout, run.stderr)
            assert "Traceback" not in run.stderr
            outputs.append(run.stdout + run.stderr)
    everything = "\n".join(outputs)
    for secret in (old, new):
        assert secret not in everything and secret[-12:] not in everything
    history = outputs[-1]
    for kind in ("rotated", "deactivated", "deleted", "read", "incident-responder"):
        assert kind in history
