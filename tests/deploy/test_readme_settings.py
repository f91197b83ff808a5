"""Every environment variable the settings read is in the README's "Production" section."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READERS = {"env_str", "env_bool", "env_int", "env_float", "env_list", "env_choice"}
# Read by Django's own entry points, not a setting of ours.
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}


def variables_read() -> dict[str, str]:
    """NAME -> the file that reads it, for every env_*("NAME"), os.environ.get("NAME"),
    os.getenv("NAME") and os.environ["NAME"] under config/."""
    found = {}
    for path in sorted((ROOT / "config").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            name = None
            if isinstance(node, ast.Call) and node.args:
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
                if called in READERS or (called, receiver) in (
                    ("get", "os.environ"),
                    ("getenv", "os"),
                    ("setdefault", "os.environ"),
                ):
                    name = node.args[0]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                name = node.slice
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                found.setdefault(name.value, path.name)
    return {k: v for k, v in found.items() if k not in NOT_SETTINGS and k.isupper()}


def production_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Production")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_scan_finds_the_settings():
    names = variables_read()
    assert {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "FLOWS_ENGINE_ENABLED"} <= set(names)


def test_every_variable_the_settings_read_is_in_the_production_section():
    section = production_section()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    missing = {name: path for name, path in variables_read().items() if name not in documented}
    assert not missing, f"README.md's Production section does not list: {missing}"
