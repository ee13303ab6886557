"""graft: neural-network surgery from Python.

Read a trained network from ONNX, change its structure without breaking
it, and write it back::

    import graft
    m = graft.load("model.onnx")
    print(m.summary())
    m.prune(ratio=0.5, scope="layer")          # or params=..., macs=...
    m.resize("conv3", +16)                      # every coupled vertex follows
    y = m(x)                                    # NumPy in, NumPy out
    m.save("pruned.onnx")                       # same input/output names, opset

The planner chooses which neurons are kept, by magnitude or by scores you
compute yourself (``utility={"conv3": scores}``, one score per neuron).
Every error derives from :class:`GraftError`, names its culprit in its
message and carries it as ``culprit`` (the vertex, node, tensor or file
it names first).
"""

from ._graft import (
    DataError,
    GraftError,
    GraphError,
    Model,
    ModelError,
    OnnxError,
    Patch,
    Plan,
    PlanError,
    load,
    plan,
)

__all__ = [
    "DataError",
    "GraftError",
    "GraphError",
    "Model",
    "ModelError",
    "OnnxError",
    "Patch",
    "Plan",
    "PlanError",
    "load",
    "plan",
]
