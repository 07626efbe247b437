#!/usr/bin/env python3
"""Check perf/context/tasks.json against the captured fixtures; exit 1 on any problem.

For every task:
  * `server` is a fixture and `tool` is a tool that fixture lists (exact name);
  * `arguments` is valid against that tool's `inputSchema` (jsonschema, with the draft named by
    the schema's `$schema`, 2020-12 when it names none, and format checking on);
  * the `ask` does not give the tool name away (the name's words, split on `_`/`-`, never appear
    in a row in the ask);
  * the tool is findable: a plain BM25 search over every captured tool (server name, tool name,
    description and argument names) ranks it in the top FIND_TOP_K for the ask.
And for the file: ids t01..tNN in order, unique asks, exactly EXPECTED_TASKS tasks, every fixture
with at least MIN_PER_SERVER tasks.

    target/test-env/venv/bin/python perf/context/check_tasks.py [-v] [TASKS.json]

-v prints each task's search rank; TASKS.json defaults to perf/context/tasks.json.

(`pip install jsonschema` into that venv if it is missing.)
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from pathlib import Path

try:
    import jsonschema
    from jsonschema.validators import validator_for
except ImportError:
    sys.exit("check_tasks.py needs `jsonschema`: target/test-env/venv/bin/pip install jsonschema")

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
TASKS = HERE / "tasks.json"
EXPECTED_TASKS = 50
MIN_PER_SERVER = 3
FIND_TOP_K = 5
TASK_KEYS = {"id", "ask", "server", "tool", "arguments"}

STOP = set("""a an and any are as at be by can do does for from get give have how i if in into is it its
me my of on or over so that the their then this to up use using via what which who with you your
""".split())


def words(text: str) -> list[str]:
    """Lowercase words; camelCase, snake_case and kebab-case are split."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return re.findall(r"[a-z0-9]+", text.lower())


def stem(w: str) -> str:
    for suf, keep in (("ies", "y"), ("sses", "ss"), ("s", "")):
        if w.endswith(suf) and len(w) > len(suf) + 2 and not w.endswith("ss"):
            return w[: -len(suf)] + keep
    return w


def terms(text: str) -> list[str]:
    return [stem(w) for w in words(text) if w not in STOP]


def arg_names(schema: object, out: list[str]) -> list[str]:
    """Every property name in an input schema (nested ones too; `$defs` left out)."""
    if isinstance(schema, dict):
        for k, v in schema.items():
            if k in ("$defs", "definitions"):
                continue
            if k == "properties" and isinstance(v, dict):
                out.extend(v.keys())
            arg_names(v, out)
    elif isinstance(schema, list):
        for v in schema:
            arg_names(v, out)
    return out


class BM25:
    def __init__(self, docs: list[list[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.docs = [Counter(d) for d in docs]
        self.lens = [len(d) for d in docs]
        self.avg = sum(self.lens) / len(docs)
        df = Counter(t for d in self.docs for t in d)
        n = len(docs)
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.k1, self.b = k1, b

    def scores(self, query: list[str]) -> list[float]:
        out = []
        for d, ln in zip(self.docs, self.lens):
            s = 0.0
            for t in set(query):
                f = d.get(t, 0)
                if f:
                    s += self.idf[t] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * ln / self.avg))
            out.append(s)
        return out


def main() -> int:
    argv = sys.argv[1:]
    verbose = "-v" in argv
    paths = [a for a in argv if a != "-v"]
    tasks_path = Path(paths[0]) if paths else TASKS
    errors: list[str] = []

    fixtures = {}
    for path in sorted(FIXTURES.glob("*.json")):
        fx = json.loads(path.read_text())
        fixtures[fx["server"]] = {t["name"]: t for t in fx["tools"]}
    if not fixtures:
        sys.exit(f"no fixtures in {FIXTURES}: run perf/context/capture.py first")

    catalogue = [(srv, name) for srv, tools in fixtures.items() for name in tools]
    docs = []
    for srv, name in catalogue:
        tool = fixtures[srv][name]
        text = " ".join([srv, name, tool.get("title") or "", tool.get("description") or "",
                         *arg_names(tool.get("inputSchema", {}), [])])
        docs.append(terms(text))
    index = BM25(docs)

    tasks = json.loads(tasks_path.read_text())
    if not isinstance(tasks, list):
        sys.exit("tasks.json must be a JSON array")
    if len(tasks) != EXPECTED_TASKS:
        errors.append(f"expected {EXPECTED_TASKS} tasks, found {len(tasks)}")

    per_server: Counter[str] = Counter()
    asks: Counter[str] = Counter()
    ranks: list[int] = []
    for i, task in enumerate(tasks, 1):
        tid = task.get("id", f"#{i}") if isinstance(task, dict) else f"#{i}"
        if not isinstance(task, dict) or set(task) != TASK_KEYS:
            errors.append(f"{tid}: keys must be exactly {sorted(TASK_KEYS)}")
            continue
        if task["id"] != f"t{i:02d}":
            errors.append(f"{tid}: id out of sequence (expected t{i:02d})")
        srv, name, args, ask = task["server"], task["tool"], task["arguments"], task["ask"]
        asks[ask] += 1
        if srv not in fixtures:
            errors.append(f"{tid}: unknown server {srv!r} (fixtures: {', '.join(sorted(fixtures))})")
            continue
        per_server[srv] += 1
        tool = fixtures[srv].get(name)
        if tool is None:
            errors.append(f"{tid}: server {srv!r} has no tool {name!r}")
            continue
        if not isinstance(args, dict):
            errors.append(f"{tid}: arguments must be an object")
            continue

        schema = tool.get("inputSchema")
        if not isinstance(schema, dict):
            errors.append(f"{tid}: {srv}/{name} has no inputSchema object")
            continue
        cls = validator_for(schema, default=jsonschema.Draft202012Validator)
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            errors.append(f"{tid}: {srv}/{name} inputSchema is not a valid {cls.__name__} schema: {exc.message}")
            continue
        validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
        for err in sorted(validator.iter_errors(args), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in err.absolute_path) or "(root)"
            errors.append(f"{tid}: {srv}/{name} arguments invalid at {where}: {err.message}")

        name_words, ask_words = words(name), words(ask)
        n = len(name_words)
        if any(ask_words[j:j + n] == name_words for j in range(len(ask_words) - n + 1)):
            errors.append(f"{tid}: ask gives the tool name {name!r} away")

        scores = index.scores(terms(ask))
        target = catalogue.index((srv, name))
        rank = 1 + sum(1 for s in scores if s > scores[target])
        ranks.append(rank)
        if rank > FIND_TOP_K:
            best = sorted(range(len(scores)), key=lambda k: -scores[k])[:FIND_TOP_K]
            errors.append(f"{tid}: search ranks {srv}/{name} #{rank}; top {FIND_TOP_K}: "
                          + ", ".join(f"{catalogue[k][0]}/{catalogue[k][1]}" for k in best))
        if verbose:
            print(f"{tid} rank {rank:3d}  {srv}/{name}")

    for ask, c in asks.items():
        if c > 1:
            errors.append(f"ask used {c} times: {ask!r}")
    for srv in sorted(fixtures):
        if per_server[srv] < MIN_PER_SERVER:
            errors.append(f"fixture {srv!r} has {per_server[srv]} tasks (< {MIN_PER_SERVER})")

    n_tools = len(catalogue)
    if ranks:
        hits = {k: sum(r <= k for r in ranks) for k in (1, 3, 5)}
        print(f"{len(tasks)} tasks over {len(per_server)} fixtures ({n_tools} tools); "
              f"search hits@1 {hits[1]}, @3 {hits[3]}, @5 {hits[5]} of {len(ranks)}")
    if errors:
        print(f"FAILED: {len(errors)} problem(s)", file=sys.stderr)
        for e in errors:
            print("  " + e, file=sys.stderr)
        return 1
    print(f"{tasks_path.name} OK: every task names a captured tool, its arguments validate, and search finds it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
