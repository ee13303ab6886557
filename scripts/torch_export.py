"""Shared by the fixture scripts: export a PyTorch model to one
self-contained ONNX file with either torch exporter."""
import pathlib

import onnx
import torch


def export(model, x, path, exporter, dynamic_batch=False, dynamo_batch=False):
    """legacy: torch.onnx.export(dynamo=False) at opset 17 (with a symbolic
    batch axis when `dynamic_batch`); dynamo: the default exporter, its
    weights saved inside the file (with a symbolic batch axis when
    `dynamo_batch`)."""
    names = dict(input_names=["input"], output_names=["output"])
    if exporter == "legacy":
        axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17,
                          dynamic_axes=axes, **names)
        return
    shapes = ({0: torch.export.Dim("batch")},) if dynamo_batch else None
    torch.onnx.export(model, (x,), str(path), dynamo=True, dynamic_shapes=shapes, **names)
    m = onnx.load(str(path))
    onnx.save(m, str(path), save_as_external_data=False)
    data = pathlib.Path(str(path) + ".data")
    if data.exists():
        data.unlink()
