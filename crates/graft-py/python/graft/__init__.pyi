"""Type stubs of graft's Python package."""

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
Utility = Union[str, Dict[str, npt.NDArray[np.float64]]]
Data = Tuple[ArrayLike, ArrayLike]

class GraftError(Exception):
    """Every error graft raises derives from this."""

    culprit: Optional[str]
    """The vertex, node, tensor or file the error names first (None if none)."""

class PlanError(GraftError):
    """The planner found no sizes meeting the request."""

class GraphError(GraftError):
    """A structural edit or a name the graph refuses."""

class ModelError(GraftError):
    """A layer, a parameter or a tensor graft cannot take."""

class OnnxError(GraftError):
    """An ONNX file graft cannot read or a model it cannot write."""

class DataError(GraftError):
    """Arguments or arrays that do not fit the model."""

class Plan:
    """A plan of the size planner, not yet applied."""

    @property
    def changes(self) -> List[Dict[str, Any]]:
        """Per changed vertex: vertex, before, after, kept (int64 array of old
        indices kept), new (count) and order (old index, or -1 for new)."""
    @property
    def optimal(self) -> bool:
        """Whether the planner proved the plan optimal."""
    def to_json(self) -> str:
        """The plan as JSON."""

class Patch:
    """Edits a model commits together (Model.commit), or not at all."""

    def __init__(self) -> None: ...
    def insert(
        self, after: str, name: str, op: str = "identity", consumers: Optional[Sequence[str]] = None
    ) -> "Patch":
        """Insert a vertex after another (op: identity, relu, dense, conv3x3, batchnorm)."""
    def remove(self, vertex: str) -> "Patch": ...
    def remove_block(self, vertex: str) -> "Patch": ...
    def connect(self, src: str, dst: str, position: Optional[int] = None) -> "Patch": ...
    def disconnect(self, src: str, dst: str, nth: int = 0) -> "Patch": ...
    def __len__(self) -> int: ...

class Model:
    """A network graft can change, read from ONNX."""

    @property
    def inputs(self) -> List[str]: ...
    @property
    def outputs(self) -> List[str]: ...
    @property
    def input_shapes(self) -> List[List[int]]: ...
    @property
    def opset(self) -> int: ...
    @property
    def vertices(self) -> List[Dict[str, Any]]:
        """name, op, kind, nin, nout, params, macs, inputs of every vertex."""
    def save(self, path: Union[str, os.PathLike], external_data: bool = False) -> None:
        """Write the model as ONNX."""
    def to_bytes(self) -> bytes:
        """The model as ONNX bytes."""
    def summary(self) -> str:
        """A table of the vertices and the totals."""
    def cost(self, input_shape: Optional[Sequence[int]] = None) -> Dict[str, int]:
        """params and macs (per sample)."""
    def run(
        self,
        inputs: Union[ArrayLike, Sequence[ArrayLike], Dict[str, ArrayLike]],
        trace: bool = False,
    ) -> Union[Dict[str, npt.NDArray[np.float32]], Tuple[Dict[str, npt.NDArray[np.float32]], Dict[str, Any]]]:
        """Outputs by name; with trace=True, (outputs, trace): each dynamic
        vertex's choice per sample, macs_spent and macs_full."""
    def __call__(self, *xs: ArrayLike) -> Union[npt.NDArray[np.float32], Tuple[npt.NDArray[np.float32], ...]]:
        """The output (a tuple of them when there are several)."""
    def plan(
        self,
        vertex: str,
        by: int,
        relaxed: bool = False,
        utility: Optional[Utility] = None,
        data: Optional[Data] = None,
        time_limit: float = 5.0,
    ) -> Plan:
        """Plan a size change of one vertex; nothing changes until apply."""
    def apply(self, plan: Plan) -> List[Dict[str, Any]]:
        """Apply a plan made for this model; all or nothing."""
    def resize(
        self,
        vertex: str,
        by: int,
        relaxed: bool = False,
        utility: Optional[Utility] = None,
        data: Optional[Data] = None,
    ) -> List[Dict[str, Any]]:
        """plan, then apply."""
    def prune(
        self,
        ratio: Optional[float] = None,
        params: Optional[int] = None,
        macs: Optional[int] = None,
        scope: str = "global",
        utility: Optional[Utility] = None,
        only: Optional[Sequence[str]] = None,
        data: Optional[Data] = None,
    ) -> Dict[str, Any]:
        """Structured pruning to a ratio, a parameter or a MAC budget
        (utility "magnitude", "taylor" with data=(x, y), or arrays)."""
    def train(
        self, x: ArrayLike, y: ArrayLike, epochs: int = 1, batch: int = 32, lr: float = 1e-3, seed: int = 0
    ) -> List[float]:
        """Fine-tune a classifier (Adam, cross-entropy); each epoch's mean loss."""
    def evaluate(self, x: ArrayLike, y: ArrayLike) -> Dict[str, float]:
        """loss and accuracy of a classifier."""
    def sparsify(
        self,
        density: float,
        compact: bool = False,
        per_layer: bool = False,
        saliency: str = "magnitude",
        seed: int = 0,
    ) -> Dict[str, Any]:
        """Keep a share of the dense and conv weights (masks); compact removes dead neurons."""
    def neuron_graph(self) -> Any:
        """A networkx DiGraph of the neurons when networkx is installed, else GraphML text."""
    def commit(self, patch: Patch) -> None:
        """Apply a patch's edits together; a refused patch changes nothing."""
    def insert(
        self, after: str, name: str, op: str = "identity", consumers: Optional[Sequence[str]] = None
    ) -> None:
        """Insert a vertex (starting as the identity) after another."""
    def remove(self, vertex: str) -> None: ...
    def remove_block(self, vertex: str) -> None: ...
    def connect(self, src: str, dst: str, position: Optional[int] = None) -> None: ...
    def disconnect(self, src: str, dst: str, nth: int = 0) -> None: ...
    def weights(self, vertex: str) -> Dict[str, npt.NDArray[np.float32]]:
        """A vertex's parameters as arrays (copies), by name."""
    def copy(self) -> "Model":
        """An independent copy with its own weights."""

def load(source: Union[str, os.PathLike, bytes]) -> Model:
    """Read an ONNX model from a path or from bytes."""

def plan(graph_json: str, request_json: str, time_limit: float = 5.0) -> str:
    """Plan a request on a size-only graph (JSON in, JSON report out)."""
