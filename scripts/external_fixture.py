#!/usr/bin/env python3
"""The external-data fixture (issue 19): the narrow MLP fixture
(mlp.legacy.onnx) saved again by the onnx library with every initializer in
a data file beside it, as torch.onnx writes models above 2 GB:

  crates/graft-onnx/tests/fixtures/external/mlp_ext.onnx
  crates/graft-onnx/tests/fixtures/external/mlp_ext.onnx.data

Its outputs are mlp.legacy.out.bin's (the same weights). Run with the fixture
venv's python: /work/.venv-onnx/bin/python scripts/external_fixture.py
"""
import pathlib

import onnx

FIX = pathlib.Path(__file__).resolve().parent.parent / "crates" / "graft-onnx" / "tests" / "fixtures"
out = FIX / "external"
out.mkdir(exist_ok=True)
m = onnx.load(str(FIX / "mlp.legacy.onnx"))
onnx.save_model(m, str(out / "mlp_ext.onnx"), save_as_external_data=True,
                all_tensors_to_one_file=True, location="mlp_ext.onnx.data", size_threshold=0)
onnx.checker.check_model(str(out / "mlp_ext.onnx"), full_check=True)
print(sorted(p.name for p in out.iterdir()))
