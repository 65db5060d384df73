"""The layer rules of the design card, checked on the source: a layer imports only from below."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Each layer folder, the streamlet layers it may import, and the third-party roots it may not.
LAYERS: dict[str, tuple[set[str], set[str]]] = {
    "codec": (set(), {"trio"}),
    "actors": ({"codec"}, set()),
    "runtime": ({"codec", "actors"}, set()),
}


def _imported_modules(path: Path, root: Path = REPO) -> list[str]:
    """Absolute module names imported by one file under `root`, relative imports resolved."""
    layer = path.relative_to(root).parts[0]
    package_parts = ["streamlet", layer, *path.relative_to(root / layer).parent.parts]
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append(module)
            found.extend(f"{module}.{alias.name}" for alias in node.names)
    return found


def _layer_files(layer: str) -> list[Path]:
    return sorted((REPO / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layer_imports_only_from_layers_below(layer: str) -> None:
    allowed, forbidden_roots = LAYERS[layer]
    files = _layer_files(layer)
    assert files, f"no modules found in {layer}/"
    violations = []
    for path in files:
        for module in _imported_modules(path):
            parts = module.split(".")
            if parts[0] == "streamlet" and len(parts) > 1:
                target = parts[1]
                if target in LAYERS and target != layer and target not in allowed:
                    violations.append(f"{path.relative_to(REPO)} imports {module}")
                if target not in LAYERS and target not in {layer}:
                    # the public facade sits above every layer
                    violations.append(f"{path.relative_to(REPO)} imports the facade {module}")
            if parts[0] in forbidden_roots:
                violations.append(f"{path.relative_to(REPO)} imports {module}")
    assert not violations, "layering broken:\n" + "\n".join(violations)


def test_layering_check_sees_a_violation(tmp_path: Path) -> None:
    """The scanner itself works: a relative import two levels up is resolved to its layer."""
    module = tmp_path / "codec" / "sub" / "probe.py"
    module.parent.mkdir(parents=True)
    module.write_text("from ...actors import actor\nfrom . import sibling\nimport trio\n")
    names = _imported_modules(module, root=tmp_path)
    assert "streamlet.actors" in names
    assert "streamlet.codec.sub.sibling" in names
    assert "trio" in names
