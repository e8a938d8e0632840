"""`pointsman demo`: the controller against an embedded AWS emulator and a local git repo.

Starts moto's server on 127.0.0.1, creates the example estate's pre-existing
infrastructure in it (and a hand-built API that no spec declares, for ``pointsman import``),
makes a git repository from desired_state/, prints the first plan and then runs the
controller, which applies it and keeps reconciling. The emulator starts empty each time, so
each start makes the repository and the history afresh too (the walkthrough works again from
step 1); ``--keep`` keeps them from the last start.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import sys
from pathlib import Path

import git

from controller.aws.clients import AwsClients
from controller.engine.pipeline import reconcile
from controller.loop.settings import RunSettings
from controller.spec import load_spec
from controller.views.report import render

DEMO_ENV = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _find_example_spec() -> Path:
    for candidate in (Path.cwd() / "desired_state", Path(__file__).resolve().parent.parent / "desired_state"):
        if candidate.is_dir():
            return candidate
    raise SystemExit("error: desired_state/ not found; run the demo from the project directory")


def prepare_workdir(workdir: Path, keep: bool) -> None:
    """Without ``keep``, remove the repository and the state an earlier start left in ``workdir``
    (only those two: nothing else there, and nothing outside it, is touched)."""
    if keep:
        return
    for name in ("repo", "state"):
        target = workdir / name
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)


def make_repo(repo_dir: Path, example: Path) -> tuple[git.Repo, bool]:
    """A git repo on branch main holding desired_state/ (reused if it exists)."""
    if (repo_dir / ".git").is_dir():
        return git.Repo(repo_dir), False
    repo_dir.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(repo_dir, initial_branch="main")
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "Pointsman demo")
        cfg.set_value("user", "email", "demo@localhost")
    shutil.copytree(example, repo_dir / "desired_state")
    repo.index.add([str(p.relative_to(repo_dir)) for p in (repo_dir / "desired_state").rglob("*.yaml")])
    repo.index.commit("Example estate: getreport and products v1/v2")
    return repo, True


def run_demo(args: argparse.Namespace) -> int:
    from moto.server import ThreadedMotoServer

    from controller.app import build_runner
    from controller.demo.emulator import fix_moto_gaps
    from controller.demo.estate import seed, seed_hand_built

    workdir = Path(args.workdir).resolve()
    if not _port_free(args.aws_port):
        print(f"error: port {args.aws_port} on 127.0.0.1 is in use; pass --aws-port", file=sys.stderr)
        return 1
    host, _, port = args.listen.rpartition(":")
    if not _port_free(int(port)):
        print(f"error: {args.listen} is in use; pass --listen 127.0.0.1:PORT", file=sys.stderr)
        return 1
    endpoint = f"http://127.0.0.1:{args.aws_port}"
    # The demo never talks to real AWS: the emulator endpoint and fake credentials win.
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(DEMO_ENV, AWS_ENDPOINT_URL=endpoint)
    os.environ.setdefault("POINTSMAN_RATE_LIMITS", "off")  # the embedded emulator has no AWS quotas to stay under

    fix_moto_gaps()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the emulator's request log is noise here
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.aws_port, verbose=False)
    server.start()
    try:
        seed(AwsClients())
        seed_hand_built(AwsClients())  # in no spec: README "Adopting an existing estate" imports it
        prepare_workdir(workdir, args.keep)
        repo_dir = workdir / "repo"
        _, created = make_repo(repo_dir, _find_example_spec())
        settings = RunSettings(
            repo=str(repo_dir),
            branch="main",
            path="desired_state",
            interval=args.interval,
            poll_interval=2,
            rollout_poll=2,  # a rollout's gates are read every 2 s (the walkthrough's canary pauses seconds, not minutes)
            mode=args.mode,
            state_dir=workdir / "state",
            listen=args.listen,
        )
        _banner(endpoint, repo_dir, settings, created)
        first = reconcile(load_spec(repo_dir / "desired_state"), AwsClients())
        if settings.mode.value == "apply":
            print("First plan (the controller applies it now):\n")
        else:
            print("First plan (detect mode: the controller reports it and applies nothing):\n")
        print(render(first, fmt="text", mode="plan"))
        print(flush=True)
        return build_runner(settings).run_forever()
    finally:
        server.stop()


def _banner(endpoint: str, repo_dir: Path, settings: RunSettings, created: bool) -> None:
    host, port = settings.listen_address
    if settings.mode.value == "apply":
        step3 = "stop this demo (Ctrl-C) and rerun it with --mode detect --keep: drift is reported, nothing is written"
    else:
        step3 = "stop this demo (Ctrl-C) and rerun it without --mode detect: the controller applies the spec and heals drift"
    aws = Path(sys.executable).parent / "aws"
    print(
        f"""
Pointsman demo
  status page : http://{host}:{port}/   (JSON: /api/status, /api/history, /metrics)
  AWS emulator: {endpoint}   (moto, seeded with the example estate's functions, APIs and domains,
                and the hand-built inventory-api to import: README "Adopting an existing estate")
  git repo    : {repo_dir}   ({"new, from desired_state/" if created else "reused (--keep): your commits and history kept"}; branch main)
  mode        : {settings.mode.value}, reconciling every {settings.interval:g}s and on every new commit

Try it from another terminal (see README, "Demo walkthrough"):
  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_DEFAULT_REGION=us-east-1
  # 1. promote: point prod of getreport at version 2 and commit
  sed -i 's/prod: {{version: "1"/prod: {{version: "2"/' {repo_dir}/desired_state/getreport.yaml
  git -C {repo_dir} commit -am "Promote getreport 2 to prod"
  {Path(sys.executable).parent / "pointsman"} status --url http://{host}:{port} --wait {"in_sync" if settings.mode.value == "apply" else "drifted"} --commit $(git -C {repo_dir} rev-parse HEAD)
  # 2. a console click: the controller reports it and {"heals it" if settings.mode.value == "apply" else "leaves it (detect mode)"}
  {aws} lambda update-alias --function-name getProducts --name prod --function-version 1
  {Path(sys.executable).parent / "pointsman"} status --url http://{host}:{port} --wait {"in_sync" if settings.mode.value == "apply" else "drifted"}
  # 3. {step3}
""",
        flush=True,
    )
