"""The one way Pointsman talks to AWS: a client factory that counts every call.

Honours the standard AWS environment (AWS_PROFILE, AWS_REGION / AWS_DEFAULT_REGION,
AWS_ENDPOINT_URL and the per-service AWS_ENDPOINT_URL_<SERVICE>), so the same command
runs against AWS or an emulator. Retries use botocore's standard (or adaptive) mode.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Mapping

import boto3
import botocore.config
import botocore.exceptions

READ_PREFIXES = ("Get", "List", "Describe")


def is_write(operation: str) -> bool:
    """``lambda.UpdateAlias`` -> True; ``apigateway.GetStages`` -> False."""
    return not operation.split(".", 1)[-1].startswith(READ_PREFIXES)


def write_calls(calls: Mapping[str, int]) -> dict[str, int]:
    """Only the write operations of a ``{"service.Operation": count}`` mapping."""
    return {op: n for op, n in calls.items() if is_write(op)}


class CallCounter:
    """Thread-safe count of API calls by ``service.Operation`` (one per request, not per retry)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, operation: str) -> None:
        with self._lock:
            self._counts[operation] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class AwsClients:
    """Creates and caches boto3 clients; every call made through them is counted."""

    def __init__(
        self,
        session: boto3.session.Session | None = None,
        *,
        region: str | None = None,
        profile: str | None = None,
        max_attempts: int = 5,
        retry_mode: str = "standard",
        counter: CallCounter | None = None,
    ) -> None:
        self.session = session or boto3.session.Session(profile_name=profile, region_name=region)
        self.counter = counter or CallCounter()
        self._config = botocore.config.Config(
            retries={"mode": retry_mode, "max_attempts": max_attempts},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=16,
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def region(self) -> str:
        region = self.session.region_name
        if not region:
            raise botocore.exceptions.NoRegionError()
        return region

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                client = self.session.client(service, config=self._config)
                counter = self.counter

                def _count(model: Any, **_: Any) -> None:
                    counter.add(f"{service}.{model.name}")

                client.meta.events.register("before-call.*.*", _count)
                self._clients[service] = client
            return self._clients[service]

    @property
    def lambda_(self) -> Any:
        return self.client("lambda")

    @property
    def apigateway(self) -> Any:
        return self.client("apigateway")


def error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def describe_error(exc: BaseException) -> str:
    """One line for a foreseeable AWS failure."""
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        op = getattr(exc, "operation_name", "")
        code = err.get("Code", "Error")
        message = err.get("Message", "")
        hint = ""
        if code in ("AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException"):
            hint = " (check credentials and the IAM policy: `pointsman iam-policy` prints what is needed)"
        elif code in ("Throttling", "ThrottlingException", "TooManyRequestsException"):
            hint = " (throttled; retries exhausted)"
        return f"{op}: {code}: {message}{hint}".strip()
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return f"cannot reach AWS endpoint {exc.kwargs.get('endpoint_url', '')}".strip()
    if isinstance(exc, botocore.exceptions.ConnectTimeoutError):
        return f"timed out connecting to AWS endpoint {exc.kwargs.get('endpoint_url', '')}".strip()
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return "no AWS region configured (set AWS_REGION or AWS_DEFAULT_REGION)"
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


AWS_ERRORS: tuple[type[BaseException], ...] = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
