"""Generate the chat-template name lists of the installed backends (schemas/backends/templates/*.json).

    python scripts/gen_templates.py [llamafactory] [axolotl]

Each list is read from the backend's own source in its environment (`ftr backend install NAME`):
- LLaMA-Factory: the `name=` of every `register_template(...)` call in `llamafactory/data/template.py`
  (parsed with `ast`, so the example in a docstring is not counted);
- Axolotl: the values of its `ChatTemplate` enum (`axolotl/utils/schemas/enums.py`), plus the
  `tokenizer_default_fallback_<name>` prefix its config schema also accepts.
Output: {"backend", "version", "key", "templates", "prefixes", "generated_by"}; `key` is the native key
the name is written under.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "schemas" / "backends" / "templates"

LOCATE = "import importlib.util, importlib.metadata as m; print(importlib.util.find_spec({mod!r}).origin); print(m.version({dist!r}))"  # noqa: E501
AXOLOTL = ("import importlib.metadata as m; from axolotl.utils.schemas.enums import ChatTemplate; "
           "print(m.version('axolotl')); print('\\n'.join(t.value for t in ChatTemplate))")


def _python(backend: str) -> str:
    sys.path.insert(0, str(ROOT))
    from ft_recipes import backends
    from ft_recipes.backends.envs import find_python

    python = find_python(backends.env_spec(backend))
    if python is None:
        raise SystemExit(f"{backend}: no environment; run `ftr backend install {backend}`")
    return str(python)


def _run(python: str, code: str) -> list[str]:
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True,
                          env={"AXOLOTL_DO_NOT_TRACK": "1", "PATH": "/usr/bin:/bin"})
    return done.stdout.split()


def registered_names(source: str) -> list[str]:
    """The ``name=`` of every ``register_template(...)`` call in ``source``, in order."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register_template":
            for kw in node.keywords:
                if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                    names.append(kw.value.value)
    return names


def llamafactory() -> dict:
    origin, version = _run(_python("llamafactory"), LOCATE.format(mod="llamafactory.data.template",
                                                                  dist="llamafactory"))
    names = registered_names(Path(origin).read_text(encoding="utf-8"))
    return {"backend": "llamafactory", "version": version, "key": "template", "templates": names,
            "prefixes": [], "generated_by": "scripts/gen_templates.py from llamafactory/data/template.py"}


def axolotl() -> dict:
    version, *names = _run(_python("axolotl"), AXOLOTL)
    return {"backend": "axolotl", "version": version, "key": "chat_template", "templates": names,
            "prefixes": ["tokenizer_default_fallback_"],
            "generated_by": "scripts/gen_templates.py from axolotl.utils.schemas.enums.ChatTemplate"}


def main(argv: list[str]) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for backend in argv or ("llamafactory", "axolotl"):
        data = {"llamafactory": llamafactory, "axolotl": axolotl}[backend]()
        path = OUT / f"{backend}-{data['version']}.json"
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"{path.relative_to(ROOT)}: {len(data['templates'])} templates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
