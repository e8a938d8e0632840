"""An explanation as text (one line a step, then the answer) or JSON."""

from __future__ import annotations

import json

from controller.views.explain.answers import Explanation

# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def render_text(explanation: Explanation) -> str:
    request = explanation.request
    lines = [f"{request.describe()}  [{explanation.view}]"]
    lines += [f"  -H '{name}: {value}'" for name, value in request.headers.items()]
    if request.body:
        lines.append(f"  --body {json.dumps(request.body)}")
    width = max((len(s.step) for s in explanation.steps), default=0)
    lines += [f"{s.step:<{width}}  {s.detail}" for s in explanation.steps]
    if explanation.served_by is not None:
        lines.append(f"=> 200-class: {explanation.served_by.describe()}")
    elif explanation.status < 300:
        lines.append(f"=> {explanation.status}-class: {explanation.reason}")
    else:
        body = explanation.body if isinstance(explanation.body, str) else json.dumps(explanation.body)
        lines.append(f"=> {explanation.status} {body}")
        lines.append(f"   reason: {explanation.reason}")
    return "\n".join(lines)


def render(explanation: Explanation, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(explanation.as_dict(), indent=2)
    return render_text(explanation)
