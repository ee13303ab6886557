#!/usr/bin/env python3
"""Check the ONNX files graft writes: graft re-exports every committed
fixture it imports (crates/graft-onnx/tests/fixtures/*.onnx), with the
interface the fixture was read with, at the fixture's own opset and at
opsets 13 and 21 (the Rust example `rewrite`). Each written file goes
through

  - onnx.checker.check_model(model, full_check=True) (which runs strict
    shape inference),
  - onnxruntime, on the fixture's recorded input when there is one (else a
    seeded random input), compared with onnxruntime on the fixture itself
    and, where recorded, with the fixture's recorded output,

and a table is printed: one row per fixture and opset. Exit status 1 when
any written file fails the checker or onnxruntime, or differs.

The files the example writes are not part of the tests.

    python3 scripts/check_written.py [--keep DIR]

onnx, onnxruntime and numpy are installed with pip into a virtual
environment outside the repository when missing (~/.cache/graft-onnx-venv
or $GRAFT_ONNX_VENV).
"""
import datetime
import pathlib
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
except ImportError:
    from pyenv_setup import rerun_in_venv

    rerun_in_venv(["onnx", "onnxruntime", "numpy"])

from tensor_files import read_tensor  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "crates" / "graft-onnx" / "tests" / "fixtures"
TOL = 1e-4


def recorded_inputs(stem, sess):
    """The fixture's recorded inputs by name, when their files exist and
    fit the model's inputs; else None."""
    if stem == "dynamic_net.if.graft":
        # A batch-level control: one value (scripts/onnx_dynamic_fixtures.py).
        return {"x": read_tensor(FIXTURES / "dynamic_net.x.bin"),
                "control": np.array([[0.7]], dtype=np.float32)}
    base = stem.split(".")[0]
    candidates = [[f"{base}.input.bin", f"{base}.x.bin"], [f"{base}.control.bin"]]
    feeds = {}
    for k, i in enumerate(sess.get_inputs()):
        files = [FIXTURES / n for n in candidates[min(k, 1)] if (FIXTURES / n).exists()]
        if not files:
            return None
        x = read_tensor(files[0])
        fixed = [d if isinstance(d, int) else None for d in i.shape]
        if len(fixed) != x.ndim or any(d is not None and d != s for d, s in zip(fixed, x.shape)):
            return None
        # Token ids are recorded as floats: fed in the input's own type.
        feeds[i.name] = x.astype(np.int64) if i.type == "tensor(int64)" else x
    return feeds


def random_inputs(sess):
    rng = np.random.default_rng(0)
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        if i.type == "tensor(int64)":
            # Token ids: small ones, valid for any vocabulary.
            feeds[i.name] = rng.integers(0, 8, shape).astype(np.int64)
        else:
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def run(path, feeds):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return names, sess.run(None, feeds)


def max_rel_diff(a, b):
    scale = max(float(np.abs(b).max()), 1e-6) if b.size else 1.0
    return float(np.abs(a - b).max()) / scale if a.size else 0.0


def check_one(written, stem, source):
    """(checker, onnxruntime, diff vs the fixture under onnxruntime,
    diff vs the recorded output) for one written file."""
    try:
        onnx.checker.check_model(onnx.load(str(written)), full_check=True)
        checker = "ok"
    except Exception as e:  # the checker raises several kinds
        checker = "FAIL: " + str(e).splitlines()[0][:100]
    src_sess = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    feeds = recorded_inputs(stem, src_sess)
    recorded = feeds is not None
    if feeds is None:
        feeds = random_inputs(src_sess)
    try:
        names, outs = run(written, feeds)
        runs = "ok"
    except Exception as e:
        return checker, "FAIL: " + str(e).splitlines()[0][:100], "-", "-"
    src_names, src_outs = run(source, feeds)
    if names != src_names:
        return checker, runs, f"names {names} vs {src_names}", "-"
    diff = max(max_rel_diff(a, b) for a, b in zip(outs, src_outs))
    vs_fixture = f"{diff:.1e}" + ("" if diff <= TOL else " FAIL")
    out_file = FIXTURES / (f"{stem}.out.bin" if stem != "dynamic_net.if.graft" else "dynamic_net.if.hi.out.bin")
    vs_recorded = "-"
    if recorded and out_file.exists() and len(outs) == 1:
        want = read_tensor(out_file)
        if want.shape == outs[0].shape:
            d = max_rel_diff(outs[0], want)
            vs_recorded = f"{d:.1e}" + ("" if d <= TOL else " FAIL")
    return checker, runs, vs_fixture, vs_recorded


def main():
    keep = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None
    out = pathlib.Path(keep) if keep else pathlib.Path(tempfile.mkdtemp(prefix="graft-written-"))
    lines = subprocess.check_output(
        ["cargo", "run", "--quiet", "-p", "graft-onnx", "--example", "rewrite", "--", str(FIXTURES), str(out)],
        cwd=ROOT, text=True).splitlines()
    rows = []
    failures = 0
    for line in lines:
        stem, tag, opset, what = line.split("\t", 3)
        if what != "written":
            rows.append([stem, opset, what[:90], "-", "-", "-", "-"])
            if what.startswith("not imported"):
                continue
            # A typed refusal of an op the opset predates is expected;
            # anything else is a failure.
            if "needs opset" not in what:
                failures += 1
            continue
        written = out / f"{stem}.{tag}.onnx"
        checker, runs, vs_fixture, vs_recorded = check_one(written, stem, FIXTURES / f"{stem}.onnx")
        if "FAIL" in " ".join([checker, runs, vs_fixture, vs_recorded]) or vs_fixture.startswith("names"):
            failures += 1
        rows.append([stem, f"{opset} ({tag})", "written", checker, runs, vs_fixture, vs_recorded])
    header = ["fixture", "opset", "graft", "checker (full)", "onnxruntime", "vs fixture", "vs recorded"]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(f"{datetime.date.today()}  onnx {onnx.__version__}  onnxruntime {ort.__version__}")
    print(fmt.format(*header))
    print(fmt.format(*["-" * w for w in widths]))
    for r in rows:
        print(fmt.format(*r))
    written = sum(1 for r in rows if r[2] == "written")
    checked = sum(1 for r in rows if r[3] == "ok")
    ran = sum(1 for r in rows if r[4] == "ok")
    not_imported = {r[0] for r in rows if r[2].startswith("not imported")}
    rebuilt = {r[0] for r in rows if r[2] == "written"} & not_imported
    imported = {r[0] for r in rows} - not_imported
    print(f"\n{len(imported)} fixtures imported and written again; {len(rebuilt)} graft does not read "
          f"back rebuilt from graft_nn::zoo and written; {written} files written; {checked} pass the "
          f"checker; {ran} run in onnxruntime; {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
