"""``pointsman status``: the running controller's state, for a terminal (from its /api/status).

``--wait STATE`` polls until a run that started after the command has finished and the state
is STATE (so a script never reads the state from before the change it made).

A spec split into targets: a line per target after the overall state, each drift, healed,
rollout and route line led by its target; ``--target NAME`` shows that target alone (the
document as if it were the only one: its state, last run, drift...), and ``--wait`` then waits
on that target's state.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from controller.loop.history import parse_iso
from controller.views.values import change, text_lines
from controller.views.words import ARROW, actor_words, noun, outcome_words, plural, short_sha, state_words, status_words, trigger_words
from controller.web.pages import ago

EXIT_OK, EXIT_ERROR, EXIT_DRIFT = 0, 1, 2
STATES = ("in_sync", "drifted", "rolling_out", "healing", "reconciling", "error", "starting")


class StatusError(Exception):
    """The controller cannot be asked (not running, not Pointsman); one line."""


def fetch(url: str, timeout: float = 5.0) -> dict[str, Any]:
    target = url.rstrip("/") + "/api/status"
    # A controller whose page needs POINTSMAN_UI_READ_TOKEN: the same variable here sends it.
    token = os.environ.get("POINTSMAN_UI_READ_TOKEN") or ""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(target, headers=headers), timeout=timeout) as response:
            document = json.loads(response.read(32 << 20))  # the managed resources of a large estate included
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise StatusError(f"{target}: HTTP 401: the controller needs its read token: set POINTSMAN_UI_READ_TOKEN") from None
        raise StatusError(f"{target}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StatusError(f"cannot reach the controller at {url}: {reason} (is `pointsman run` listening there? see --url)") from None
    except ValueError:
        raise StatusError(f"{target} did not answer JSON: is this a Pointsman controller?") from None
    if not isinstance(document, dict) or "state" not in document:
        raise StatusError(f"{target} is not a Pointsman status document (no 'state'): is the controller older than this command?")
    return document


def _ui_token(what: str) -> str:
    """The controller's UI token, from POINTSMAN_UI_TOKEN or the file POINTSMAN_UI_TOKEN_FILE names."""
    token = os.environ.get("POINTSMAN_UI_TOKEN") or ""
    if not token and os.environ.get("POINTSMAN_UI_TOKEN_FILE"):
        try:
            with open(os.environ["POINTSMAN_UI_TOKEN_FILE"], encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as exc:
            raise StatusError(f"cannot read POINTSMAN_UI_TOKEN_FILE: {exc.strerror or exc}") from None
    if not token:
        raise StatusError(f"{what} needs the controller's UI token: set POINTSMAN_UI_TOKEN (or POINTSMAN_UI_TOKEN_FILE)")
    return token


def _ui_post(url: str, path: str, fields: dict[str, Any] | None, what: str, refused: str, timeout: float) -> None:
    """POST ``path`` to the controller as the status page's buttons do (the UI token as a Bearer,
    JSON in and out). ``refused`` starts the StatusError of an HTTP error (its JSON ``error`` follows)."""
    token = _ui_token(what)
    body = json.dumps(fields).encode() if fields is not None else b""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}  # not a form: the answer is JSON
    request = urllib.request.Request(url.rstrip("/") + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(1 << 16)
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read(1 << 16)).get("error") or exc.reason
        except (ValueError, AttributeError, OSError):
            detail = exc.reason
        raise StatusError(f"{refused}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StatusError(f"cannot reach the controller at {url}: {reason} (is `pointsman run` listening there? see --url)") from None


def rollout_control(url: str, alias: str, action: str, timeout: float = 10.0, target: str | None = None) -> str:
    """POST /rollout with the UI token: ``action`` (abort, promote, retry) on ``alias``'s rollout
    (in ``target``, of a spec split into targets) at the controller's next run, started now. The
    one line to print, or StatusError."""
    fields = {"alias": alias, "action": action} | ({"target": target} if target else {})
    of = f"{alias} in {target}" if target else alias
    _ui_post(url, "/rollout", fields, "a rollout control", f"{action} of {of} refused", timeout)
    status = f"`pointsman status --target {target}`" if target else "`pointsman status`"
    return f"{action} of {of}'s rollout asked for: the controller runs it now ({status} shows the outcome)"


ENTRIES = ("drift", "managed", "routes", "rollouts", "healed")  # lists whose entries name their target


def only_target(s: dict[str, Any], name: str) -> dict[str, Any]:
    """The status document of a spec split into targets as that of target ``name`` alone: its
    state, last run, applied commit and error, its entries of drift, managed, routes, rollouts
    and healed, its warnings (without their ``NAME: ``), and ``targets`` of its one row.
    StatusError when the controller has no targets, or none of that name."""
    targets = s.get("targets")
    if targets is None:
        raise StatusError(f"--target {name}: this controller reconciles a single spec, not targets")
    target = next((t for t in targets if t.get("name") == name), None)
    if target is None:
        known = ", ".join(str(t.get("name")) for t in targets) or "none"
        raise StatusError(f"no target {name!r} at this controller; its targets: {known}")
    out = dict(s) | {key: [e for e in s.get(key) or [] if e.get("target") == name] for key in ENTRIES}
    last = target.get("last_run")
    out |= {
        "state": target["state"],
        "state_reason": target.get("state_reason", ""),
        "applied_commit": target.get("applied_commit"),
        "last_run": last,
        "last_error": target.get("error"),
        "drift_found_by_last_run": (last or {}).get("drift_count", 0),
        "in_sync": None if last is None else target["state"] == "in_sync",
        "warnings": [w.removeprefix(f"{name}: ") for w in s.get("warnings") or [] if w.startswith(f"{name}: ")],
        "targets": [target],
    }
    return out


def _target_line(t: dict[str, Any], leases: bool) -> str:
    """A target in one line: name, account and Region, state, who holds it, its drift."""
    where = "/".join(str(v) for v in (t.get("account_id"), t.get("region")) if v) or "account and Region not set"
    if t.get("holder"):
        held = f"held by {t['holder']}" + (" (here)" if t.get("here") else "")
    else:
        held = "held by nobody" if leases else ("reconciled here" if t.get("here") else "not reconciled here")
    n = int(t.get("drift_count") or 0)
    drift = f"{plural(n, 'resource')} {noun(n, 'differs')}" if n else "no drift"
    error = f"; error: {t['error']}" if t.get("error") else ""
    return f"  {t['name']} ({where}): {state_words(t['state'])}, {held}, {drift}{error}"


def render(s: dict[str, Any]) -> str:
    targets = s.get("targets")
    several = targets is not None and len(targets) > 1

    def of(entry: dict[str, Any]) -> str:
        """A line's lead: its target's name, in a document of several targets."""
        return f"{entry['target']}: " if several and entry.get("target") else ""

    lines = [f"{state_words(s['state'])}: {s.get('state_reason', '')}"]
    if targets is not None:
        leases = bool(s.get("replica"))
        lines.append(f"Targets ({len(targets)}):")
        lines.extend(_target_line(t, leases) for t in targets)
        replica = s.get("replica")
        if replica:
            holds = ", ".join(replica.get("holds") or [])
            lines.append(f"  replica {replica['id']} " + (f"holds {holds}" if holds else "is a standby: it holds no target"))
    lines.append(f"  following {s['repo']} branch {s['branch']}, path {s['path']}, mode {s['mode']}{' with prune' if s.get('prune') else ''}")
    managed = s.get("managed") or []
    if managed:
        kinds: dict[str, int] = {}
        for m in managed:
            kinds[m["kind"]] = kinds.get(m["kind"], 0) + 1
        differ = sum(1 for m in managed if m.get("status") in ("differs", "missing"))
        by_kind = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
        lines.append(f"  manages {plural(len(managed), 'resource')}: {by_kind}" + (f" ({differ} {noun(differ, 'differs')} from git)" if differ else ""))
    commits = s.get("commits") or {}
    for label, key in (("applied" if s["mode"] == "apply" else "desired", "desired"), ("newest", "head")):
        c = commits.get(key)
        if c and (key == "desired" or c["sha"] != (commits.get("desired") or {}).get("sha")):
            committed = parse_iso(c.get("time"))
            age = f", {ago(time.time() - committed)} ago" if committed is not None else ""
            bad = " (invalid, not applied)" if key == "head" and s.get("head_valid") is False else ""
            lines.append(f"  {label} commit {short_sha(c['sha'])} {c.get('subject', '')!r} by {c.get('author') or '?'}{age}{bad}")
    last = s.get("last_run")
    if last:
        lead = f"of {last['target']} " if several and last.get("target") else ""
        lines.append(f"  last run {lead}#{last['id']}: {status_words(last['status'])} ({trigger_words(last['trigger'])}), {ago(last.get('age_s'))} ago")
    if s.get("running"):
        lines.append(f"  running now: {trigger_words(s['running']['trigger'])}")
    if s.get("next_run_in_s") is not None:
        lines.append(f"  next run in {ago(s['next_run_in_s'])}")
    for e in s.get("spec_errors") or []:
        lines.append(f"  spec error: {e}")
    if s.get("last_error") and s["state"] == "error":
        lines.append(f"  error: {s['last_error']}")
    drift = s.get("drift") or []
    if drift:
        lines.append(f"Drift ({plural(len(drift), 'resource')}):")
        doing = "would do:" if s["mode"] == "detect" else ARROW  # detect mode plans and never applies
        for d in drift:
            actions = ", ".join(f"{a['operation']} ({outcome_words(a['outcome'])})" for a in d.get("actions") or [])
            since = f", since {_ago(d['first_seen'], s)} ago" if d.get("first_seen") else ""
            lines.append(f"  {of(d)}{d['resource']}  [{d['status']}{since}]" + (f"  {doing} {actions}" if actions else ""))
            for c in d.get("changes") or []:
                lines.extend(text_lines(change(str(c["field"]), c["live"], c["desired"]), "      ", text_up_to=1))
            if d.get("actor"):
                lines.append(f"      changed by {actor_words(d['actor'])} ({d['actor'].get('event')}, {_ago(d['actor'].get('event_time'), s)} ago)")
    healed = s.get("healed") or []
    if healed:
        lines.append(f"Healed in the last hour ({plural(len(healed), 'resource')}):")
        for h in healed:
            who = f" changed by {actor_words(h['actor'])}" if h.get("actor") else ""
            lines.append(f"  {of(h)}{h['resource']}  [{h['status']}]{who}, healed by run #{h['run']} {_ago(h['healed_at'], s)} ago")
            for c in h.get("changes") or []:
                lines.extend(text_lines(change(str(c["field"]), c["live"], c["desired"]), "      ", text_up_to=1))
    rollouts = s.get("rollouts") or []
    if rollouts:
        lines.append(f"Rollouts ({len(rollouts)}):")
        lines.extend(f"  {of(r)}{r['line']}" for r in rollouts)
    changed = [r for r in s.get("routes") or [] if r.get("differs")]
    if changed:
        lines.append(f"Routing ({plural(len(changed), 'route')} {noun(len(changed), 'differs')} from git):")
        lines.extend(f"  {of(r)}{r['text']}" for r in changed)
    warnings = s.get("warnings") or []
    if warnings:
        lines.append(f"Warnings ({len(warnings)}; not drift, apply does not change them):")
        lines.extend(f"  ! {w}" for w in warnings)
    return "\n".join(lines)


def _ago(when: Any, s: dict[str, Any]) -> str:
    """How long before the document's ``now`` an ISO time was: ``13 s``, ``4 min``."""
    then, now = parse_iso(when), parse_iso(s.get("now"))
    return ago(now - then) if then is not None and now is not None else "?"


def exit_code(s: dict[str, Any]) -> int:
    if s["state"] == "error":
        return EXIT_ERROR
    return EXIT_DRIFT if s.get("drift") or s["state"] in ("drifted", "rolling_out") else EXIT_OK


def wait(url: str, state: str, timeout: float, poll: float = 0.5, commit: str | None = None, target: str | None = None) -> dict[str, Any]:
    """Until a run started after now has finished with the controller in ``state`` (and, with
    ``commit``, reconciling that commit: a sha or a prefix of one). With ``target``: a run of
    that target, and its state; the document returned is that target's (``only_target``)."""
    started = time.time()
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    while True:
        try:
            last = fetch(url)
        except StatusError:
            if last is not None or time.monotonic() > deadline:
                raise
        if last is not None and target:
            last = only_target(last, target)  # an unknown target: no use waiting
        if last is not None:
            run = last.get("last_run") or {}
            # Times are to the second: a run that started in the second the command did counts as new.
            # A target's last run is a finished one; the run in flight may be another target's.
            fresh = (parse_iso(run.get("started")) or 0) >= int(started - 0.5) and (bool(target) or not last.get("running"))
            desired = ((last.get("commits") or {}).get("desired") or {}).get("sha") or ""
            if target:
                desired = last.get("applied_commit") or desired
            if fresh and last["state"] == state and (not commit or desired.startswith(commit.lower())):
                return last
        if time.monotonic() > deadline:
            seen = state_words(last["state"]) if last else "unknown"
            want = f"{state_words(state)} at commit {short_sha(commit)}" if commit else state_words(state)
            if target:
                want = f"{target} {want}"
            at = ((last or {}).get("commits") or {}).get("desired") or {}
            raise StatusError(
                f"timed out after {timeout:g}s waiting for {want} after a new run (the state is {seen}, at {short_sha(at.get('sha'), 'no commit')})"
            )
        time.sleep(poll)


def approve(url: str, run_id: int, timeout: float = 10.0, target: str | None = None) -> str:
    """``pointsman approve RUN``: POST /approve/RUN with the UI token (and ``target``, whose run
    RUN is, of a spec split into targets); the controller applies that run's waiting actions at
    once. The one line to print, or StatusError."""
    run = f"run #{run_id} of {target}" if target else f"run #{run_id}"
    _ui_post(url, f"/approve/{run_id}", {"target": target} if target else None, "approving", f"{run} not approved", timeout)
    follow = f"pointsman status --target {target} --wait in_sync" if target else "pointsman status --wait in_sync"
    return f"approved {run}: the controller applies its waiting actions now (`{follow}` to follow)"
