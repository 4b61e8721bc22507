"""Every recipe's configs describe the run (README, "Recipe kit").

1. `conf/mini_<r>.yaml`, `conf/paper_<r>.yaml` (where the recipe has a paper) and
   `conf/tiny_<r>.yaml` declare the same keys, nested ones included: a key only one of them has
   is a setting the others silently take from code.
2. No stage reads a config key with a default that lives only in code: `hp.get("x", 3)`,
   `hp.get("x")` or `getattr(self.hparams, "x", 3)` where some config of the recipe lacks `x`.
   Declare the key, in every config, with its value.

The tests run per recipe and name the offending keys, so each recipe's owner sees their list.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted(path.name for path in (REPO / "egs").iterdir()
                 if (path / "run.sh").is_file() and (REPO / "speechlib" / "tasks" / path.name).is_dir())
HPARAM_NAMES = {"hp", "hparams"}


class _AnyTagLoader(yaml.SafeLoader):
    """Reads hyperpyyaml as plain YAML: `!ref`, `!new:` ... become their scalar or mapping."""


def _construct_any(loader, tag_suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_AnyTagLoader.add_multi_constructor("!", _construct_any)


def key_paths(mapping: dict, prefix: str = "") -> set[str]:
    """Every key, nested ones as `outer.inner`."""
    paths = set()
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        paths.add(path)
        if isinstance(value, dict):
            paths |= key_paths(value, path + ".")
    return paths


def configs(recipe: str) -> dict[str, dict]:
    conf = REPO / "egs" / recipe / "conf"
    return {path.name: yaml.load(path.read_text(), Loader=_AnyTagLoader) or {}
            for path in sorted(conf.glob("*.yaml")) if path.name.split("_")[0] in ("mini", "paper", "tiny")}


def code_defaults(recipe: str, root: Path = REPO) -> dict[str, list[str]]:
    """{key: ["file:line", ...]} for every config read with a code default in the recipe's package."""
    found: dict[str, list[str]] = {}
    for path in sorted((root / "speechlib" / "tasks" / recipe).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            key = node.args[0] if isinstance(node.func, ast.Attribute) else (node.args[1] if len(node.args) > 1 else None)
            receiver = None
            if isinstance(node.func, ast.Attribute) and node.func.attr == "get":
                receiver = node.func.value
            elif isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) == 3:
                receiver = node.args[0]
            if receiver is None or not isinstance(key, ast.Constant) or not isinstance(key.value, str):
                continue
            name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", None)
            if name in HPARAM_NAMES:
                found.setdefault(key.value, []).append(f"{path.relative_to(root)}:{node.lineno}")
    return found


@pytest.mark.parametrize("recipe", RECIPES)
def test_mini_paper_tiny_configs_declare_the_same_keys(recipe):
    found = configs(recipe)
    kinds = {name.split("_")[0] for name in found}
    assert {"mini", "tiny"} <= kinds, f"egs/{recipe}/conf needs mini_{recipe}.yaml and tiny_{recipe}.yaml"
    keys = {name: key_paths(config) for name, config in found.items()}
    every = set.union(*keys.values())
    missing = {name: sorted(every - have) for name, have in keys.items() if every - have}
    assert not missing, f"egs/{recipe}/conf: keys missing from some configs: {missing}"


@pytest.mark.parametrize("recipe", RECIPES)
def test_no_config_key_has_a_code_only_default(recipe):
    declared = [set(config) for config in configs(recipe).values()]
    everywhere = set.intersection(*declared) if declared else set()
    offending = {key: places for key, places in code_defaults(recipe).items() if key not in everywhere}
    assert not offending, (f"speechlib/tasks/{recipe} reads config keys with a default that lives only in "
                           f"code (declare them in every conf/*_{recipe}.yaml): {offending}")


def test_the_checks_can_fail(tmp_path):
    """The scanner finds `hp.get("x", 1)` and `getattr(self.hparams, "y", 2)`, not `d.get("z")`."""
    package = tmp_path / "speechlib" / "tasks" / "fake"
    package.mkdir(parents=True)
    (package / "stage.py").write_text("def f(hp, self, d):\n    return hp.get('x', 1), "
                                      "getattr(self.hparams, 'y', 2), d.get('z'), hp['w']\n")
    assert sorted(code_defaults("fake", tmp_path)) == ["x", "y"]
    assert key_paths({"a": 1, "b": {"c": 2, "d": {"e": 3}}}) == {"a", "b", "b.c", "b.d", "b.d.e"}
