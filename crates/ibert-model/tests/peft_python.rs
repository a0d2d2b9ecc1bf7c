//! Adapter interchange with the Python ecosystem: a PEFT folder written by Hugging Face's
//! `safetensors` package (as PEFT writes one) is read by ours with every value in place (and
//! llama's query and key rows turned to the GGUF order), and the folders we write read back in
//! Python with PEFT's names, shapes and values. The package runs in a venv of its own in the
//! ibert cache, installed from python/tests/requirements-safetensors.txt on first use.

use std::path::{Path, PathBuf};
use std::process::Command;

use ibert_model::adapter::peft::{read_peft, tensor_name, write_peft};
use ibert_model::architecture::{Architecture, Projection, Shape, rows_to_gguf_order};
use ibert_model::native::ops::RopeStyle;
use ibert_model::tensor_file::Precision;

const PYTHON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../python/tests");

/// The venv with `safetensors`, created on first use.
fn python() -> PathBuf {
    let requirements = Path::new(PYTHON_DIR).join("requirements-safetensors.txt");
    ibert_oracle::ensure_requirements_venv("test-safetensors", &requirements).unwrap_or_else(|error| panic!("{error}"))
}

fn shape() -> Shape {
    Shape {
        width: 64,
        heads: 4,
        kv_heads: 2,
        head_dim: 16,
        rope_dims: 16,
        rope_base: 10_000.0,
        rope_style: RopeStyle::AdjacentPairs,
        epsilon: 1e-5,
        blocks: 2,
        ffn: 96,
    }
}

fn value(name: &str, index: usize) -> f32 {
    let phase = (name.bytes().map(u64::from).sum::<u64>() % 1000) as f64 / 100.0;
    (index as f64 * 0.01 + phase).sin() as f32
}

#[test]
fn a_folder_written_by_python_safetensors_reads_with_every_value_in_place_and_ours_reads_in_python() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let shape = shape();
    let (rank, kv) = (4, shape.kv_heads * shape.head_dim);
    let script = Path::new(PYTHON_DIR).join("peft_folder.py");
    let sizes = [shape.blocks, shape.width, kv, shape.ffn, rank].map(|n| n.to_string());
    let status = Command::new(&python).arg(&script).arg("write").arg(dir.path()).args(&sizes).status().unwrap();
    assert!(status.success());

    let adapter = read_peft(dir.path(), Architecture::Llama, &shape).unwrap();
    assert_eq!((adapter.rank, adapter.alpha, adapter.dropout, adapter.targets.len()), (4, 8.0, 0.1, 7));
    assert_eq!(adapter.base.name, "test/base");
    for (block, projection, factors) in adapter.iter() {
        let a_name = tensor_name(block, projection, 'A');
        let b_name = tensor_name(block, projection, 'B');
        let a: Vec<f32> = (0..factors.a.len()).map(|i| value(&a_name, i)).collect();
        let b: Vec<f32> = (0..factors.b.len()).map(|i| value(&b_name, i)).collect();
        // A llama GGUF base has its query and key rows permuted for the adjacent-pair rotation.
        let b = match shape.heads_of(projection) {
            Some(heads) => rows_to_gguf_order(&b, rank, heads),
            None => b,
        };
        assert_eq!(factors.a, a, "block {block} {} A", projection.module());
        assert_eq!(factors.b, b, "block {block} {} B", projection.module());
    }
    assert_ne!(
        adapter.factors(0, Projection::Query).unwrap().b,
        adapter
            .factors(0, Projection::Query)
            .map(|f| {
                let name = tensor_name(0, Projection::Query, 'B');
                (0..f.b.len()).map(|i| value(&name, i)).collect::<Vec<f32>>()
            })
            .unwrap(),
        "the test can tell the orders apart"
    );

    // Ours, read back in Python: the same names, shapes and values (in PEFT's order again).
    let ours = dir.path().join("ours");
    write_peft(&adapter, &shape, &ours, Precision::F32, &[]).unwrap();
    let output = Command::new(&python).arg(&script).arg("read").arg(&ours).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let summary = summary.as_object().unwrap();
    assert_eq!(summary.len(), 2 * 7 * shape.blocks);
    for (block, projection, factors) in adapter.iter() {
        for (factor, dims, count) in [('A', [rank, factors.input], factors.a.len()), ('B', [factors.output, rank], factors.b.len())] {
            let name = tensor_name(block, projection, factor);
            let entry = &summary[&name];
            assert_eq!(entry[0], serde_json::json!(dims), "{name}");
            assert_eq!(entry[1], "float32");
            let sum: f64 = (0..count).map(|i| f64::from(value(&name, i))).sum();
            assert!((entry[2].as_f64().unwrap() - sum).abs() < 1e-3, "{name}: {} against {sum}", entry[2]);
            assert_eq!(entry[3].as_f64().unwrap() as f32, value(&name, 0), "{name}: the first value is the first of PEFT's order");
        }
    }
}
