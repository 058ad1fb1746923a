"""Hugging Face-style folders: described from config.json, the safetensors headers and the
tokenizer's files, written here byte by byte; malformed and hostile ones refused."""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from berth.core.errors import InvalidParameter
from berth.registry.formats import ArtifactFormat, detect
from berth.registry.hf_folder import describe, is_hf_folder
from tests.support.hf import Tensors
from tests.support.hf import write_safetensors as _safetensors
from tests.support.llm import SMOLLM2_FILE, smollm2_gguf

WHERE = "source 'here'"
FAKES = Path(__file__).resolve().parents[2] / "fakes" / "models"
TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "max_position_embeddings": 2048,
    "hidden_size": 64,
    "torch_dtype": "bfloat16",
}
TENSORS = {"model.embed_tokens.weight": ("BF16", (100, 64)), "model.norm.weight": ("F32", (64,))}


def _raw(path: Path, header: bytes, data: int = 0, length: int | None = None) -> Path:
    """A file with ``header`` as its header (its length given, or ``length`` instead)."""
    size = len(header) if length is None else length
    path.write_bytes(struct.pack("<Q", size) + header + bytes(data))
    return path


def _json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def _folder(
    tmp_path: Path,
    config: Mapping[str, Any] = LLAMA,
    tensors: Tensors = TENSORS,
    template: str | None = TEMPLATE,
) -> Path:
    """What ``save_pretrained`` writes for a small Llama: config, weights and tokenizer."""
    root = tmp_path / "model"
    root.mkdir()
    _json(root / "config.json", config)
    _safetensors(root / "model.safetensors", tensors, {"format": "pt"})
    _json(root / "tokenizer.json", {"version": "1.0", "model": {"type": "BPE"}})
    _json(root / "tokenizer_config.json", {"model_max_length": 2048})
    if template is not None:
        (root / "chat_template.jinja").write_text(template)
    return root


def _refusal(root: Path) -> str:
    with pytest.raises(InvalidParameter) as caught:
        describe(root, WHERE)
    return caught.value.message


def test_a_folder_is_described_from_its_config_weights_and_tokenizer(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    assert is_hf_folder(root)
    assert describe(root, WHERE) == {
        "weights": ["model.safetensors"],
        "architecture": "LlamaForCausalLM",
        "model_type": "llama",
        "parameter_count": 100 * 64 + 64,
        "context_length": 2048,
        "embedding_length": 64,
        "quantization": "bfloat16",
        "chat_template": TEMPLATE,
        "task": "llm/v1/chat",
        "file_size_bytes": (root / "model.safetensors").stat().st_size,
    }


def test_a_sharded_folder_counts_the_shards_its_index_names(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    (root / "model.safetensors").unlink()
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    _safetensors(root / shards[0], {"embed": ("BF16", (100, 64))})
    _safetensors(root / shards[1], {"norm": ("F32", (64,)), "head": ("BF16", (100, 64))})
    # A consolidated copy beside the shards (as some repositories ship) is not loaded, so
    # neither counted nor read.
    _raw(root / "consolidated.safetensors", b"not json", data=64)
    index = {"embed": shards[0], "norm": shards[1], "head": shards[1]}
    _json(root / "model.safetensors.index.json", {"metadata": {}, "weight_map": index})
    details = describe(root, WHERE)
    assert details["weights"] == shards
    assert details["parameter_count"] == 2 * 6400 + 64
    assert details["file_size_bytes"] == sum((root / s).stat().st_size for s in shards)


def test_every_safetensors_file_counts_without_an_index(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    _safetensors(root / "extra.safetensors", {"w": ("I8", (10, 10))})
    details = describe(root, WHERE)
    assert details["weights"] == ["extra.safetensors", "model.safetensors"]
    assert details["parameter_count"] == 6464 + 100


@pytest.mark.parametrize(
    ("shards", "expected"),
    [
        (["model.safetensors", "model-2.safetensors"], "names 1 shard the folder does not "),
        (
            [f"model-{i}.safetensors" for i in range(7)] + ["model.safetensors"],
            "names 7 shards the folder does not hold (model-0.safetensors, model-1.safetensors, "
            "model-2.safetensors, model-3.safetensors, model-4.safetensors and 2 more)",
        ),
        # A name outside the folder is never opened: it is a shard the folder lacks.
        (["../model.safetensors"], "does not hold (../model.safetensors)"),
    ],
)
def test_an_index_naming_a_missing_shard_is_refused(
    tmp_path: Path, shards: list[str], expected: str
) -> None:
    root = _folder(tmp_path)
    weight_map = {f"t{i}": shard for i, shard in enumerate(shards)}
    _json(root / "model.safetensors.index.json", {"weight_map": weight_map})
    message = _refusal(root)
    assert message.startswith(f"model.safetensors.index.json in {WHERE} names ")
    assert expected in message
    assert message.endswith(
        "copy every file its weight_map lists into the folder, beside config.json."
    )


def _drop_tokenizer(root: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (root / name).unlink()


def _write(name: str, content: bytes | str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        path = root / name
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)

    return change


def _config(config: Any) -> Callable[[Path], None]:
    return _write("config.json", json.dumps(config))


def _weights(header: bytes, data: int = 0, length: int | None = None) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        _raw(root / "model.safetensors", header, data, length)

    return change


def _tensor(entry: Any, data: int = 16) -> Callable[[Path], None]:
    header = json.dumps({"__metadata__": {"format": "pt"}, "w": entry}).encode()
    return _weights(header, data)


def _entry(dtype: Any = "F32", shape: Any = (2, 2), offsets: Any = (0, 16)) -> dict[str, Any]:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


_MIB = 1 << 20


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            _drop_tokenizer,
            f"{WHERE} has no tokenizer: a model folder needs tokenizer.json, tokenizer.model "
            "or tokenizer_config.json beside config.json; save the tokenizer into the folder "
            "too (tokenizer.save_pretrained(folder)).",
        ),
        (
            _config(["LlamaForCausalLM"]),
            f"config.json in {WHERE} must be a JSON object of keys to values, it is a list",
        ),
        (_write("config.json", '{"a": 1,}'), f"config.json in {WHERE} is not valid JSON: "),
        (_write("config.json", b'{"a": "\xff"}'), f"config.json in {WHERE} is not UTF-8 text"),
        (_write("config.json", "[" * 100_000), f"config.json in {WHERE} is not JSON berth"),
        (
            _config({"model_type": "llama", "pad": "x" * _MIB}),
            f"config.json in {WHERE} is over 1 MiB",
        ),
        (_config({"hidden_size": 64}), f"config.json in {WHERE} has neither architectures"),
        (_config({"architectures": []}), "nor model_type (such as 'llama')"),
        (_config({"architectures": [None], "model_type": 3}), "has neither architectures"),
        (_weights(b""), f"model.safetensors in {WHERE} declares a 0-byte header"),
        (
            lambda root: (root / "model.safetensors").write_bytes(b"\x10\x00\x00"),
            f"model.safetensors in {WHERE} is 3 bytes, too short for a safetensors header",
        ),
        (
            _weights(b"{}", length=100 * _MIB + 1),
            f"declares a {100 * _MIB + 1}-byte header in a 10-byte file",
        ),
        (_weights(b"{}", length=3), "declares a 3-byte header in a 10-byte file"),
        (_weights(b"{not json}"), f"model.safetensors in {WHERE} is not valid JSON: "),
        (_weights(b'{"\xff": 1}'), f"model.safetensors in {WHERE} is not UTF-8 text"),
        (_weights(b"[1, 2]"), "has a header that is not a JSON object"),
        (_tensor(3), "describes tensor 'w' with 3, not an object with dtype, shape and data_"),
        (_tensor({"shape": [1], "data_offsets": [0, 4]}), "gives tensor 'w' no dtype string"),
        (_tensor(_entry(shape=(2, -2))), "gives tensor 'w' the shape [2, -2]; a shape is a list"),
        (_tensor(_entry(shape=["2"])), "gives tensor 'w' the shape [\"2\"]"),
        (_tensor(_entry(shape=[True])), "gives tensor 'w' the shape [true]"),
        (_tensor({**_entry(), "shape": 4}), "gives tensor 'w' the shape 4"),
        (_tensor(_entry(offsets=(8, 4))), "gives tensor 'w' the data_offsets [8, 4]; they are"),
        (_tensor(_entry(offsets=(0,))), "gives tensor 'w' the data_offsets [0]"),
        (_tensor({**_entry(), "data_offsets": None}), "gives tensor 'w' the data_offsets null"),
        (
            _tensor(_entry(offsets=(0, 16)), data=8),
            f"model.safetensors in {WHERE} places tensor 'w' at bytes 0 to 16 of its data, "
            "past the end of the file (8 bytes of data); it is truncated",
        ),
        (
            _tensor(_entry(shape=(3, 2))),
            "gives tensor 'w' the shape [3, 2] of F32, which does not fill its 16 bytes",
        ),
        # A dtype berth does not know still takes at least a bit an element.
        (_tensor(_entry(dtype="F2", shape=(10**9,))), "the shape [1000000000] of F2, which"),
        (
            _write("model.safetensors.index.json", '{"weight_map": ["model.safetensors"]}'),
            f"model.safetensors.index.json in {WHERE} has no weight_map object mapping tensor",
        ),
        (
            _write("chat_template.jinja", "x" * (_MIB + 1)),
            f"chat_template.jinja in {WHERE} is over 1 MiB",
        ),
        (_write("chat_template.jinja", b"\xff\xfe"), f"chat_template.jinja in {WHERE} is not"),
    ],
)
def test_a_malformed_folder_is_refused_naming_the_file(
    tmp_path: Path, change: Callable[[Path], None], expected: str
) -> None:
    root = _folder(tmp_path)
    change(root)
    assert expected in _refusal(root)


def test_a_broken_tokenizer_config_is_refused_when_the_template_is_read_from_it(
    tmp_path: Path,
) -> None:
    root = _folder(tmp_path, template=None)
    (root / "tokenizer_config.json").write_text("{")
    assert _refusal(root).startswith(f"tokenizer_config.json in {WHERE} is not valid JSON")


def test_a_safetensors_file_with_a_dtype_berth_does_not_know_is_counted(tmp_path: Path) -> None:
    root = _folder(tmp_path, config={"model_type": "llama"})
    header = {"w": _entry(dtype="F4", shape=(8, 4), offsets=(0, 16))}
    _raw(root / "model.safetensors", json.dumps(header).encode(), data=16)
    details = describe(root, WHERE)
    assert (details["parameter_count"], details["quantization"]) == (32, "f4")


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "tokenizer.json"])
def test_a_symbolic_link_is_refused(tmp_path: Path, name: str) -> None:
    root = _folder(tmp_path)
    target = tmp_path / f"elsewhere-{name}"
    (root / name).rename(target)
    (root / name).symlink_to(target)
    assert is_hf_folder(root)
    assert _refusal(root) == (
        f"{name} in {WHERE} is a symbolic link; a model folder is registered as the files "
        "themselves: copy the file it points to in its place."
    )


def test_a_weights_entry_that_is_not_a_regular_file_is_refused_without_blocking(
    tmp_path: Path,
) -> None:
    root = _folder(tmp_path)
    os.mkfifo(root / "more.safetensors")
    assert _refusal(root) == (
        f"more.safetensors in {WHERE} is not a regular file; put the file itself there."
    )


def test_the_chat_template_file_wins_over_the_tokenizer_config(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    _json(root / "tokenizer_config.json", {"chat_template": "{{ older }}"})
    assert describe(root, WHERE)["chat_template"] == TEMPLATE
    (root / "chat_template.jinja").unlink()
    assert describe(root, WHERE)["chat_template"] == "{{ older }}"


@pytest.mark.parametrize(
    "tokenizer_config",
    [
        {"model_max_length": 512},
        {"chat_template": [{"name": "default", "template": "{{ x }}"}]},
        {"chat_template": ""},
        None,
    ],
)
def test_no_chat_template_string_is_none(tmp_path: Path, tokenizer_config: Any) -> None:
    root = _folder(tmp_path, template=None)
    if tokenizer_config is None:
        (root / "tokenizer_config.json").unlink()
    else:
        _json(root / "tokenizer_config.json", tokenizer_config)
    details = describe(root, WHERE)
    assert (details["chat_template"], details["task"]) == (None, "llm/v1/completions")


@pytest.mark.parametrize(
    ("config", "template", "task"),
    [
        ({"architectures": ["LlamaForCausalLM"]}, TEMPLATE, "llm/v1/chat"),
        ({"architectures": ["LlamaForCausalLM"]}, None, "llm/v1/completions"),
        ({"architectures": ["GPT2LMHeadModel"]}, None, "llm/v1/completions"),
        ({"architectures": ["Gemma3ForConditionalGeneration"]}, None, "llm/v1/completions"),
        ({"architectures": ["BertModel"]}, None, "llm/v1/embeddings"),
        ({"architectures": ["XLMRobertaModel", "Other"]}, None, "llm/v1/embeddings"),
        ({"architectures": ["BertForMaskedLM"]}, None, "llm/v1/completions"),
        ({"model_type": "bert"}, None, "llm/v1/completions"),
        ({"architectures": ["BertModel"]}, TEMPLATE, "llm/v1/chat"),
    ],
)
def test_the_task_follows_the_chat_template_and_the_architecture(
    tmp_path: Path, config: dict[str, Any], template: str | None, task: str
) -> None:
    assert describe(_folder(tmp_path, config, template=template), WHERE)["task"] == task


@pytest.mark.parametrize(
    ("config", "figures"),
    [
        ({"architectures": ["GPT2LMHeadModel"], "n_positions": 1024, "n_embd": 768}, (1024, 768)),
        ({"model_type": "t5", "d_model": 512}, (None, 512)),
        ({"model_type": "x", "max_position_embeddings": True, "seq_length": 4096}, (4096, None)),
        ({"model_type": "x", "max_seq_len": 4096, "max_position_embeddings": 8192}, (8192, None)),
        (
            {
                "architectures": ["Gemma3ForConditionalGeneration"],
                "text_config": {"max_position_embeddings": 131072, "hidden_size": 2560},
                "vision_config": {"hidden_size": 1152},
            },
            (131072, 2560),
        ),
        (
            {
                "model_type": "x",
                "n_positions": 512,
                "text_config": {"n_positions": 9, "d_model": 8},
            },
            (512, 8),
        ),
        ({"model_type": "x", "text_config": "not a config"}, (None, None)),
    ],
)
def test_context_and_embedding_lengths_come_from_the_config(
    tmp_path: Path, config: dict[str, Any], figures: tuple[int | None, int | None]
) -> None:
    details = describe(_folder(tmp_path, config), WHERE)
    assert (details["context_length"], details["embedding_length"]) == figures
    assert details["model_type"] == config.get("model_type")


@pytest.mark.parametrize(
    ("config", "tensors", "quantization"),
    [
        (
            {**LLAMA, "quantization_config": {"quant_method": "awq", "bits": 4}},
            TENSORS,
            "awq",
        ),
        ({"model_type": "llama", "dtype": "float16", "torch_dtype": "float32"}, TENSORS, "float16"),
        ({"model_type": "llama", "quantization_config": {"bits": 4}}, TENSORS, "bf16"),
        (
            {"model_type": "llama"},
            {"a": ("F32", (1000,)), "b": ("BF16", (10,)), "c": ("BF16", (10,))},
            "f32",
        ),
        ({"model_type": "llama"}, {}, None),
    ],
)
def test_the_quantization_is_the_configs_else_the_weights_dtype(
    tmp_path: Path, config: dict[str, Any], tensors: Tensors, quantization: str | None
) -> None:
    assert describe(_folder(tmp_path, config, tensors), WHERE)["quantization"] == quantization


def test_detect_tells_a_hugging_face_folder(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    found = detect(root, WHERE)
    assert found.format is ArtifactFormat.HUGGINGFACE
    assert found.details == describe(root, WHERE)


def test_an_mlmodel_beside_config_json_stays_mlflow(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    shutil.copytree(FAKES / "sum_mlflow", root, dirs_exist_ok=True)
    assert detect(root, WHERE).format is ArtifactFormat.MLFLOW


def test_one_gguf_file_beside_a_hugging_face_folder_stays_gguf(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    (root / SMOLLM2_FILE).symlink_to(smollm2_gguf())
    found = detect(root, WHERE)
    assert found.format is ArtifactFormat.GGUF
    assert found.details["weights"] == SMOLLM2_FILE


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors"])
def test_config_json_or_safetensors_alone_is_no_format(tmp_path: Path, missing: str) -> None:
    root = _folder(tmp_path)
    (root / missing).unlink()
    assert not is_hf_folder(root)
    with pytest.raises(InvalidParameter) as caught:
        detect(root, WHERE)
    assert "no Hugging Face-style folder (config.json + .safetensors + tokenizer)" in (
        caught.value.message
    )
