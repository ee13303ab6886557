"""graft's Python package on the repository's committed fixtures.

Run after building the package (``pip install ./crates/graft-py`` or
``maturin develop``): ``pytest crates/graft-py/tests``. The fixtures are
those of graft-onnx's Rust tests: ONNX files exported by torch, their
inputs, and onnxruntime's outputs (``scripts/onnx_fixtures.py``).
"""

import json
import pathlib
import struct

import numpy as np
import pytest

import graft

ROOT = pathlib.Path(__file__).resolve().parents[3]
FIX = ROOT / "crates" / "graft-onnx" / "tests" / "fixtures"


def tensor(name):
    """A tensor file of the fixture scripts: u32 rank, u32 dims, f32 values."""
    b = (FIX / name).read_bytes()
    rank = struct.unpack_from("<I", b, 0)[0]
    dims = struct.unpack_from(f"<{rank}I", b, 4)
    return np.frombuffer(b, dtype="<f4", offset=4 * (rank + 1)).reshape(dims)


def close(a, b, tol):
    scale = max(float(np.abs(b).max()), 1e-30)
    assert np.abs(a - b).max() <= tol * scale, (np.abs(a - b).max(), scale)


@pytest.fixture
def mlp():
    return graft.load(FIX / "mlp.legacy.onnx")


@pytest.fixture
def resnet():
    return graft.load(FIX / "resnet18w8.legacy.onnx")


def test_load_from_a_path_or_bytes_runs_like_onnxruntime(mlp):
    x = tensor("mlp.input.bin")
    want = tensor("mlp.legacy.out.bin")
    close(mlp(x), want, 1e-5)
    again = graft.load((FIX / "mlp.legacy.onnx").read_bytes())
    close(again.run({"input": x})["output"], want, 1e-5)
    assert mlp.inputs == ["input"] and mlp.outputs == ["output"]


def test_vertices_summary_and_cost(resnet):
    vs = resnet.vertices
    assert {"name", "op", "kind", "nin", "nout", "params", "macs", "inputs"} <= set(vs[0])
    cost = resnet.cost()
    assert cost["params"] == sum(v["params"] for v in vs)
    assert cost["macs"] == sum(v["macs"] for v in vs) > 0
    # Costs scale with the input's area.
    c, h, w = resnet.input_shapes[0][1:]
    assert resnet.cost([c, 2 * h, 2 * w])["macs"] > 3 * cost["macs"]
    text = resnet.summary()
    assert vs[1]["name"] in text and f"{cost['params']} parameters" in text


def test_a_model_saved_and_read_again_keeps_names_opset_and_function(resnet, tmp_path):
    x = tensor("resnet18w8.input.bin")
    before = resnet(x)
    path = tmp_path / "r.onnx"
    resnet.save(path)
    back = graft.load(path)
    assert (back.inputs, back.outputs, back.opset) == (resnet.inputs, resnet.outputs, resnet.opset)
    close(back(x), before, 1e-6)
    assert graft.load(resnet.to_bytes()).outputs == resnet.outputs
    resnet.save(tmp_path / "e.onnx", external_data=True)
    assert (tmp_path / "e.onnx.data").exists()
    close(graft.load(tmp_path / "e.onnx")(x), before, 1e-6)


def test_saved_files_pass_the_onnx_checker_and_onnxruntime(resnet, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    resnet.prune(ratio=0.5, scope="layer")
    path = tmp_path / "p.onnx"
    resnet.save(path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    x = tensor("resnet18w8.input.bin")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {resnet.inputs[0]: x})
    close(resnet(x), y, 1e-4)


def test_widening_keeps_the_function(resnet):
    x = tensor("resnet18w8.input.bin")
    before = resnet(x)
    conv = next(v["name"] for v in resnet.vertices if v["op"] == "conv2d")
    changed = resnet.resize(conv, 8)
    assert any(c["after"] == c["before"] + 8 for c in changed)
    close(resnet(x), before, 1e-5)


def test_a_user_utility_chooses_the_neurons_kept(mlp):
    name = mlp.vertices[1]["name"]
    n = mlp.vertices[1]["nout"]
    rng = np.random.default_rng(7)
    scores = rng.random(n)
    p = mlp.plan(name, -5, utility={name: scores})
    kept = next(c["kept"] for c in p.changes if c["vertex"] == name)
    # The planner keeps the 11 best-scored neurons, in their old order.
    assert list(kept) == sorted(np.argsort(-scores)[: n - 5])
    # Other scores, other neurons (positive: a neuron of negative utility
    # is worth less than a new one, and the planner would replace it).
    q = mlp.plan(name, -5, utility={name: 1.0 - scores})
    assert list(next(c["kept"] for c in q.changes if c["vertex"] == name)) == sorted(
        np.argsort(scores)[: n - 5]
    )
    assert p.optimal
    applied = mlp.apply(p)
    assert next(v["nout"] for v in mlp.vertices if v["name"] == name) == n - 5
    assert {c["vertex"] for c in applied} == {c["vertex"] for c in p.changes}


def test_refused_edits_raise_typed_errors_and_change_nothing(mlp):
    before = mlp.to_bytes()
    with pytest.raises(graft.GraphError, match="nope") as e:
        mlp.resize("nope", 3)
    assert e.value.culprit == "nope"
    with pytest.raises(graft.DataError, match="scores for its"):
        name = mlp.vertices[1]["name"]
        mlp.resize(name, -2, utility={name: np.ones(3)})
    name = mlp.vertices[1]["name"]
    with pytest.raises(graft.PlanError, match="below 1"):
        mlp.resize(name, -16)
    with pytest.raises(graft.PlanError) as e:
        mlp.resize(name, -16)
    assert e.value.culprit == name
    with pytest.raises(graft.DataError):
        mlp.prune(ratio=0.5, macs=10)
    with pytest.raises(graft.DataError, match="input `input`: not an array of numbers"):
        mlp(np.array(["a"]))
    with pytest.raises(graft.DataError, match="density"):
        mlp.sparsify(0.0)
    assert mlp.to_bytes() == before
    for cls in (graft.PlanError, graft.GraphError, graft.ModelError, graft.OnnxError, graft.DataError):
        assert issubclass(cls, graft.GraftError)
        assert cls.__name__ not in ("ImportError", "ValueError")


def test_unreadable_files_raise_onnx_errors(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(graft.OnnxError):
        graft.load(bad)
    with pytest.raises(graft.OnnxError, match="not a regular file"):
        graft.load(tmp_path)
    with pytest.raises(graft.GraftError):
        graft.load(b"\x08\x07garbage")


def test_prune_to_half_the_macs(resnet):
    x = tensor("resnet18w8.input.bin")
    macs = resnet.cost()["macs"]
    r = resnet.prune(macs=macs // 2)
    assert r["macs"][0] == macs and r["macs"][1] <= macs // 2
    assert resnet.cost()["macs"] == r["macs"][1]
    assert np.isfinite(resnet(x)).all()


def test_prune_with_user_scores_for_every_layer(resnet):
    rng = np.random.default_rng(3)
    scores = {v["name"]: rng.random(v["nout"]) for v in resnet.vertices if v["op"] == "conv2d"}
    r = resnet.prune(ratio=0.25, scope="layer", utility=scores)
    assert r["neurons"][1] < r["neurons"][0]


def test_copies_are_independent(mlp):
    c = mlp.copy()
    name = mlp.vertices[1]["name"]
    c.resize(name, -4)
    assert next(v["nout"] for v in mlp.vertices if v["name"] == name) == 16
    assert next(v["nout"] for v in c.vertices if v["name"] == name) == 12


def test_size_only_planning_from_json():
    graph = (ROOT / "examples" / "plan" / "graph.json").read_text()
    request = (ROOT / "examples" / "plan" / "request.json").read_text()
    report = json.loads(graft.plan(graph, request))
    assert report["plan"]["changes"]
    with pytest.raises(graft.DataError):
        graft.plan("{", request)


def test_the_readme_tour_runs_as_written(tmp_path, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```python\n", readme.index("## Python"))
    body = readme[start + len("```python\n"):]
    code = body[: body.index("```")]
    # Paths in the tour are the repository's; the model is written to a
    # scratch directory.
    code = code.replace('"crates/', f'"{ROOT}/crates/').replace('"pruned.onnx"', f'"{tmp_path}/pruned.onnx"')
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "refused:" in out and "no-such-vertex" in out
    assert graft.load(tmp_path / "pruned.onnx").outputs == ["output"]


def test_weights_are_numpy_copies(mlp):
    name = mlp.vertices[1]["name"]
    w = mlp.weights(name)
    assert set(w) == {"weight", "bias"} and w["weight"].shape == (16, 6)
    w["weight"][:] = 0  # a copy: the model is unchanged
    assert np.abs(mlp.weights(name)["weight"]).sum() > 0


def test_the_example_script_prunes_to_half_the_macs(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "half.onnx"
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / "prune_half_macs.py"), "-o", str(out)],
        capture_output=True, text=True, check=True,
    )
    assert "pruned: MACs 842368 ->" in r.stdout and out.exists()
    before, after = (int(s) for s in r.stdout.split("pruned: MACs ")[1].split(",")[0].split(" -> "))
    assert after <= before // 2


def test_structural_edits_keep_the_function_and_patches_are_all_or_nothing(resnet):
    x = tensor("resnet18w8.input.bin")
    before = resnet(x)
    n = len(resnet.vertices)
    conv = next(v["name"] for v in resnet.vertices if v["op"] == "conv2d")
    # A new convolution starts as the identity (a Dirac kernel).
    resnet.insert(conv, "extra", "conv3x3")
    assert len(resnet.vertices) == n + 1
    close(resnet(x), before, 1e-5)
    resnet.remove("extra")
    close(resnet(x), before, 1e-5)
    # A patch: later edits name what earlier ones inserted.
    resnet.commit(graft.Patch().insert(conv, "a", "relu").insert("a", "b").remove("b"))
    assert [v["name"] for v in resnet.vertices].count("a") == 1
    # A refused patch leaves the model exactly as it was.
    snapshot = resnet.to_bytes()
    with pytest.raises(graft.GraphError, match="input"):
        resnet.commit(graft.Patch().insert(conv, "c").remove(resnet.inputs[0]))
    assert resnet.to_bytes() == snapshot
    with pytest.raises(graft.GraphError, match="nope"):
        resnet.connect("nope", conv)
    with pytest.raises(graft.DataError, match="op `lstm`"):
        resnet.insert(conv, "d", "lstm")
    assert resnet.to_bytes() == snapshot
    # Removing a residual block: four vertices and the add go.
    add = [v["name"] for v in resnet.vertices if v["op"] == "add"][1]
    k = len(resnet.vertices)
    resnet.remove_block(add)
    assert len(resnet.vertices) < k and resnet(x).shape == before.shape


def test_a_conditional_runs_per_sample_and_traces_its_path():
    m = graft.load(FIX / "dynamic_net.where.graft.onnx")
    x, control = tensor("dynamic_net.x.bin"), tensor("dynamic_net.control.bin")
    want = tensor("dynamic_net.where.out.bin")
    out, trace = m.run({"x": x, "control": control}, trace=True)
    close(out[m.outputs[0]], want, 1e-5)
    # The branch each sample took follows its control (threshold 0.5).
    (name, per_sample), = trace["decisions"].items()
    assert per_sample == [0 if c > 0.5 else 1 for c in control.ravel()]
    assert trace["samples"] == len(x) and trace["macs_spent"] < trace["macs_full"]
    assert set(m.run([x, control])) == set(m.outputs)


def test_train_evaluate_and_taylor_pruning_on_data(mlp):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    before = mlp.evaluate(x, y)
    losses = mlp.train(x, y, epochs=5, batch=16, lr=1e-2)
    assert len(losses) == 5 and losses[-1] < losses[0]
    after = mlp.evaluate(x, y)
    assert after["loss"] < before["loss"]
    r = mlp.prune(ratio=0.25, utility="taylor", data=(x, y))
    assert r["neurons"][1] < r["neurons"][0]
    with pytest.raises(graft.DataError, match="needs data"):
        mlp.prune(ratio=0.25, utility="taylor")
    with pytest.raises(graft.DataError, match="labels"):
        mlp.evaluate(x, y.astype(np.float32) + 0.5)
    # Data that does not fit the classifier is refused before any batch
    # runs, and training leaves the weights as they were.
    weights = mlp.to_bytes()
    with pytest.raises(graft.DataError, match="one label per row"):
        mlp.train(x, y[:-1])
    with pytest.raises(graft.DataError, match="4 classes"):
        mlp.evaluate(x, np.full(len(x), 9))
    with pytest.raises(graft.DataError, match="x: not an array of numbers"):
        mlp.train([["a"] * 6], [0])
    assert mlp.to_bytes() == weights


def test_sparsify_and_the_neuron_graph(mlp):
    nx = pytest.importorskip("networkx")
    g = mlp.neuron_graph()
    assert isinstance(g, nx.DiGraph)
    dense_edges = g.number_of_edges()
    assert dense_edges == 6 * 16 + 16 * 12 + 12 * 4
    r = mlp.sparsify(0.5)
    assert r["weights"] == (dense_edges, dense_edges // 2)
    assert mlp.neuron_graph().number_of_edges() == dense_edges // 2
    with pytest.raises(graft.DataError, match="density"):
        mlp.sparsify(0.0)


def graft_binary():
    """The `graft` CLI: $GRAFT_BIN (set by .ci/run), else a build in target/."""
    import os

    given = os.environ.get("GRAFT_BIN")
    if given:
        assert pathlib.Path(given).exists(), f"GRAFT_BIN={given} does not exist"
        return given
    for p in (ROOT / "target" / "debug" / "graft", ROOT / "target" / "release" / "graft"):
        if p.exists():
            return str(p)
    pytest.skip("no graft binary built (cargo build -p graft-cli)")


def test_a_model_saved_from_python_goes_through_the_cli_and_back(resnet, tmp_path):
    import subprocess

    x = tensor("resnet18w8.input.bin")
    before = resnet(x)
    saved = tmp_path / "py.onnx"
    resnet.save(saved)
    conv = next(v["name"] for v in resnet.vertices if v["op"] == "conv2d")
    wide = tmp_path / "cli.onnx"
    subprocess.run(
        [graft_binary(), "-q", "resize", str(saved), "--vertex", conv, "--by", "4", "-o", str(wide)],
        check=True,
    )
    back = graft.load(wide)
    assert next(v["nout"] for v in back.vertices if v["name"] == conv) == 12
    close(back(x), before, 1e-5)


def test_connect_then_disconnect_restores_the_model(resnet):
    x = tensor("resnet18w8.input.bin")
    before = resnet(x)
    add = next(v for v in resnet.vertices if v["op"] == "add")
    conv = next(v["name"] for v in resnet.vertices if v["op"] == "conv2d" and v["name"] not in add["inputs"])
    resnet.connect(conv, add["name"])
    assert conv in next(v["inputs"] for v in resnet.vertices if v["name"] == add["name"])
    resnet.disconnect(conv, add["name"])
    assert next(v["inputs"] for v in resnet.vertices if v["name"] == add["name"]) == add["inputs"]
    close(resnet(x), before, 1e-6)


def test_a_plan_says_where_new_neurons_go(mlp):
    name = mlp.vertices[1]["name"]
    p = mlp.plan(name, 3)
    c = next(c for c in p.changes if c["vertex"] == name)
    assert c["new"] == 3 and list(c["order"]).count(-1) == 3 and len(c["order"]) == 19
    assert json.loads(p.to_json())["changes"]
    assert "optimal true" in repr(p)


def test_attention_with_a_symbolic_batch_runs_prunes_and_saves_at_batch_three(tmp_path):
    # torch's multi-head attention moves the batch to axis 1 and folds it
    # into the heads; read with a symbolic batch it runs whole batches.
    x = tensor("vitbatch.input.bin")
    assert x.shape[0] == 3
    m = graft.load(FIX / "vitbatch.legacy.onnx")
    close(m(x), tensor("vitbatch.legacy.out.bin"), 1e-4)
    # The same model in a file fixed at batch 1 runs sample by sample.
    fixed = graft.load(FIX / "vitattn.legacy.onnx")
    close(fixed(x), tensor("vitbatch.legacy.out.bin"), 1e-4)
    m.prune(ratio=0.5, scope="layer")
    y = m(x)
    assert y.shape == (3, 3)
    path = tmp_path / "half.onnx"
    m.save(path)
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"input": x})
    close(got, y, 1e-4)
    (one,) = sess.run(None, {"input": x[1:2]})
    close(one, y[1:2], 1e-4)
