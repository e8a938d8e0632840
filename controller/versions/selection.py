"""Which version a request selects, and what the stage then calls: the constants, the selector, and
a pure-Python reference of the generated templates' choice (:func:`select`, :func:`call_for`).

Selection rules (the generated templates and :func:`select` implement the same ones):

- header selector: the value of the header whose name equals :attr:`Selector.header` in any
  letter case (when a request holds several such names, the last one in the header map wins),
  with leading and trailing whitespace and control characters removed (Java ``trim``); compared
  with the stage's versions exactly (case-sensitive);
- media-type selector: the Accept header (name in any letter case) split on ``,``; in each media
  range, parameters (``;q=0.9``, ``; charset=utf-8``) are dropped, the rest trimmed and
  lower-cased; the first range of the form ``<media_type>.<version>+json`` with a non-empty
  version gives the version. The version is therefore lower-case: a stage that serves
  media-type versions must list them in lower case (:func:`version_problems` says so). Quality
  values are not weighed: the first matching range wins, even with ``q=0``. Wildcards,
  ``application/json`` and ranges of other types are ignored;
- no version found (header absent, empty, or no matching range): the stage's default
  (``$stageVariables.pointsmanDefaultVersion``, trimmed);
- the version is served when it equals one of the stage's versions
  (``$stageVariables.pointsmanVersions`` split on ``,``, each trimmed, empty entries ignored);
  otherwise the call is a DryRun of the stage's default alias (the first listed version when
  the default is not listed; :data:`UNKNOWN_ALIAS` when the stage lists none, which Lambda
  rejects: a 500, as for any stage with nothing to serve).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

STAGE_VERSIONS_VAR = "pointsmanVersions"
STAGE_DEFAULT_VAR = "pointsmanDefaultVersion"
ALIAS_PARAM = "alias"
VERSION_PARAM = "version"  # http-proxy: the path parameter of the versioned route the proxy calls
STAGE_NAME_VAR = "pointsmanStage"  # http-proxy: the stage's own name, so the proxy calls its own stage
UNKNOWN_ALIAS = "pointsman-unknown-version"
INVOCATION_TYPE_HEADER = "X-Amz-Invocation-Type"  # the integration request header Lambda reads the invocation type from
DRY_RUN = "DryRun"  # Lambda validates the call (and the caller's permission), runs nothing, answers 204

_HEADER_NAME = re.compile(r"[A-Za-z0-9!%&'*+.^_`|~-]+")  # an RFC 9110 token without '#' and '$' (VTL syntax)
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!&^_.+-]*")  # RFC 6838 without '#', '$'
_ALIAS_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_MEDIA_SUFFIX = "+json"


# ---------------------------------------------------------------------------------------------
# The selector
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """Where a request names its version: a header, or the Accept header's media type.

    Exactly one of the two is set. ``header`` is a header name (matched in any letter case);
    ``media_type`` is a vendor type such as ``application/vnd.acme`` (matched in any letter
    case; the version is lower-cased, see the module docstring). Both are restricted to
    characters that are safe inside a VTL string literal (no ``$``, ``#``, quotes, backslashes).
    """

    header: str | None = None
    media_type: str | None = None

    def __post_init__(self) -> None:
        if (self.header is None) == (self.media_type is None):
            raise ValueError("a version selector names exactly one of header or media_type")
        if self.header is not None and not _HEADER_NAME.fullmatch(self.header):
            raise ValueError(f"version header {self.header!r} is not a valid header name")
        if self.media_type is not None:
            if not _MEDIA_TYPE.fullmatch(self.media_type) or self.media_type.endswith((".", "+")):
                raise ValueError(f"version media type {self.media_type!r} is not a media type like application/vnd.acme")

    def describe(self) -> str:
        """One line for humans: ``header Version`` or ``Accept application/vnd.acme.<version>+json``."""
        if self.header is not None:
            return f"header {self.header}"
        return f"Accept {self.media_type}.<version>{_MEDIA_SUFFIX}"


# ---------------------------------------------------------------------------------------------
# The pure-Python reference
# ---------------------------------------------------------------------------------------------


def java_trim(text: str) -> str:
    """Java's ``String.trim``: strip characters up to U+0020 (space and controls) at both ends."""
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def _header(headers: Mapping[str, str], name: str) -> str:
    value = ""
    for key, item in headers.items():  # the last of several spellings wins, as in the template
        if key.lower() == name:
            value = item
    return value


def stage_versions(stage_variables: Mapping[str, str]) -> list[str]:
    """The versions a stage serves, from its :data:`STAGE_VERSIONS_VAR` stage variable."""
    versions = [java_trim(item) for item in (stage_variables.get(STAGE_VERSIONS_VAR) or "").split(",")]
    return [version for version in versions if version]


def stage_default(stage_variables: Mapping[str, str]) -> str:
    """The stage's default version (:data:`STAGE_DEFAULT_VAR`), trimmed; ``""`` when unset."""
    return java_trim(stage_variables.get(STAGE_DEFAULT_VAR) or "")


def requested_version(selector: Selector, headers: Mapping[str, str]) -> str:
    """The version a request names, before defaulting: ``""`` when it names none."""
    if selector.header is not None:
        return java_trim(_header(headers, selector.header.lower()))
    assert selector.media_type is not None
    prefix = selector.media_type.lower() + "."
    for media_range in _header(headers, "accept").split(","):
        media_type = java_trim(re.sub("(?s);.*", "", media_range)).lower()
        if len(media_type) > len(prefix) + len(_MEDIA_SUFFIX) and media_type.startswith(prefix) and media_type.endswith(_MEDIA_SUFFIX):
            return media_type[len(prefix) : -len(_MEDIA_SUFFIX)]
    return ""


def select(selector: Selector, headers: Mapping[str, str], stage_variables: Mapping[str, str]) -> tuple[str | None, str]:
    """What :func:`request_template` chooses: ``(version, requested)``.

    ``requested`` is the version the request names, or the stage default when it names none;
    ``version`` is ``requested`` when the stage serves it, else ``None`` (the call is a DryRun,
    :func:`call_for`, and the response template answers 400).
    """
    requested = requested_version(selector, headers) or stage_default(stage_variables)
    served = requested != "" and requested in stage_versions(stage_variables)
    return (requested if served else None), requested


def call_for(selector: Selector, headers: Mapping[str, str], stage_variables: Mapping[str, str]) -> tuple[str, str | None]:
    """What :func:`request_template` makes the integration call: ``(alias, invocation type)``.

    ``(version, None)`` when the stage serves the requested version (Lambda's default,
    RequestResponse); otherwise ``(alias, "DryRun")`` with the stage's default alias, the first
    listed version when the default is not listed, or :data:`UNKNOWN_ALIAS` when none is.
    """
    version, _ = select(selector, headers, stage_variables)
    if version is not None:
        return version, None
    listed = stage_versions(stage_variables)
    default = stage_default(stage_variables)
    fallback = default if default in listed else (listed[0] if listed else UNKNOWN_ALIAS)
    return fallback, DRY_RUN


def alias_for(selector: Selector, headers: Mapping[str, str], stage_variables: Mapping[str, str]) -> str:
    """The alias the integration calls (see :func:`call_for`)."""
    return call_for(selector, headers, stage_variables)[0]


def version_problems(selector: Selector, versions: Iterable[str], default: str | None = None) -> list[str]:
    """Why these versions (and default) cannot be served with this selector; empty when fine.

    A version is an alias name (``[A-Za-z0-9_-]``, 1-128 characters, not only digits, not
    :data:`UNKNOWN_ALIAS`); media-type versions must be lower case (the template lower-cases
    what it reads); the default must be one of the versions.
    """
    problems: list[str] = []
    listed = list(versions)
    for version in listed:
        if not _ALIAS_NAME.fullmatch(version) or version.isdigit():
            problems.append(f"version {version!r} is not a valid Lambda alias name (letters, digits, '-', '_'; not only digits)")
        elif version == UNKNOWN_ALIAS:
            problems.append(f"version {version!r} is reserved for requests naming a version the stage does not serve")
        elif selector.media_type is not None and version != version.lower():
            problems.append(f"version {version!r} must be lower case: the Accept media type is matched in lower case")
    if len(set(listed)) != len(listed):
        problems.append("versions are listed more than once")
    if default is not None and default not in listed:
        problems.append(f"default version {default!r} is not one of the versions {listed}")
    return problems


def stage_variables(versions: Iterable[str], default: str) -> dict[str, str]:
    """The two stage variables that expose ``versions`` on a stage, with ``default``."""
    return {STAGE_VERSIONS_VAR: ",".join(versions), STAGE_DEFAULT_VAR: default}
