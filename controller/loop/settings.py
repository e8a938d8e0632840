"""Settings of the long-running controller: flags, then POINTSMAN_* environment, then defaults.

Secrets (webhook secret, git token) come from the environment or from files
(``POINTSMAN_WEBHOOK_SECRET_FILE``, ``POINTSMAN_GIT_TOKEN_FILE``) and are ``SecretStr``,
so they never print in logs or reprs.
"""

from __future__ import annotations

import ipaddress
import os
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

YEAR = 365 * 24 * 3600.0


class StartupError(Exception):
    """The controller cannot start (state dir, listen address); a one-line message."""


class Mode(str, Enum):
    APPLY = "apply"  # self-heal: apply the plan every reconcile
    DETECT = "detect"  # report drift only, never write


class RunSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POINTSMAN_", extra="ignore", frozen=True)

    repo: str = Field(description="git URL (https, ssh, git://) or local path of the repository holding the spec")
    branch: str = Field("main", description="branch to follow")
    path: str = Field("desired_state", description="spec directory inside the repository")
    interval: float = Field(60.0, gt=0, le=YEAR, allow_inf_nan=False, description="seconds between reconciles")
    jitter: float = Field(0.1, ge=0, le=1, allow_inf_nan=False, description="random extra delay, as a fraction of the interval")
    poll_interval: float = Field(15.0, ge=0, le=YEAR, allow_inf_nan=False, description="seconds between cheap checks for a new commit (0: off)")
    mode: Mode = Mode.APPLY
    prune: bool = False
    allow_empty: bool = Field(False, description="an empty spec directory (no *.yaml files) is valid and manages nothing")
    state_dir: Path = Field(Path(".pointsman"), description="clone, history database, exported specs")
    listen: str = Field("127.0.0.1:8080", description="HTTP address for /healthz, /readyz, /metrics, /api/status, /webhook")
    concurrency: int = Field(8, ge=1, le=64)
    parallelism: int = Field(4, ge=1, le=64, description="targets reconciled at once (a spec split into targets)")
    lease_table: str | None = Field(None, description="DynamoDB table of target leases: replicas reconcile only the targets whose lease they hold")
    lease_duration: float = Field(15.0, gt=0, le=3600, allow_inf_nan=False, description="seconds a lease lasts unrenewed before another replica takes it")
    lease_renew_deadline: float = Field(
        10.0, gt=0, le=3600, allow_inf_nan=False, description="seconds without a renewal after which a replica stops working on a target"
    )
    lease_retry_period: float = Field(2.0, gt=0, le=3600, allow_inf_nan=False, description="seconds between rounds of renewing, taking and balancing leases")
    replica_id: str | None = Field(None, description="this replica's name in the lease table (default: hostname-pid-random)")
    quota_share: float = Field(
        0.5, gt=0, le=1, allow_inf_nan=False, description="share of each AWS quota bucket reads are paced to (writes use the full quota)"
    )
    history_keep: int = Field(1000, ge=1, description="runs kept in the history database")
    ready_after: float = Field(
        0.0, ge=0, le=YEAR, allow_inf_nan=False, description="a reconcile must have finished within this many seconds for /readyz (0: 3 intervals)"
    )
    webhook_secret: SecretStr | None = None
    webhook_secret_file: Path | None = None
    git_token: SecretStr | None = None
    git_token_file: Path | None = None
    ui_token: SecretStr | None = None  # the status page's "Reconcile now" (POST /reconcile) needs it
    ui_token_file: Path | None = None
    ui_read_token: SecretStr | None = None  # when set, reading the page, /runs, /api/* and /metrics needs it too
    ui_read_token_file: Path | None = None
    notify_slack_url: SecretStr | None = None  # a Slack-compatible incoming webhook
    notify_webhook_url: str | None = None  # a generic JSON webhook
    notify_secret: SecretStr | None = None  # signs the generic webhook's body (X-Pointsman-Signature)
    status_url: str | None = None  # the status page's public address, linked from notifications
    git_ssh_key_file: Path | None = None
    events_queue: str | None = Field(None, description="SQS queue URL of CloudTrail events forwarded by EventBridge: console changes are reconciled at once")
    events_wait: float = Field(20.0, ge=0, le=20, allow_inf_nan=False, description="seconds one SQS long poll waits for events")
    events_ignore_principals: str = Field("", description="comma-separated IAM role or user ARNs whose events are Pointsman's own (besides its user agent)")
    rollout_poll: float = Field(30.0, gt=0, le=3600, allow_inf_nan=False, description="seconds between looks at the gates of a rollout in progress")
    ignore_alarms_at_start: bool = Field(False, description="start a rollout even while one of its gate alarms is in ALARM")
    # Guardrails (README "Guardrails"): checked before any write call.
    allow_protected: bool = Field(False, description="updates and deletions of resources declared with protect: true are allowed")
    max_changes: int | None = Field(None, ge=0, description="a plan of more actions is refused (None: no cap)")
    max_deletions: int | None = Field(None, ge=0, description="a plan of more deletions is refused (None: no cap)")

    @field_validator("notify_webhook_url", "status_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    @field_validator("events_queue")
    @classmethod
    def _queue_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or not parts.path.strip("/"):
            raise ValueError(f"events queue must be an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME), not {value!r}")
        return value

    @field_validator("repo")
    @classmethod
    def _local_repo_absolute(cls, value: str) -> str:
        # git resolves a relative local path against the mirror in the state dir, not the
        # directory Pointsman was started in: make an existing local path absolute.
        first_colon, first_slash = value.find(":"), value.find("/")
        scp_or_url = first_colon != -1 and (first_slash == -1 or first_colon < first_slash)
        if value and not scp_or_url and not os.path.isabs(value) and os.path.exists(value):
            return os.path.abspath(value)
        return value

    @field_validator("listen")
    @classmethod
    def _listen_shape(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"listen must be HOST:PORT with a port from 0 to 65535, not {value!r}")
        bare = host.strip("[]")
        if bare and all(c.isdigit() or c == "." for c in bare):
            try:
                ipaddress.IPv4Address(bare)
            except ValueError:
                raise ValueError(f"listen host {bare!r} is not an IPv4 address (in {value!r})") from None
        elif host.startswith("[") or ":" in bare:
            try:
                ipaddress.IPv6Address(bare)
            except ValueError:
                raise ValueError(f"listen host {bare!r} is not an IPv6 address (in {value!r})") from None
        return value

    @model_validator(mode="after")
    def _lease_timings(self) -> RunSettings:
        if not self.lease_retry_period < self.lease_renew_deadline < self.lease_duration:
            raise ValueError(
                f"lease timings: the retry period ({self.lease_retry_period:g} s) must be shorter than the renew deadline "
                f"({self.lease_renew_deadline:g} s), itself shorter than the lease duration ({self.lease_duration:g} s)"
            )
        return self

    @model_validator(mode="after")
    def _read_secret_files(self) -> RunSettings:
        for name in ("webhook_secret", "git_token", "ui_token", "ui_read_token"):
            file = getattr(self, f"{name}_file")
            if getattr(self, name) is None and file is not None:
                try:
                    secret = Path(file).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise ValueError(f"cannot read POINTSMAN_{name.upper()}_FILE {file}: {exc.strerror}") from None
                object.__setattr__(self, name, SecretStr(secret))
        return self

    def prepare_state_dir(self) -> Path:
        """Create the state dir if needed; a path that is a file, or cannot be created, is a ``StartupError``."""
        path = self.state_dir
        if path.exists() and not path.is_dir():
            raise StartupError(f"state dir {path} is not a directory (--state-dir / POINTSMAN_STATE_DIR)")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"cannot create state dir {path}: {exc.strerror or exc}") from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise StartupError(f"state dir {path} is not writable")
        return path

    @property
    def listen_address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)

    @property
    def ready_window(self) -> float:
        return self.ready_after or 3 * self.interval * (1 + self.jitter) + 30

    @property
    def repo_display(self) -> str:
        return redact_url(self.repo)


def redact_url(url: str) -> str:
    """Drop any user:password@ from a URL so it can be logged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc or not parts.scheme or parts.scheme == "ssh":
        return url  # nothing secret: local paths, scp-style and ssh:// user names
    host = parts.netloc.rpartition("@")[2]  # keeps [IPv6] brackets and the port as written
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
