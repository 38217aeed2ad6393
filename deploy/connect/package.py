"""Copies lambda_forwarder.py and contact-flow.json into template.yaml, so that the template
deploys on its own (`aws cloudformation deploy`, no S3 bucket, no packaging step for the
council). Run it after changing either file; `--check` only says whether the copies are
current (tests/deploy/test_template.py fails when they are not).

    python deploy/connect/package.py [--check]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "template.yaml"
# The block scalars that hold the copies, and what goes in each.
CODE_KEY = "ZipFile: |"
FLOW_KEY = "Content: !Sub |"


def flow_text() -> str:
    """The flow on one line: the template holds it twice and must stay under CloudFormation's
    51,200-byte limit for a template passed without a bucket."""
    flow = json.loads((HERE / "contact-flow.json").read_text(encoding="utf-8"))
    return json.dumps(flow, separators=(",", ":"), ensure_ascii=False) + "\n"


def render(template: str, code: str, flow: str) -> str:
    """template with every block scalar under CODE_KEY / FLOW_KEY replaced by code / flow."""
    lines = template.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        key = line.strip()
        if key not in (CODE_KEY, FLOW_KEY):
            continue
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        # Drop the old block: its lines are blank or indented deeper than the key.
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(indent)):
            i += 1
        for text in (code if key == CODE_KEY else flow).splitlines():
            out.append(f"{indent}{text}\n" if text else "\n")
        out.append("\n")
    return "".join(out)


def main(argv: list[str]) -> int:
    current = TEMPLATE.read_text(encoding="utf-8")
    code = (HERE / "lambda_forwarder.py").read_text(encoding="utf-8")
    wanted = render(current, code, flow_text())
    if "--check" in argv:
        if wanted != current:
            print("template.yaml is out of date: run python deploy/connect/package.py")
            return 1
        return 0
    TEMPLATE.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
