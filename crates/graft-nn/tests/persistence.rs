//! Save then load gives the same model, bit for bit, also after mutations;
//! bad files give typed errors naming the file.

use graft_core::{Patch, Request};
use graft_nn::{
    Activation, Cell, Conv, Device, Executor, Groups, Init, Mode, Model, NewLayer, NnError, Op,
    Tensor,
};

fn sample() -> Model {
    let mut m = Model::new();
    let x = m.input("image", 3).unwrap();
    let c1 = m
        .add("c1", Op::Conv2d(Conv::same(3)), &[x], Some(8))
        .unwrap();
    let bn = m
        .add(
            "bn",
            Op::BatchNorm {
                eps: 1e-5,
                momentum: 0.1,
            },
            &[c1],
            None,
        )
        .unwrap();
    let a = m
        .add("relu", Op::Activation(Activation::Relu), &[bn], None)
        .unwrap();
    let dw = Conv {
        groups: Groups::Depthwise,
        ..Conv::same(3)
    };
    let c2 = m.add("dw", Op::Conv2d(dw), &[a], Some(8)).unwrap();
    let sum = m.add("sum", Op::Add, &[a, c2], None).unwrap();
    let p = m.add("gap", Op::GlobalAvgPool, &[sum], None).unwrap();
    let h = m
        .add("head", Op::Dense { bias: true }, &[p], Some(4))
        .unwrap();
    let s = m.input("seq", 2).unwrap();
    let r = m
        .add(
            "lstm",
            Op::Recurrent {
                cell: Cell::Lstm,
                sequences: false,
            },
            &[s],
            Some(3),
        )
        .unwrap();
    m.add("both", Op::Concat, &[h, r], None).unwrap();
    m
}

fn inputs() -> Vec<Tensor> {
    vec![
        Tensor::randn(0f32, 1.0, (2, 3, 6, 6), &Device::Cpu).unwrap(),
        Tensor::randn(0f32, 1.0, (2, 2, 5), &Device::Cpu).unwrap(),
    ]
}

fn bits(m: &Model, xs: &[Tensor]) -> Vec<u32> {
    let ex = Executor::new(m).unwrap();
    let f = ex.forward(m, xs, Mode::Eval, false).unwrap();
    f.outputs
        .iter()
        .flat_map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .map(f32::to_bits)
        .collect()
}

fn roundtrip(m: &Model, tag: &str) -> Model {
    let dir = std::env::temp_dir().join(format!("graft-persist-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (j, w) = (dir.join("model.json"), dir.join("model.safetensors"));
    m.save(&j, &w).unwrap();
    let back = Model::load(&j, &w).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    back
}

fn assert_same(a: &Model, b: &Model, xs: &[Tensor]) {
    assert_eq!(a.spec(), b.spec());
    for (v, name, var) in a.all_params() {
        let vb = b.id(&a.graph().name(v)).unwrap();
        let x: Vec<u32> = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .map(f32::to_bits)
            .collect();
        let y: Vec<u32> = b
            .param(vb, &name)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .map(f32::to_bits)
            .collect();
        assert_eq!(x, y, "{name} of {}", a.graph().name(v));
    }
    assert_eq!(bits(a, xs), bits(b, xs));
}

#[test]
fn save_then_load_is_bit_identical_also_after_mutations() {
    let xs = inputs();
    let mut m = sample();
    let back = roundtrip(&m, "fresh");
    assert_same(&m, &back, &xs);
    assert_eq!(back.read_batch(), 1);
    // The batch size a file was read at survives the round trip.
    let mut read_at_two = m.clone();
    read_at_two.set_read_batch(2);
    assert_eq!(roundtrip(&read_at_two, "read2").read_batch(), 2);

    // Mutate: widen c1 (and its coupled part), insert an identity dense
    // before the head, remove the depthwise conv, drop an LSTM unit.
    let c1 = m.id("c1").unwrap();
    m.change_sizes(&Request::new().nout(c1, 3)).unwrap();
    let gap = m.id("gap").unwrap();
    m.insert_after(
        gap,
        NewLayer::new("mix", Op::Dense { bias: true }, Init::Identity),
        graft_core::Reroute::All,
    )
    .unwrap();
    let dw = m.id("dw").unwrap();
    m.commit(&Patch::new().remove(dw), &[]).unwrap();
    let lstm = m.id("lstm").unwrap();
    m.change_sizes(&Request::new().nout(lstm, -1)).unwrap();
    let back = roundtrip(&m, "mutated");
    assert_same(&m, &back, &xs);
}

#[test]
fn bad_files_are_typed_errors() {
    let dir = std::env::temp_dir().join(format!("graft-persist-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (j, w) = (dir.join("m.json"), dir.join("m.safetensors"));
    let m = sample();
    m.save(&j, &w).unwrap();

    let missing = dir.join("nope.json");
    assert!(
        matches!(Model::load(&missing, &w), Err(NnError::Io { path, .. }) if path.ends_with("nope.json"))
    );

    std::fs::write(&j, "{ not json").unwrap();
    assert!(matches!(Model::load(&j, &w), Err(NnError::Io { .. })));

    // A model whose weights file lacks a tensor.
    m.save(&j, &w).unwrap();
    let mut other = Model::new();
    let x = other.input("image", 3).unwrap();
    other
        .add("c1", Op::Conv2d(Conv::same(3)), &[x], Some(8))
        .unwrap();
    other.save(&dir.join("o.json"), &w).unwrap();
    match Model::load(&j, &w) {
        Err(NnError::Io { reason, .. }) => assert!(reason.contains("no tensor"), "{reason}"),
        other => panic!("expected a missing-tensor error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).ok();
}
