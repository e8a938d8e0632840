"""The spec's git repository: clone once into the state dir, fetch each tick, export exact commits.

Authentication never lands in a URL, a log line or .git/config: an https token goes in an
``http.extraHeader`` passed through git's environment (GIT_CONFIG_*), an ssh key through
GIT_SSH_COMMAND.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import posixpath
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

from controller.loop.history import iso
from controller.loop.settings import redact_url


class GitSourceError(Exception):
    """A foreseeable git failure, with a one-line message."""


class UnsafeSpecTree(Exception):
    """A commit whose spec directory holds a symlink leading out of it: an invalid commit.

    ``problems`` has one message per link, naming it as in the repository.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass
class GitSource:
    url: str
    branch: str
    workdir: Path  # bare mirror lives here
    token: str | None = None
    ssh_key_file: Path | None = None
    timeout: float = 60.0

    def _env(self) -> dict[str, str]:
        env = {"GIT_TERMINAL_PROMPT": "0"}
        if self.token:
            basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
            env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader", "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"})
        if self.ssh_key_file:
            env["GIT_SSH_COMMAND"] = f"ssh -i {self.ssh_key_file} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o BatchMode=yes"
        return env

    def _fail(self, what: str, exc: Exception) -> GitSourceError:
        detail = ""
        if isinstance(exc, git.GitCommandError):
            lines = [line.strip().removeprefix("stderr: ").strip("'").strip() for line in str(exc.stderr or "").splitlines()]
            lines = [line for line in lines if line]
            causes = [line.split(":", 1)[1].strip() for line in lines if line.startswith(("fatal:", "error:"))]
            detail = "; ".join(causes) if causes else (lines[-1] if lines else f"exit {exc.status}")
        else:
            detail = str(exc)
        if self.token:
            detail = detail.replace(self.token, "***")
        return GitSourceError(f"git {what} {redact_url(self.url)} failed: {detail}")

    def _repo(self) -> git.Repo:
        if (self.workdir / "HEAD").exists():
            repo = git.Repo(self.workdir)
            if repo.remotes and repo.remotes.origin.url != self.url:  # --repo changed between runs
                with repo.config_writer() as cfg:
                    cfg.set_value('remote "origin"', "url", self.url)
            return repo
        self.workdir.mkdir(parents=True, exist_ok=True)
        repo = git.Repo.init(self.workdir, bare=True)
        with repo.config_writer() as cfg:
            cfg.set_value('remote "origin"', "url", self.url)
        return repo

    def fetch(self) -> str:
        """Fetch the branch; return the exact commit fetched."""
        repo = self._repo()
        ref = f"refs/remotes/origin/{self.branch}"
        try:
            with repo.git.custom_environment(**self._env()):
                repo.git.fetch("origin", f"+refs/heads/{self.branch}:{ref}", "--prune", "--no-tags", kill_after_timeout=self.timeout)
            return repo.git.rev_parse(ref).strip()
        except (git.GitCommandError, ValueError) as exc:
            raise self._fail("fetch", exc) from None

    def remote_head(self) -> str | None:
        """The branch's commit on the remote, without fetching objects (cheap poll)."""
        repo = self._repo()
        try:
            with repo.git.custom_environment(**self._env()):
                out = str(repo.git.ls_remote("origin", f"refs/heads/{self.branch}", kill_after_timeout=self.timeout))
        except git.GitCommandError as exc:
            raise self._fail("ls-remote", exc) from None
        return out.split()[0] if out.strip() else None

    def export(self, commit: str, path: str, target_root: Path) -> Path:
        """Write ``path`` of ``commit`` under ``target_root`` and return that directory."""
        path = path.strip("/") or "."
        target = target_root / f"{commit}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"
        spec_dir = target / path
        if target.exists():
            return spec_dir
        repo = self._repo()
        tmp = target_root / f".{target.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            stream = io.BytesIO()
            repo.archive(stream, commit, path=None if path == "." else path, format="tar")
        except git.GitCommandError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            stderr = str(exc.stderr or "")
            if "did not match any files" in stderr or "pathspec" in stderr:
                tmp.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
                return spec_dir  # absent: the caller reports that the commit has no spec
            raise self._fail("archive", exc) from None
        stream.seek(0)
        try:
            with tarfile.open(fileobj=stream) as tar:
                members = tar.getmembers()
                _refuse_links_leaving(members, path, lambda m: None)  # before anything is written
                tar.extractall(tmp, filter="data")
            # Lexically inside is not enough (a link through another link can climb out):
            # resolve each one as the filesystem now does.
            inside = os.path.realpath(tmp / path)
            _refuse_links_leaving(members, path, lambda m: _within(os.path.realpath(tmp / m.name), inside))
        except UnsafeSpecTree:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except tarfile.FilterError as exc:  # anything else the "data" filter refuses
            shutil.rmtree(tmp, ignore_errors=True)
            name = exc.tarinfo.name if exc.tarinfo is not None else path
            raise UnsafeSpecTree([f"{name}: {exc}"]) from None
        except tarfile.TarError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise self._fail("archive", exc) from None
        os.replace(tmp, target)
        return spec_dir

    def prune_exports(self, target_root: Path, keep: set[str]) -> None:
        if not target_root.exists():
            return
        for child in target_root.iterdir():
            if child.name.split("-", 1)[0] not in keep:
                shutil.rmtree(child, ignore_errors=True)

    def commit_info(self, commit: str) -> dict[str, Any] | None:
        """Short sha, subject, author and commit time (ISO-8601 UTC) of a fetched commit (None if unknown)."""
        try:
            c = self._repo().commit(commit)
            return {
                "sha": c.hexsha,
                "short": c.hexsha[:12],
                "subject": str(c.summary)[:200],
                "author": str(c.author.name or c.author.email or "")[:100],
                "time": iso(c.committed_date),
            }
        except (ValueError, git.BadName, git.GitCommandError, OSError):
            return None

    def commit_summary(self, commit: str) -> str:
        try:
            c = self._repo().commit(commit)
            return str(c.summary)
        except (ValueError, git.BadName):
            return ""


def _within(candidate: str, directory: str) -> bool:
    return candidate == directory or candidate.startswith(directory.rstrip("/") + "/")


def _refuse_links_leaving(members: list[tarfile.TarInfo], path: str, resolved_inside: Callable[[tarfile.TarInfo], bool | None]) -> None:
    """Raise ``UnsafeSpecTree`` naming every symlink whose target is outside ``path``.

    The target is judged as written (absolute, or ``..`` past ``path``), and then by
    ``resolved_inside`` (None: no opinion).
    """
    problems = []
    for member in members:
        if not member.issym():
            continue
        target = member.linkname
        if posixpath.isabs(target):
            inside = False
        else:
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), target))
            inside = joined != ".." and not joined.startswith("../") if path == "." else _within(joined, path)
        if inside and resolved_inside(member) is False:
            inside = False
        if not inside:
            problems.append(f"{member.name}: symlink to {target} leaves the spec directory")
    if problems:
        raise UnsafeSpecTree(problems)
