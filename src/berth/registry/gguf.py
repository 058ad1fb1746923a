"""Reading a GGUF file's header: what a version's details say about an open LLM.

A GGUF file (llama.cpp's format, versions 2 and 3) is a header — magic, version, tensor count,
metadata key/values, tensor infos — then the tensor data. Only the header is read, through a
memory map, so no page of tensor data is touched. Registration reads files callers send, so
every count and length is checked against what is left of the header before anything is read
or allocated for it, and against `GgufLimits`: a hostile or truncated header is an
``InvalidParameter`` that says what is wrong, never a ``MemoryError`` or a long loop. What is
kept is bounded by the header cap: every metadata scalar and string, and of each array only
its item type and length (tokenizer vocabularies are skipped, not read).
"""

from __future__ import annotations

import mmap
import struct
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from berth.core.errors import InvalidParameter

MAGIC = b"GGUF"
VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4
"""A ggml tensor has at most four dimensions (``GGML_MAX_DIMS``)."""
_INT64_MAX = (1 << 63) - 1
_MIB = 1 << 20
ENCODER_ARCHITECTURES = frozenset(
    {"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "neo-bert", "modern-bert", "t5encoder"}
)
"""The encoder architectures llama.cpp serves: they embed text and generate none."""


class ValueType(IntEnum):
    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


_SCALARS = {
    ValueType.UINT8: struct.Struct("<B"),
    ValueType.INT8: struct.Struct("<b"),
    ValueType.UINT16: struct.Struct("<H"),
    ValueType.INT16: struct.Struct("<h"),
    ValueType.UINT32: struct.Struct("<I"),
    ValueType.INT32: struct.Struct("<i"),
    ValueType.FLOAT32: struct.Struct("<f"),
    ValueType.BOOL: struct.Struct("<?"),
    ValueType.UINT64: struct.Struct("<Q"),
    ValueType.INT64: struct.Struct("<q"),
    ValueType.FLOAT64: struct.Struct("<d"),
}
_U32 = _SCALARS[ValueType.UINT32]
_U64 = _SCALARS[ValueType.UINT64]

# llama.cpp's names: general.file_type is a llama_ftype (llama.h), a tensor's type a ggml_type
# (ggml.h). Numbers they retired are left out; an unknown one is shown as its number.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 4: "Q4_1_SOME_F16", 7: "Q8_0", 8: "Q5_0",
    9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S",
    15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS",
    21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S",
    27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
    36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}  # fmt: skip
TENSOR_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
    10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS",
    17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S",
    23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M",
    30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4", 40: "NVFP4", 41: "Q1_0",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class GgufLimits:
    """What a header may hold. Real ones are far inside: Llama 3's header is about 8 MB,
    with a 128,256-token vocabulary and 280,147 merges, 30-odd keys and 291 tensors."""

    max_header_bytes: int = 64 * _MIB
    """Everything kept is read from these bytes, so this also bounds the memory used."""
    max_metadata: int = 4_096
    max_tensors: int = 65_536
    max_array_length: int = 1 << 20
    max_array_depth: int = 2
    """An array of arrays, and no deeper."""


@dataclass(frozen=True, slots=True)
class ArrayInfo:
    """An array value, whose items are skipped, not kept."""

    item_type: ValueType
    length: int


Value = bool | int | float | str | ArrayInfo


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type: int
    """A ggml_type number (`TENSOR_TYPES`)."""
    offset: int
    """From the start of the data section."""

    @property
    def elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass(frozen=True, slots=True)
class GgufHeader:
    version: int
    metadata: Mapping[str, Value]
    tensors: tuple[TensorInfo, ...]
    data_offset: int
    """Where the tensor data starts: the header's end, aligned."""
    file_size: int

    @property
    def parameter_count(self) -> int:
        return sum(tensor.elements for tensor in self.tensors)

    @property
    def quantization(self) -> str | None:
        """llama.cpp's name for ``general.file_type``, else the tensor type holding most
        parameters (a file converted without the key)."""
        file_type = _integer(self.metadata.get("general.file_type"))
        if file_type in FILE_TYPES:
            return FILE_TYPES[file_type]
        weights: Counter[int] = Counter()
        for tensor in self.tensors:
            weights[tensor.type] += tensor.elements
        if not weights:
            return None
        most, _ = weights.most_common(1)[0]
        return TENSOR_TYPES.get(most, f"type {most}")


def describe(path: Path, label: str, limits: GgufLimits | None = None) -> dict[str, Any]:
    """The details a GGUF model version shows, read from the header of the file at ``path``;
    ``label`` names the file in errors."""
    header = read_header(path, label, limits)
    architecture = header.metadata.get("general.architecture")
    if not isinstance(architecture, str) or not architecture:
        raise InvalidParameter(
            f"{label} has no general.architecture string in its metadata, so llama.cpp cannot "
            "load it; convert the model again with a current llama.cpp (convert_hf_to_gguf.py)."
        )
    name = header.metadata.get("general.name")
    template = header.metadata.get("tokenizer.chat_template")
    chat_template = template if isinstance(template, str) else None
    pooling_type = _integer(header.metadata.get(f"{architecture}.pooling_type"))
    return {
        "weights": path.name,
        "architecture": architecture,
        "name": name if isinstance(name, str) else None,
        "parameter_count": header.parameter_count,
        "context_length": _integer(header.metadata.get(f"{architecture}.context_length")),
        "embedding_length": _integer(header.metadata.get(f"{architecture}.embedding_length")),
        "quantization": header.quantization,
        "pooling_type": pooling_type,
        "chat_template": chat_template,
        "task": _task(architecture, pooling_type, chat_template),
        "file_size_bytes": header.file_size,
    }


def _task(architecture: str, pooling_type: int | None, chat_template: str | None) -> str:
    """What the model is queried for: a pooling type is written only for models that embed
    (llama.cpp's ``--pooling``), and a chat template only for models tuned to chat."""
    if pooling_type is not None or architecture in ENCODER_ARCHITECTURES:
        return "llm/v1/embeddings"
    return "llm/v1/chat" if chat_template else "llm/v1/completions"


def read_header(path: Path, label: str, limits: GgufLimits | None = None) -> GgufHeader:
    """The header of the GGUF file at ``path``, checked against ``limits``."""
    limits = limits or GgufLimits()
    try:
        with path.open("rb") as file:
            size = path.stat().st_size
            if size < len(MAGIC) + 4 + 8 + 8:
                raise InvalidParameter(
                    f"{label} is {size} bytes, too short for a GGUF header; the file is "
                    "truncated or is not a GGUF model."
                )
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _Reader(data, label, limits).header()
    except OSError as exc:
        raise InvalidParameter(f"{label} cannot be read: {exc.strerror or exc}.") from exc


def _integer(value: Value | None) -> int | None:
    """An integer metadata value (a bool is not one)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Reader:
    """A cursor over the header that checks each read before making it."""

    def __init__(self, data: mmap.mmap, label: str, limits: GgufLimits) -> None:
        self._data = data
        self._label = label
        self._limits = limits
        self._size = len(data)
        self._end = min(self._size, limits.max_header_bytes)
        self._pos = 0

    def header(self) -> GgufHeader:
        version = self._version()
        tensor_count = self._count("the tensor count", self._limits.max_tensors, "tensors")
        kv_count = self._count(
            "the metadata count", self._limits.max_metadata, "metadata key/values"
        )
        metadata = self._metadata(kv_count)
        tensors = self._tensors(tensor_count)
        alignment = self._alignment(metadata)
        data_offset = -(-self._pos // alignment) * alignment
        for tensor in tensors:
            self._check_placement(tensor, data_offset, alignment)
        return GgufHeader(version, metadata, tensors, data_offset, self._size)

    def _version(self) -> int:
        magic = bytes(self._data[: len(MAGIC)])
        if magic != MAGIC:
            raise self._error(
                f"is not a GGUF file: it starts with {magic!r}, not {MAGIC!r}. berth serves "
                "open LLMs as llama.cpp GGUF files (convert others with llama.cpp's "
                "convert_hf_to_gguf.py)"
            )
        self._pos = len(MAGIC)
        version = self._u32("the version")
        if version in VERSIONS:
            return version
        swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
        if swapped in VERSIONS:
            raise self._error(
                f"is a big-endian GGUF file (version {swapped}); llama.cpp on this machine "
                "reads little-endian files: convert it again without --bigendian"
            )
        raise self._error(
            f"is GGUF version {version}; berth reads versions 2 and 3 (convert the model "
            "again with a current llama.cpp)"
        )

    def _metadata(self, count: int) -> dict[str, Value]:
        metadata: dict[str, Value] = {}
        for index in range(count):
            key = self._string(f"metadata key {index}", strict=True)
            if key in metadata:
                raise self._error(f"has the metadata key {key!r} twice")
            kind = self._u32(f"the type of {key!r}")
            metadata[key] = self._value(kind, key, depth=0)
        return metadata

    def _value(self, kind: int, key: str, depth: int) -> Value:
        value_type = self._value_type(kind, f"the value of {key!r}")
        if value_type is ValueType.STRING:
            return self._string(f"the value of {key!r}")
        if value_type is ValueType.ARRAY:
            return self._array(key, depth + 1)
        scalar = _SCALARS[value_type]
        value: bool | int | float = scalar.unpack_from(
            self._data, self._take(scalar.size, f"the value of {key!r}")
        )[0]
        return value

    def _array(self, key: str, depth: int) -> ArrayInfo:
        if depth > self._limits.max_array_depth:
            raise self._error(
                f"nests arrays {depth} deep in {key!r}; berth reads at most "
                f"{self._limits.max_array_depth} (an array of arrays)"
            )
        item_type = self._value_type(
            self._u32(f"the item type of {key!r}"), f"the items of {key!r}"
        )
        length = self._count(
            f"the length of {key!r}", self._limits.max_array_length, "items in one array"
        )
        if item_type is ValueType.STRING:
            self._skip_strings(length, key)
        elif item_type is ValueType.ARRAY:
            for _ in range(length):
                self._array(key, depth + 1)
        else:
            self._take(length * _SCALARS[item_type].size, f"the items of {key!r}")
        return ArrayInfo(item_type, length)

    def _value_type(self, kind: int, what: str) -> ValueType:
        try:
            return ValueType(kind)
        except ValueError:
            raise self._error(
                f"gives {what} the type {kind}, which GGUF does not define (0 to 12)"
            ) from None

    def _skip_strings(self, count: int, key: str) -> None:
        """Vocabularies are hundreds of thousands of strings: the loop does only the checks."""
        data, pos, end, size = self._data, self._pos, self._end, _U64.size
        for index in range(count):
            if end - pos < size:
                raise self._past(pos, size, f"the length of item {index} of {key!r}")
            length = _U64.unpack_from(data, pos)[0]
            pos += size
            if length > end - pos:
                raise self._past(pos, length, f"item {index} of {key!r}")
            pos += length
        self._pos = pos

    def _tensors(self, count: int) -> tuple[TensorInfo, ...]:
        tensors: list[TensorInfo] = []
        names: set[str] = set()
        for index in range(count):
            name = self._string(f"the name of tensor {index}", strict=True)
            if name in names:
                raise self._error(f"has the tensor {name!r} twice")
            names.add(name)
            dims = self._u32(f"the dimension count of tensor {name!r}")
            if not 1 <= dims <= MAX_DIMS:
                raise self._error(
                    f"gives tensor {name!r} {dims} dimensions; ggml tensors have 1 to {MAX_DIMS}"
                )
            shape = tuple(self._u64(f"the shape of tensor {name!r}") for _ in range(dims))
            tensor = TensorInfo(
                name,
                shape,
                self._u32(f"the type of tensor {name!r}"),
                self._u64(f"the offset of tensor {name!r}"),
            )
            if max(shape) > _INT64_MAX or tensor.elements > _INT64_MAX:
                raise self._error(f"gives tensor {name!r} the shape {shape}, past 2**63 elements")
            tensors.append(tensor)
        return tuple(tensors)

    def _alignment(self, metadata: Mapping[str, Value]) -> int:
        given = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        alignment = _integer(given)
        if alignment is None or alignment <= 0 or alignment & (alignment - 1):
            raise self._error(f"gives general.alignment {given!r}; it must be a power of two")
        return alignment

    def _check_placement(self, tensor: TensorInfo, data_offset: int, alignment: int) -> None:
        if tensor.offset % alignment:
            raise self._error(
                f"places tensor {tensor.name!r} at offset {tensor.offset}, which is not a "
                f"multiple of the alignment {alignment}"
            )
        start = data_offset + tensor.offset
        if start + (1 if tensor.elements else 0) > self._size:
            raise self._error(
                f"places tensor {tensor.name!r} at byte {start}, past the end of the file "
                f"({self._size} bytes); the file is truncated: copy or download it again"
            )

    def _count(self, what: str, limit: int, things: str) -> int:
        count = self._u64(what)
        if count > limit:
            raise self._error(f"declares {count} {things}; berth reads at most {limit}")
        return count

    def _string(self, what: str, strict: bool = False) -> str:
        length = self._u64(f"the length of {what}")
        start = self._take(length, what)
        raw = bytes(self._data[start : start + length])
        try:
            return raw.decode("utf-8", "strict" if strict else "replace")
        except UnicodeDecodeError as exc:
            raise self._error(f"has {what} that is not UTF-8 ({exc.reason})") from exc

    def _u32(self, what: str) -> int:
        value: int = _U32.unpack_from(self._data, self._take(_U32.size, what))[0]
        return value

    def _u64(self, what: str) -> int:
        value: int = _U64.unpack_from(self._data, self._take(_U64.size, what))[0]
        return value

    def _take(self, length: int, what: str) -> int:
        """Move past ``length`` bytes, once they are known to be there; returns where they
        start."""
        start = self._pos
        if length > self._end - start:
            raise self._past(start, length, what)
        self._pos = start + length
        return start

    def _past(self, start: int, length: int, what: str) -> InvalidParameter:
        if start + length > self._size:
            return self._error(
                f"ends inside its header: {what} at byte {start} takes {length} bytes and "
                f"the file has {self._size}; it is truncated or damaged, copy or download it "
                "again"
            )
        return self._error(
            f"has a header longer than berth reads ({self._limits.max_header_bytes} bytes): "
            f"{what} at byte {start} takes {length} bytes"
        )

    def _error(self, problem: str) -> InvalidParameter:
        return InvalidParameter(f"{self._label} {problem}.")
