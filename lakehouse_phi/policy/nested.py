"""Nested columns (struct, array): leaf paths and the declared tree of a column.

A nested column declares its leaves under ``fields`` by a path relative to the column: ``.name`` is a struct
field, ``[]`` every element of an array (``[].given[]``: every element of ``given`` of every element). A reference
that must give one value per row (``derive``'s ``from``, a release column) may pick an element by index instead:
``address[0].postalCode``. This module only parses and builds trees; it imports neither pyarrow nor Spark.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakehouse_phi.policy import types

if TYPE_CHECKING:
    from lakehouse_phi.policy.model import ColumnSpec, LeafSpec

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_STEP = re.compile(rf"\.({_NAME})|\[(\d*)\]")


@dataclass(frozen=True)
class Field:
    """``.name``: a struct field."""

    name: str

    def text(self) -> str:
        return f".{self.name}"


@dataclass(frozen=True)
class Each:
    """``[]``: every element of an array."""

    def text(self) -> str:
        return "[]"


@dataclass(frozen=True)
class Index:
    """``[N]``: one element of an array (0-based); a missing element is NULL."""

    i: int

    def text(self) -> str:
        return f"[{self.i}]"


Step = Field | Each | Index


def parse_path(text: str, *, indexes: bool = False) -> tuple[Step, ...]:
    """``[].line[]`` -> ``(Each(), Field('line'), Each())``; ``ValueError`` saying what is allowed otherwise.

    Args:
        indexes: allow ``[N]`` (one element) besides ``[]`` (references that give one value per row only).
    """
    steps: list[Step] = []
    pos = 0
    if not text:
        raise ValueError("an empty path; write .name for a struct field, [] for every element of an array")
    while pos < len(text):
        m = _STEP.match(text, pos)
        if not m:
            raise ValueError(f"cannot read the path {text!r} at character {pos + 1}: a path is a sequence of .name "
                             "(a struct field) and [] (every element of an array), e.g. [].given[]")
        if m.group(1) is not None:
            steps.append(Field(m.group(1)))
        elif m.group(2) == "":
            steps.append(Each())
        elif indexes:
            steps.append(Index(int(m.group(2))))
        else:
            raise ValueError(f"the path {text!r} picks element [{m.group(2)}]; a field declaration covers every "
                             "element: write []")
        pos = m.end()
    return tuple(steps)


def path_text(steps: tuple[Step, ...]) -> str:
    return "".join(s.text() for s in steps)


def split_reference(ref: str) -> tuple[str, tuple[Step, ...]]:
    """``address[0].postalCode`` -> ``("address", (Index(0), Field("postalCode")))``; a plain column name gives
    no steps. ``ValueError`` for a reference that does not read as COLUMN followed by a path."""
    m = re.match(rf"^({_NAME})", ref)
    if not m:
        raise ValueError(f"cannot read {ref!r} as COLUMN or COLUMN followed by a path (address[0].postalCode)")
    rest = ref[m.end():]
    return m.group(1), (parse_path(rest, indexes=True) if rest else ())


def release_name(ref: str) -> str:
    """The column name a leaf reference is released under (risk, export): ``address[0].postalCode`` ->
    ``address_0_postalCode``; a plain column name is itself."""
    column, steps = split_reference(ref)
    return "_".join([column, *(s.name if isinstance(s, Field) else str(s.i) for s in steps if not isinstance(s, Each))])


# ---------------------------------------------------------------------------------------------------- trees
@dataclass
class Leaf:
    """A declared leaf: its path (``[].family``; ``""`` for a flat column) and its spec."""

    path: str
    spec: LeafSpec


@dataclass
class StructNode:
    fields: dict[str, Node] = field(default_factory=dict)


@dataclass
class ListNode:
    element: Node | None = None


Node = Leaf | StructNode | ListNode


def column_tree(name: str, col: ColumnSpec) -> Node:
    """The declared tree of a column: a :class:`Leaf` for a scalar or ``json`` column, ``ListNode(Leaf)`` for
    ``array<SCALAR>``, else the structure its ``fields`` paths describe. ``ValueError`` naming the path for paths
    that contradict each other or the column's type."""
    element = types.array_element(col.type)
    if element is not None:
        return ListNode(Leaf("[]", col))
    if col.type not in types.NESTED_TYPES:
        return Leaf("", col)
    root: Node = StructNode() if col.type == "struct" else ListNode(StructNode())
    for path, leaf in col.fields.items():
        steps = parse_path(path)
        _insert(root, steps, Leaf(path, leaf), col.type, path)
    return root


def _insert(root: Node, steps: tuple[Step, ...], leaf: Leaf, col_type: str, path: str) -> None:
    node = root
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        where = path_text(steps[:i]) or "the column"
        if isinstance(step, Field):
            if not isinstance(node, StructNode):
                raise ValueError(f"{path}: {where} is {_kind(node, col_type)}, so it has no field .{step.name}")
            if last:
                if step.name in node.fields:
                    raise ValueError(f"{path}: {path_text(steps)} is also the parent of other declared fields; "
                                     "declare either the whole subtree (type: json) or its leaves")
                node.fields[step.name] = leaf
                return
            child = node.fields.get(step.name)
            if child is None:
                child = ListNode() if isinstance(steps[i + 1], Each) else StructNode()
                node.fields[step.name] = child
            node = child
        else:  # Each
            if not isinstance(node, ListNode):
                raise ValueError(f"{path}: {where} is {_kind(node, col_type)}, not an array, so [] does not apply")
            if last:
                if node.element is not None:
                    raise ValueError(f"{path}: the elements of {where} are declared twice (as a leaf and as a "
                                     "structure)")
                node.element = leaf
                return
            if node.element is None:
                node.element = ListNode() if isinstance(steps[i + 1], Each) else StructNode()
            node = node.element
        if isinstance(node, Leaf):
            raise ValueError(f"{path}: {node.path} is declared as a leaf, so nothing can be declared below it")
    raise ValueError(f"{path}: the path ends on a structure; it must end on a leaf")  # pragma: no cover


def _kind(node: Node, col_type: str) -> str:
    return {StructNode: "a struct", ListNode: "an array", Leaf: "a leaf"}[type(node)]


def leaves(node: Node) -> list[Leaf]:
    """Every leaf of a tree, in declaration order."""
    if isinstance(node, Leaf):
        return [node]
    if isinstance(node, StructNode):
        return [lf for child in node.fields.values() for lf in leaves(child)]
    return leaves(node.element) if node.element is not None else []


def leaf_at(node: Node, steps: tuple[Step, ...]) -> Leaf | None:
    """The declared leaf a reference path reaches (``[0]`` matches a declared ``[]``), or ``None``."""
    for step in steps:
        if isinstance(step, Field) and isinstance(node, StructNode) and step.name in node.fields:
            node = node.fields[step.name]
        elif isinstance(step, (Each, Index)) and isinstance(node, ListNode) and node.element is not None:
            node = node.element
        else:
            return None
    return node if isinstance(node, Leaf) else None


def output_tree(node: Node, leaf_type: dict[str, str]) -> types.TypeTree:
    """The bronze type of a declared tree: each leaf by ``leaf_type[path]`` (its strategy's output type), the
    structure as declared (field order of the declaration)."""
    if isinstance(node, Leaf):
        return leaf_type[node.path]
    if isinstance(node, StructNode):
        return types.StructOf(tuple((n, output_tree(c, leaf_type)) for n, c in node.fields.items()))
    assert node.element is not None
    return types.ArrayOf(output_tree(node.element, leaf_type))


def label(column: str, path: str) -> str:
    """How a leaf is named in reasons and reports: ``address[].postalCode``."""
    return column + path


def leaf_type(tree: types.TypeTree, path: str) -> str:
    """The scalar type a leaf path reaches in a type tree (``[].value`` in ``array<struct<value:string>>`` ->
    ``string``); ``ValueError`` naming the path otherwise."""
    node = tree
    for step in parse_path(path):
        if isinstance(step, Field) and isinstance(node, types.StructOf):
            found = dict(node.fields).get(step.name)
            if found is None:
                raise ValueError(f"fields.{path}: the column's type has no field {step.name!r} there "
                                 f"(fields: {', '.join(n for n, _ in node.fields)})")
            node = found
        elif isinstance(step, Each) and isinstance(node, types.ArrayOf):
            node = node.element
        else:
            raise ValueError(f"fields.{path}: {step.text()} does not apply to {types.ddl(node)}")
    if not isinstance(node, str):
        raise ValueError(f"fields.{path}: reaches {types.ddl(node)}, not a leaf; name a leaf below it")
    return node
