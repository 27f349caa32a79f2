"""Label post-processing after a classifier's network output, which the importer recognises and cuts.

skl2onnx ends an MLPClassifier with the class label (ArgMax, then ArrayFeatureExtractor over the class
list, Reshape, Cast) and the probabilities as a map per row (ZipMap), or as columns (Slice); for two
classes it first turns its one sigmoid unit into two probabilities with 1 - p and a Concat. torch users
append an ArgMax. None of it is the network: the model file outputs the network's last activation and
predicts the class by arg-max (or logit > 0 for one sigmoid unit), which is what these nodes compute.
Only nodes of those kinds, reading only what the network's output feeds, are cut; anything else after
the output is refused, naming it, since cutting it could change what the model predicts.
"""
from dataclasses import dataclass

import numpy as np

from orchestrator.errors import ModelFileError

from .onnx_graph import GraphView, Node
from .task import CLASSIFICATION, Task

TAIL_OPS = ("ArgMax", "ZipMap", "ArrayFeatureExtractor", "Sub", "Concat", "Slice")
SHAPING_OPS = ("Reshape", "Cast", "Identity", "Squeeze", "Unsqueeze", "Flatten")  # of labels, inside a tail


@dataclass(frozen=True)
class ClassList:
    source: str  # the node that names them
    labels: tuple[str | int, ...]


@dataclass(frozen=True)
class Tail:
    end: str  # the network's output tensor, where the tail starts
    nodes: tuple[Node, ...]
    dropped_outputs: tuple[str, ...]  # graph outputs the tail computes
    classes: tuple[ClassList, ...]

    def notes(self, task: Task) -> tuple[str, ...]:
        if not self.nodes:
            return ()
        cut = ", ".join(f"{n.op_type} {n.name!r}" for n in self.nodes)
        notes = [
            f"cut label post-processing after the network's output {self.end!r}: {cut}; graph outputs "
            f"{list(self.dropped_outputs)} are not in the model file, which outputs the network itself and "
            "predicts the class by arg-max"
        ]
        numbered = {found.labels for found in self.classes if all(isinstance(v, int) for v in found.labels)}
        for labels in sorted(numbered):
            named = ", ".join(f"{label} = {name!r}" for label, name in zip(labels, task.classes))
            notes.append(f"the graph's class labels are numbers; they are read as the task's classes in order: {named}")
        return tuple(notes)


def cut_tail(view: GraphView, end: str, chain: frozenset[int], task: Task) -> Tail:
    """The nodes after the network's output `end` (all but the `chain` node indices), each checked to be
    label post-processing; refuses any other, and class lists that contradict the task."""
    reached, nodes, classes = {end}, [], []
    for node in view.nodes:  # ONNX graphs are topologically sorted: producers come before readers
        if node.index in chain:
            continue
        data = view.data_inputs(node)
        if not data or not set(data) <= reached:
            outside = [name for name in data if name not in reached]
            raise node.refused(
                f"is not part of the MLP chain: it reads {outside or 'only constants'}, not what the network's "
                f"output {end!r} feeds; re-export the network alone"
            )
        if task.kind != CLASSIFICATION:
            raise node.refused(
                f"follows the network's output {end!r}, but a regression model has no label post-processing to "
                "cut; re-export the network alone"
            )
        listed = _check(node, view, end)
        if listed is not None:
            classes.append(_classes_fit(ClassList(node.label, listed), task))
        nodes.append(node)
        reached.update(name for name in node.outputs if name)
    missing = [name for name in view.outputs if name not in reached]
    if missing or not view.outputs:
        raise ModelFileError(f"the graph's outputs {list(view.outputs)} are not the end of its MLP chain ({end!r})")
    dropped = tuple(name for name in view.outputs if name != end)
    return Tail(end, tuple(nodes), dropped, tuple(classes))


def _check(node: Node, view: GraphView, end: str) -> tuple[str | int, ...] | None:
    """Refuses a node that is not label post-processing; returns the class labels it names, if any."""
    op = node.op_type
    if op == "ArgMax":
        if node.attrs.get("axis", 0) not in (1, -1):
            raise node.refused(f"takes the arg-max over axis {node.attrs.get('axis', 0)}, not over the classes")
        return None
    if op == "ZipMap":
        labels = node.attrs.get("classlabels_strings") or node.attrs.get("classlabels_int64s") or ()
        return tuple(_label(v) for v in labels)
    if op == "ArrayFeatureExtractor":
        listed = view.constant(node.inputs[0])
        if listed is None:
            raise node.refused("looks up the label in a computed list; only a constant class list is cut")
        return tuple(_label(v) for v in np.asarray(listed).reshape(-1))
    if op == "Sub":
        one = view.constant(node.inputs[0])
        if one is None or np.asarray(one).size != 1 or float(np.asarray(one).reshape(-1)[0]) != 1.0:
            raise node.refused("is not the 1 - p that turns one sigmoid output into two class probabilities")
        return None
    if op == "Concat":
        if node.attrs.get("axis") not in (1, -1):
            raise node.refused(f"concatenates over axis {node.attrs.get('axis')}, not the class columns")
        return None
    if op == "Slice" or op in SHAPING_OPS:
        return None
    raise node.refused(
        f"follows the network's output {end!r} and is not label post-processing the importer cuts "
        f"({', '.join(TAIL_OPS + SHAPING_OPS)}); re-export the network alone"
    )


def _classes_fit(found: ClassList, task: Task) -> ClassList:
    if len(found.labels) != len(task.classes):
        raise ModelFileError(
            f"the graph's classes {list(found.labels)} ({found.source}) are {len(found.labels)}; the task has "
            f"{len(task.classes)}: {list(task.classes)}"
        )
    named = [label for label in found.labels if isinstance(label, str)]
    if named and tuple(found.labels) != task.classes:
        raise ModelFileError(
            f"the graph's classes {list(found.labels)} ({found.source}) are not the task's {list(task.classes)} in "
            "that order; the network's output columns follow the graph's order, so the field table's label "
            "categories must list the same classes in the same order"
        )
    return found


def _label(value) -> str | int:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, (np.integer, int)):
        return int(value)
    return str(value)
