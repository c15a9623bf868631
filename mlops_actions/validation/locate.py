"""``file:line:col`` of a key in model.yaml, for messages that point at the declaration.

The provisional config loader does not keep locations yet; this walks PyYAML's
node tree (``yaml.compose``: no object construction, safe on untrusted text) to
find where a path such as ``validation.slices[2].where[0].column`` is written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import yaml

from mlops_actions.errors import Location

__all__ = ["YamlLocator"]


class YamlLocator:
    """Looks up locations in one YAML file; every lookup falls back to the file alone."""

    def __init__(self, path: str | Path, root: str | Path | None = None) -> None:
        """``root``: show the path relative to it (a repository root), as annotations want."""
        self.path = str(path)
        if root is not None:
            with contextlib.suppress(ValueError):
                self.path = Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
        try:
            text = Path(path).read_text(encoding="utf-8")
            self._root: yaml.Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
        except (OSError, yaml.YAMLError):
            self._root = None

    def locate(self, *keys: str | int) -> Location:
        """Location of the value at ``keys`` (mapping keys or list indexes); the deepest found."""
        node = self._root
        found: yaml.Node | None = None
        for key in keys:
            nxt = self._child(node, key)
            if nxt is None:
                break
            key_node, node = nxt
            found = key_node if isinstance(key, str) else node
        if found is None:
            return Location(self.path)
        mark = found.start_mark
        return Location(self.path, mark.line + 1, mark.column + 1)

    def path_text(self, keys: Sequence[str | int]) -> str:
        out = ""
        for k in keys:
            out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else k)
        return out

    @staticmethod
    def _child(node: yaml.Node | None, key: str | int) -> tuple[yaml.Node, yaml.Node] | None:
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    return k, v
        if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            item = node.value[key]
            return item, item
        return None
