"""The GGUF header reader: the real SmolLM2 file's figures, checked against what its bytes
and its architecture say independently, and hostile or truncated headers built here."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from berth.core.errors import InvalidParameter
from berth.registry.gguf import (
    ArrayInfo,
    GgufLimits,
    Value,
    ValueType,
    describe,
    read_header,
)
from tests.support.llm import SMOLLM2_FILE, smollm2_gguf

SMOLLM2_PARAMETERS = 134_515_008
SMOLLM2_BYTES = 98_362_432
LABEL = "model.gguf in source 'here'"

# (elements per block, bytes per block) of the ggml types SmolLM2's tensors use (ggml-common.h):
# F32 is 4 bytes an element; Q4_1 a half scale, a half minimum and 32 4-bit values; Q8_0 a half
# scale and 32 bytes.
BLOCKS = {0: (1, 4), 3: (32, 20), 8: (32, 34)}


def _str(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _kv(key: str, kind: int, payload: bytes) -> bytes:
    return _str(key) + struct.pack("<I", kind) + payload


def _array(kind: int, items: Sequence[bytes]) -> bytes:
    return struct.pack("<IQ", kind, len(items)) + b"".join(items)


def _gguf(
    values: Sequence[bytes],
    tensors: Sequence[tuple[str, tuple[int, ...], int, int]] = (),
    version: int = 3,
) -> bytes:
    infos = [
        _str(name) + struct.pack(f"<I{len(shape)}QIQ", len(shape), *shape, kind, offset)
        for name, shape, kind, offset in tensors
    ]
    preamble = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(values))
    return preamble + b"".join(values) + b"".join(infos)


def test_the_smollm2_file_is_described_from_its_header() -> None:
    details = describe(smollm2_gguf(), LABEL)
    template = details.pop("chat_template")
    assert details == {
        "weights": SMOLLM2_FILE,
        "architecture": "llama",
        "name": "Smollm2 135M 8k Lc100K Mix1 Ep2",
        "parameter_count": SMOLLM2_PARAMETERS,
        "context_length": 8192,
        "embedding_length": 576,
        "quantization": "Q4_1",
        "pooling_type": None,
        "task": "llm/v1/chat",
        "file_size_bytes": SMOLLM2_BYTES,
    }
    assert template.startswith("{% for message in messages %}")
    assert "<|im_start|>" in template and template.endswith("{% endif %}")


def test_the_parameter_count_matches_the_llama_architecture_and_the_size_label() -> None:
    """Counted again from the hyperparameters a llama block is made of (tied embeddings)."""
    meta = read_header(smollm2_gguf(), LABEL).metadata
    vocab = meta["tokenizer.ggml.tokens"]
    assert isinstance(vocab, ArrayInfo) and vocab.item_type is ValueType.STRING
    width, hidden = _int(meta, "llama.embedding_length"), _int(meta, "llama.feed_forward_length")
    heads, kv_heads = (
        _int(meta, "llama.attention.head_count"),
        _int(meta, "llama.attention.head_count_kv"),
    )
    kv_width = width // heads * kv_heads
    block = 2 * width * width + 2 * width * kv_width + 3 * width * hidden + 2 * width
    counted = vocab.length * width + _int(meta, "llama.block_count") * block + width
    assert counted == SMOLLM2_PARAMETERS
    assert meta["general.size_label"] == f"{round(SMOLLM2_PARAMETERS / 1e6)}M" == "135M"


def test_the_tensor_shapes_account_for_every_byte_of_the_data_section() -> None:
    """Each tensor's bytes on disk follow from its shape and type; laid end to end at the
    file's alignment they fill the file exactly, so no shape was misread."""
    header = read_header(smollm2_gguf(), LABEL)
    alignment = 32
    end = 0
    for tensor in sorted(header.tensors, key=lambda t: t.offset):
        assert tensor.offset == -(-end // alignment) * alignment, tensor.name
        per_block, block_bytes = BLOCKS[tensor.type]
        assert tensor.shape[0] % per_block == 0
        end = tensor.offset + tensor.elements // per_block * block_bytes
    assert header.data_offset + end == header.file_size == SMOLLM2_BYTES
    assert (header.version, len(header.tensors)) == (3, 272)


@pytest.mark.parametrize(
    ("cut", "expected"),
    [
        (10, "is 10 bytes, too short for a GGUF header"),
        (30, "ends inside its header: the length of metadata key 0 at byte 24"),
        (200_000, "ends inside its header: "),  # inside the vocabulary
        (1_700_000, "ends inside its header: "),  # inside the tensor infos
        (1_785_664 + 4096, "places tensor 'blk.0.attn_norm.weight' at byte 31866688, past"),
    ],
)
def test_a_truncated_file_is_refused(tmp_path: Path, cut: int, expected: str) -> None:
    with smollm2_gguf().open("rb") as whole:
        (tmp_path / "model.gguf").write_bytes(whole.read(cut))
    message = _refusal(tmp_path / "model.gguf")
    assert message.startswith(LABEL)
    assert expected in message
    if "ends inside" in message:
        assert "it is truncated or damaged, copy or download it again" in message


def test_a_header_past_the_limit_is_refused() -> None:
    with pytest.raises(InvalidParameter) as caught:
        read_header(smollm2_gguf(), LABEL, GgufLimits(max_header_bytes=1 << 20))
    assert "has a header longer than berth reads (1048576 bytes)" in caught.value.message
    assert "'tokenizer.ggml.merges'" in caught.value.message


def test_every_value_type_is_read(tmp_path: Path) -> None:
    values = [
        _kv("u8", 0, b"\xff"),
        _kv("i8", 1, struct.pack("<b", -2)),
        _kv("u16", 2, struct.pack("<H", 65535)),
        _kv("i16", 3, struct.pack("<h", -3)),
        _kv("u32", 4, struct.pack("<I", 7)),
        _kv("i32", 5, struct.pack("<i", -4)),
        _kv("f32", 6, struct.pack("<f", 0.5)),
        _kv("bool", 7, b"\x01"),
        _kv("text", 8, _str("héllo")),
        _kv("u64", 10, struct.pack("<Q", 2**64 - 1)),
        _kv("i64", 11, struct.pack("<q", -(2**63))),
        _kv("f64", 12, struct.pack("<d", 1e300)),
        _kv("floats", 9, _array(6, [struct.pack("<f", 1.0)] * 3)),
        _kv("words", 9, _array(8, [_str("a"), _str("")])),
        _kv("nested", 9, _array(9, [_array(4, [struct.pack("<I", 1)])] * 2)),
    ]
    header = read_header(_file(tmp_path, _gguf(values, version=2)), LABEL)
    assert header.version == 2
    assert header.metadata == {
        "u8": 255,
        "i8": -2,
        "u16": 65535,
        "i16": -3,
        "u32": 7,
        "i32": -4,
        "f32": 0.5,
        "bool": True,
        "text": "héllo",
        "u64": 2**64 - 1,
        "i64": -(2**63),
        "f64": 1e300,
        "floats": ArrayInfo(ValueType.FLOAT32, 3),
        "words": ArrayInfo(ValueType.STRING, 2),
        "nested": ArrayInfo(ValueType.ARRAY, 2),
    }


def test_a_large_vocabulary_is_skipped_not_kept(tmp_path: Path) -> None:
    """Gemma's 262,144 tokens, well inside the limits; only the array's length is kept."""
    tokens = _array(8, [_str(f"t{i}") for i in range(262_144)])
    values = [
        _kv("general.architecture", 8, _str("gemma3")),
        _kv("tokenizer.ggml.tokens", 9, tokens),
    ]
    header = read_header(_file(tmp_path, _gguf(values)), LABEL)
    assert header.metadata["tokenizer.ggml.tokens"] == ArrayInfo(ValueType.STRING, 262_144)


def test_quantization_falls_back_to_the_type_holding_most_parameters(tmp_path: Path) -> None:
    tensors = [("embed", (64, 1000), 1, 0), ("a", (64, 64), 12, 128_000), ("b", (64,), 0, 132_096)]
    values = [_kv("general.architecture", 8, _str("qwen2"))]
    details = describe(_file(tmp_path, _gguf(values, tensors), data=140_000), LABEL)
    assert (details["quantization"], details["parameter_count"]) == ("F16", 64_000 + 4096 + 64)
    unknown = [*values, _kv("general.file_type", 4, struct.pack("<I", 999))]
    assert (
        describe(_file(tmp_path, _gguf(unknown, tensors), data=140_000), LABEL)["quantization"]
        == "F16"
    )
    named = [*values, _kv("general.file_type", 4, struct.pack("<I", 15))]
    assert (
        describe(_file(tmp_path, _gguf(named, tensors), data=140_000), LABEL)["quantization"]
        == "Q4_K_M"
    )


def test_optional_figures_of_the_wrong_type_are_left_out(tmp_path: Path) -> None:
    values = [
        _kv("general.architecture", 8, _str("phi3")),
        _kv("general.name", 4, struct.pack("<I", 1)),
        _kv("phi3.context_length", 7, b"\x01"),
        _kv("phi3.embedding_length", 8, _str("3072")),
    ]
    details = describe(_file(tmp_path, _gguf(values)), LABEL)
    assert details["name"] is details["context_length"] is details["embedding_length"] is None
    assert details["quantization"] is None and details["parameter_count"] == 0


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([_kv("general.architecture", 8, _str("llama"))], ("llm/v1/completions", None)),
        (
            [
                _kv("general.architecture", 8, _str("llama")),
                _kv("tokenizer.chat_template", 8, _str("{{ messages }}")),
            ],
            ("llm/v1/chat", None),
        ),
        # A decoder converted as an embedding model (Qwen3-Embedding): pooled, so it embeds,
        # whatever chat template its tokenizer kept.
        (
            [
                _kv("general.architecture", 8, _str("qwen3")),
                _kv("qwen3.pooling_type", 5, struct.pack("<i", 3)),
                _kv("tokenizer.chat_template", 8, _str("{{ messages }}")),
            ],
            ("llm/v1/embeddings", 3),
        ),
        (
            [
                _kv("general.architecture", 8, _str("bert")),
                _kv("bert.pooling_type", 5, struct.pack("<i", 1)),
            ],
            ("llm/v1/embeddings", 1),
        ),
        # An encoder embeds even when its converter wrote no pooling type.
        ([_kv("general.architecture", 8, _str("nomic-bert"))], ("llm/v1/embeddings", None)),
        # Only the architecture's own key counts, and only as an integer.
        (
            [
                _kv("general.architecture", 8, _str("llama")),
                _kv("bert.pooling_type", 5, struct.pack("<i", 1)),
                _kv("llama.pooling_type", 8, _str("mean")),
            ],
            ("llm/v1/completions", None),
        ),
    ],
)
def test_the_task_follows_pooling_encoders_and_the_chat_template(
    tmp_path: Path, values: list[bytes], expected: tuple[str, int | None]
) -> None:
    details = describe(_file(tmp_path, _gguf(values)), LABEL)
    assert (details["task"], details["pooling_type"]) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"PK\x03\x04" + bytes(40), "is not a GGUF file: it starts with b'PK\\x03\\x04'"),
        (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "is GGUF version 1; berth reads versions 2 and 3"),
        (b"GGUF" + struct.pack(">IQQ", 3, 0, 0), "is a big-endian GGUF file (version 3)"),
        (b"GGUF" + struct.pack("<IQQ", 3, 2**63, 0), f"declares {2**63} tensors; berth reads at"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 2**64 - 1), f"declares {2**64 - 1} metadata key/"),
    ],
)
def test_a_wrong_preamble_is_refused(tmp_path: Path, data: bytes, expected: str) -> None:
    assert expected in _refusal(_file(tmp_path, data))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([struct.pack("<Q", 2**62) + b"key"], f"metadata key 0 at byte 32 takes {2**62} bytes"),
        ([_kv("k", 8, struct.pack("<Q", 2**63))], f"the value of 'k' at byte 45 takes {2**63}"),
        ([_kv("k", 9, struct.pack("<IQ", 0, 2**40))], f"declares {2**40} items in one array"),
        ([_kv("k", 9, struct.pack("<IQ", 4, 1000))], "the items of 'k' at byte 49 takes 4000"),
        ([_kv("k", 9, struct.pack("<IQ", 8, 3) + _str("a"))], "the length of item 1 of 'k'"),
        ([_kv("k", 9, _array(9, [_array(9, [_array(0, [])])]))], "nests arrays 3 deep in 'k'"),
        ([_kv("k", 13, b"")], "gives the value of 'k' the type 13, which GGUF does not define"),
        ([_kv("k", 9, struct.pack("<IQ", 77, 0))], "gives the items of 'k' the type 77"),
        ([_kv("k", 7, b"\x01"), _kv("k", 7, b"\x00")], "has the metadata key 'k' twice"),
        ([struct.pack("<Q", 2) + b"\xff\xfe"], "has metadata key 0 that is not UTF-8"),
        ([_kv("general.alignment", 4, struct.pack("<I", 48))], "gives general.alignment 48"),
    ],
)
def test_a_hostile_metadata_section_is_refused(
    tmp_path: Path, values: list[bytes], expected: str
) -> None:
    assert expected in _refusal(_file(tmp_path, _gguf(values)))


@pytest.mark.parametrize(
    ("tensors", "expected"),
    [
        ([("w", (1, 1, 1, 1, 1), 0, 0)], "gives tensor 'w' 5 dimensions; ggml tensors have 1 to 4"),
        ([("w", (2**63, 1), 0, 0)], "gives tensor 'w' the shape"),
        ([("w", (2**32, 2**32), 0, 0)], "past 2**63 elements"),
        ([("w", (4,), 0, 0), ("w", (4,), 0, 32)], "has the tensor 'w' twice"),
        ([("w", (4,), 0, 8)], "places tensor 'w' at offset 8, which is not a multiple of"),
        ([("w", (4,), 0, 2**40)], "places tensor 'w' at byte"),
    ],
)
def test_hostile_tensor_infos_are_refused(
    tmp_path: Path, tensors: list[tuple[str, tuple[int, ...], int, int]], expected: str
) -> None:
    assert expected in _refusal(_file(tmp_path, _gguf([], tensors), data=64))


def test_a_file_without_an_architecture_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter) as caught:
        describe(_file(tmp_path, _gguf([_kv("general.name", 8, _str("x"))])), LABEL)
    assert caught.value.message == (
        f"{LABEL} has no general.architecture string in its metadata, so llama.cpp cannot "
        "load it; convert the model again with a current llama.cpp (convert_hf_to_gguf.py)."
    )


def _refusal(path: Path) -> str:
    with pytest.raises(InvalidParameter) as caught:
        read_header(path, LABEL)
    return caught.value.message


def _int(meta: Mapping[str, Value], key: str) -> int:
    value = meta[key]
    assert isinstance(value, int)
    return value


def _file(tmp_path: Path, header: bytes, data: int = 0) -> Path:
    """``header`` padded to the default alignment, then ``data`` bytes of tensor data."""
    path = tmp_path / "model.gguf"
    path.write_bytes(header + bytes(-len(header) % 32 + data))
    return path
