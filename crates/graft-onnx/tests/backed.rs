//! File-backed parameters (issue 19): an imported model's weights stay in
//! its file until a command needs them. Scoring, pruning and writing read
//! them where they lie, a forward pass loads them, and every answer is the
//! same as with the weights in memory.

mod common;

use common::{fixture, read_tensor, run};
use graft_nn::shrink::{shrink, Scope, Target};
use graft_onnx::{export_bytes, import, Imported};

/// (loaded, not loaded) among the model's parameters.
fn residency(m: &graft_nn::Model) -> (usize, usize) {
    let mut n = (0, 0);
    for v in m.graph().ids() {
        let Some(layer) = m.layer(v) else { continue };
        for name in layer.param_names() {
            if m.param_of(v, name).unwrap().is_loaded() {
                n.0 += 1;
            } else {
                n.1 += 1;
            }
        }
    }
    n
}

/// Pruned to half of every layer by magnitude, and written.
fn pruned_bytes(imp: &mut Imported) -> Vec<u8> {
    let u = graft_nn::utility::magnitude(&imp.model).unwrap();
    let samples: Vec<Vec<usize>> = imp.input_shapes.iter().map(|s| s[1..].to_vec()).collect();
    shrink(
        &mut imp.model,
        &u,
        Target::Ratio(0.5),
        Scope::Layer,
        &samples,
    )
    .unwrap();
    export_bytes(&imp.model, &imp.interface).unwrap()
}

#[test]
fn imported_weights_are_read_from_the_file_only_when_needed() {
    let path = fixture("resnet18w8.legacy.onnx");
    let mut lazy = import(&path).unwrap();
    let (loaded, backed) = residency(&lazy.model);
    assert!(backed >= 20, "{backed} parameters left in the file");
    // Scoring reads every weight but loads none; so does writing.
    let _ = graft_nn::utility::magnitude(&lazy.model).unwrap();
    assert_eq!(
        residency(&lazy.model),
        (loaded, backed),
        "scoring loads nothing"
    );
    let written = export_bytes(&lazy.model, &lazy.interface).unwrap();
    assert_eq!(
        residency(&lazy.model),
        (loaded, backed),
        "writing loads nothing"
    );

    // The same model with every weight loaded writes the same bytes, and
    // prunes to the same bytes.
    let mut eager = import(&path).unwrap();
    let _ = eager.model.all_params();
    assert_eq!(residency(&eager.model).1, 0, "all_params loads everything");
    assert_eq!(
        export_bytes(&eager.model, &eager.interface).unwrap(),
        written
    );
    let a = pruned_bytes(&mut lazy);
    let b = pruned_bytes(&mut eager);
    assert!(
        a.len() < written.len() / 2,
        "{} of {}",
        a.len(),
        written.len()
    );
    assert_eq!(a, b, "pruning from the file equals pruning in memory");
    // Pruning gathered what it keeps without loading the file's weights.
    assert_eq!(
        residency(&lazy.model).0 + residency(&lazy.model).1,
        loaded + backed
    );

    // An inference pass reads each layer's weights for itself and keeps
    // none; a pass that gradients may reach loads them. Both agree with
    // the loaded model.
    let x = read_tensor("resnet18w8.input.bin");
    let eager = import(&path).unwrap();
    let _ = eager.model.all_params();
    let want = run(&eager.model, &x);
    let fresh = import(&path).unwrap();
    let ex = graft_nn::Executor::new(&fresh.model).unwrap();
    let y = ex
        .run(
            &fresh.model,
            std::slice::from_ref(&x),
            &graft_nn::Run::inference(),
        )
        .unwrap()
        .outputs[0]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(
        residency(&fresh.model),
        (loaded, backed),
        "inference keeps nothing"
    );
    assert_eq!(y, want);
    assert_eq!(run(&fresh.model, &x), want);
    assert_eq!(
        residency(&fresh.model).1,
        0,
        "an eval pass loaded the weights"
    );
}

#[test]
fn a_model_written_over_the_file_it_is_read_from_keeps_its_weights() {
    // The weights left in the file are read while the new file is written:
    // the new file replaces the old one only once it is whole.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("backed");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("over.onnx");
    std::fs::copy(fixture("resnet18w8.legacy.onnx"), &path).unwrap();
    let imp = import(&path).unwrap();
    let want = export_bytes(&imp.model, &imp.interface).unwrap();
    assert!(
        residency(&imp.model).1 > 0,
        "some weights are still in the file"
    );
    graft_onnx::export(&imp.model, &imp.interface, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert!(!dir.join("over.onnx.partial").exists());
    // Written twice over itself, the second time from the new file.
    let again = import(&path).unwrap();
    graft_onnx::export(&again.model, &again.interface, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), want);
}

#[test]
fn a_refused_change_leaves_a_file_backed_model_as_it_was() {
    // All or nothing: a request the planner cannot meet touches neither
    // the graph nor the parameters, loaded or still in the file.
    let imp = import(&fixture("resnet18w8.legacy.onnx")).unwrap();
    let mut m = imp.model;
    let before = (residency(&m), export_bytes(&m, &imp.interface).unwrap());
    let conv = m
        .graph()
        .ids()
        .find(|&v| matches!(m.layer(v).map(|l| &l.op), Some(graft_nn::Op::Conv2d(_))))
        .unwrap();
    let n = m.graph().nout(conv).unwrap() as i64;
    let req = graft_core::Request::new().nout(conv, -n);
    assert!(
        m.change_sizes(&req).is_err(),
        "a vertex cannot lose every neuron"
    );
    assert_eq!(
        (residency(&m), export_bytes(&m, &imp.interface).unwrap()),
        before
    );
}
