"""Writes and reads PEFT adapter folders with Hugging Face's `safetensors` package, for the
interchange test of crates/ibert-model/tests/peft_python.rs.

    python peft_folder.py write DIR LAYERS WIDTH KV_WIDTH FFN RANK
        A PEFT folder (adapter_config.json, adapter_model.safetensors in f32) whose factor
        values follow value(name, index) below, as PEFT names and shapes them.
    python peft_folder.py read DIR
        Prints {tensor name: [shape, dtype, sum of values, first value]} of DIR's weights file.
"""

import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

MODULES = {
    "q_proj": ("self_attn", "width", "width"),
    "k_proj": ("self_attn", "width", "kv"),
    "v_proj": ("self_attn", "width", "kv"),
    "o_proj": ("self_attn", "width", "width"),
    "gate_proj": ("mlp", "width", "ffn"),
    "up_proj": ("mlp", "width", "ffn"),
    "down_proj": ("mlp", "ffn", "width"),
}


def value(name, index):
    """The value the Rust side recomputes: a sine of the index, phased by the name's bytes."""
    return math.sin(index * 0.01 + (sum(name.encode()) % 1000) / 100.0)


def write(folder, layers, width, kv, ffn, rank):
    sizes = {"width": width, "kv": kv, "ffn": ffn}
    tensors = {}
    for layer in range(layers):
        for module, (group, fan_in, fan_out) in MODULES.items():
            prefix = f"base_model.model.model.layers.{layer}.{group}.{module}"
            for factor, shape in (("lora_A", (rank, sizes[fan_in])), ("lora_B", (sizes[fan_out], rank))):
                name = f"{prefix}.{factor}.weight"
                count = shape[0] * shape[1]
                tensors[name] = np.array([value(name, i) for i in range(count)], dtype=np.float32).reshape(shape)
    save_file(tensors, f"{folder}/adapter_model.safetensors", metadata={"format": "pt"})
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": "test/base",
        "r": rank,
        "lora_alpha": 2 * rank,
        "lora_dropout": 0.1,
        "target_modules": sorted(MODULES),
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "use_rslora": False,
        "use_dora": False,
    }
    with open(f"{folder}/adapter_config.json", "w") as out:
        json.dump(config, out, indent=2)


def read(folder):
    tensors = load_file(f"{folder}/adapter_model.safetensors")
    summary = {name: [list(t.shape), str(t.dtype), float(t.astype(np.float64).sum()), float(t.flat[0])] for name, t in tensors.items()}
    print(json.dumps(summary))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], *map(int, sys.argv[3:8]))
    else:
        read(sys.argv[2])
