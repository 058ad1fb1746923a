"""Describing a Hugging Face-style model folder (what ``save_pretrained`` writes), never loading it.

Such a folder is ``config.json``, the weights in one or more ``.safetensors`` files (shards
listed by ``model.safetensors.index.json``) and the tokenizer's files. Only small JSON
documents, each within a cap, and the header of each safetensors file are read; no tensor
byte is. A safetensors file is an 8-byte little-endian header length, a JSON header mapping
each tensor to its dtype, shape and byte range, then the bytes: every length and offset is
checked against the file before it is used. The folder is untrusted input, so a symbolic
link, or anything but a regular file, where a file is expected is refused.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard

from berth.core.errors import InvalidParameter

CONFIG = "config.json"
SAFETENSORS_SUFFIX = ".safetensors"
INDEX = "model.safetensors.index.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", TOKENIZER_CONFIG)
CHAT_TEMPLATE = "chat_template.jinja"
METADATA = "__metadata__"
"""The safetensors header's one entry that is not a tensor."""

_MIB = 1 << 20
MAX_CONFIG_BYTES = _MIB
MAX_CHAT_TEMPLATE_BYTES = _MIB
MAX_TOKENIZER_CONFIG_BYTES = 16 * _MIB
"""tokenizer_config.json may carry the added tokens' table: a few MB for large vocabularies."""
MAX_INDEX_BYTES = 16 * _MIB
"""A weight map names each tensor once: hundreds of KB for the largest open models."""
MAX_HEADER_BYTES = 100 * _MIB
"""safetensors' own reader refuses headers past 100 MB."""

CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length")
EMBEDDING_KEYS = ("hidden_size", "d_model", "n_embd")
GENERATIVE_SUFFIXES = ("ForCausalLM", "ForConditionalGeneration", "LMHeadModel")
"""transformers' heads that generate text; a bare ``...Model`` is an encoder's hidden states."""

DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4,
    "U64": 8, "I64": 8, "F64": 8, "C64": 8,
}  # fmt: skip
"""Bytes an element of each safetensors dtype takes; a dtype not here (a sub-byte one, or
one newer than this table) is held only to at least a bit an element."""

_LENGTH = struct.Struct("<Q")


def is_hf_folder(root: Path) -> bool:
    """Whether ``root`` looks like a Hugging Face-style folder (validated by `describe`)."""
    return (root / CONFIG).is_file() and any(
        path.suffix == SAFETENSORS_SUFFIX and path.is_file() for path in root.iterdir()
    )


def describe(root: Path, where: str) -> dict[str, Any]:
    """The details a Hugging Face-style model version shows, after checking that an engine
    can load it; ``where`` names the folder in errors. The keys it shares with
    `gguf.describe` mean the same."""
    config = _json_object(root / CONFIG, where, MAX_CONFIG_BYTES)
    architecture, model_type = _architecture(config, f"{CONFIG} in {where}")
    if not any(_present(root / name, where) for name in TOKENIZER_FILES):
        raise InvalidParameter(
            f"{where} has no tokenizer: a model folder needs {', '.join(TOKENIZER_FILES[:-1])} "
            f"or {TOKENIZER_FILES[-1]} beside {CONFIG}; save the tokenizer into the folder "
            "too (tokenizer.save_pretrained(folder))."
        )
    weights = _weights(root, where)
    dtypes: Counter[str] = Counter()
    file_size = 0
    for name in weights:
        found, size = _read_safetensors(root / name, f"{name} in {where}")
        dtypes.update(found)
        file_size += size
    template = _chat_template(root, where)
    return {
        "weights": weights,
        "architecture": architecture,
        "model_type": model_type,
        "parameter_count": sum(dtypes.values()),
        "context_length": _first_integer(config, CONTEXT_KEYS),
        "embedding_length": _first_integer(config, EMBEDDING_KEYS),
        "quantization": _quantization(config, dtypes),
        "chat_template": template,
        "task": _task(architecture, template),
        "file_size_bytes": file_size,
    }


def _architecture(config: Mapping[str, Any], label: str) -> tuple[str, str | None]:
    """The model's class (``architectures[0]``, else ``model_type``) and its ``model_type``."""
    model_type = config.get("model_type")
    model_type = model_type if isinstance(model_type, str) and model_type else None
    architectures = config.get("architectures")
    if (
        isinstance(architectures, list)
        and architectures
        and all(isinstance(name, str) and name for name in architectures)
    ):
        return architectures[0], model_type
    if model_type is None:
        raise InvalidParameter(
            f"{label} has neither architectures (a list of model classes such as "
            "['LlamaForCausalLM']) nor model_type (such as 'llama'), so no engine can tell "
            "which model to build; write the folder again with save_pretrained, or add one."
        )
    return model_type, model_type


def _weights(root: Path, where: str) -> list[str]:
    """The safetensors files the model loads: the shards its index names when it has one
    (as vLLM and transformers do, so a consolidated copy beside them is not counted twice),
    else every one at the top of the folder."""
    present = sorted(p.name for p in root.iterdir() if p.suffix == SAFETENSORS_SUFFIX)
    if not _present(root / INDEX, where):
        return present
    label = f"{INDEX} in {where}"
    weight_map = _json_object(root / INDEX, where, MAX_INDEX_BYTES).get("weight_map")
    if not isinstance(weight_map, dict) or not all(
        isinstance(shard, str) for shard in weight_map.values()
    ):
        raise InvalidParameter(
            f"{label} has no weight_map object mapping tensor names to shard files; write the "
            "folder again with save_pretrained, or remove the index if one file holds every "
            "weight."
        )
    shards = sorted(set(weight_map.values()))
    missing = [shard for shard in shards if shard not in present]
    if missing:
        raise InvalidParameter(
            f"{label} names {len(missing)} shard{'s' if len(missing) > 1 else ''} the folder "
            f"does not hold ({_some(missing)}); copy every file its weight_map lists into the "
            "folder, beside config.json."
        )
    return shards


def _read_safetensors(path: Path, label: str) -> tuple[Counter[str], int]:
    """(parameters per dtype, file size) of one safetensors file, from its header alone."""
    with _open(path, label) as file:
        size = os.fstat(file.fileno()).st_size
        if size < _LENGTH.size:
            raise InvalidParameter(
                f"{label} is {size} bytes, too short for a safetensors header; the file is "
                "truncated or is not a safetensors file."
            )
        (length,) = _LENGTH.unpack(file.read(_LENGTH.size))
        if length == 0 or length > MAX_HEADER_BYTES or length > size - _LENGTH.size:
            raise InvalidParameter(
                f"{label} declares a {length}-byte header in a {size}-byte file; a safetensors "
                f"header is 1 byte to {MAX_HEADER_BYTES // _MIB} MiB and inside the file: it is "
                "truncated or is not a safetensors file, copy or save it again."
            )
        raw = file.read(length)
    if len(raw) != length:
        raise InvalidParameter(f"{label} changed while it was read; register it again.")
    header = _parse_json(raw, label)
    if not isinstance(header, dict):
        raise InvalidParameter(f"{label} has a header that is not a JSON object.")
    data_size = size - _LENGTH.size - length
    dtypes: Counter[str] = Counter()
    for name, entry in header.items():
        if name != METADATA:
            dtype, elements = _tensor(name, entry, data_size, label)
            dtypes[dtype] += elements
    return dtypes, size


def _tensor(name: str, entry: Any, data_size: int, label: str) -> tuple[str, int]:
    """(dtype, element count) of one header entry, checked against the bytes it claims."""
    if not isinstance(entry, dict):
        raise InvalidParameter(
            f"{label} describes tensor {name!r} with {_short(entry)}, not an object "
            "with dtype, shape and data_offsets; the file is damaged, save it again."
        )
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or not dtype:
        raise InvalidParameter(f"{label} gives tensor {name!r} no dtype string.")
    if not isinstance(shape, list) or not all(_is_integer(d) and d >= 0 for d in shape):
        raise InvalidParameter(
            f"{label} gives tensor {name!r} the shape {_short(shape)}; a shape is a "
            "list of integers >= 0."
        )
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_integer(o) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise InvalidParameter(
            f"{label} gives tensor {name!r} the data_offsets {_short(offsets)}; they "
            "are [begin, end] with 0 <= begin <= end."
        )
    if offsets[1] > data_size:
        raise InvalidParameter(
            f"{label} places tensor {name!r} at bytes {offsets[0]} to {offsets[1]} of its "
            f"data, past the end of the file ({data_size} bytes of data); it is truncated: "
            "copy or download it again."
        )
    elements = 1
    for dim in shape:
        elements *= dim
    span = offsets[1] - offsets[0]
    width = DTYPE_BYTES.get(dtype)
    if (width is not None and elements * width != span) or elements > 8 * span:
        raise InvalidParameter(
            f"{label} gives tensor {name!r} the shape {_short(shape)} of {dtype}, which does not "
            f"fill its {span} bytes; the file is damaged, save it again."
        )
    return dtype, elements


def _quantization(config: Mapping[str, Any], dtypes: Counter[str]) -> str | None:
    """The quantization method when the config names one, else the dtype the config says
    the weights are in, else the safetensors dtype holding the most parameters."""
    quantization = config.get("quantization_config")
    if isinstance(quantization, dict) and isinstance(quantization.get("quant_method"), str):
        method: str = quantization["quant_method"]
        return method
    for key in ("dtype", "torch_dtype"):
        value = config.get(key)
        if isinstance(value, str):
            return value
    if not dtypes:
        return None
    return dtypes.most_common(1)[0][0].lower()


def _chat_template(root: Path, where: str) -> str | None:
    """``chat_template.jinja`` (what transformers writes now), else ``tokenizer_config.json``'s
    ``chat_template`` string (what it wrote before)."""
    path = root / CHAT_TEMPLATE
    if _present(path, where):
        label = f"{CHAT_TEMPLATE} in {where}"
        raw = _read(path, label, MAX_CHAT_TEMPLATE_BYTES)
        try:
            return raw.decode("utf-8") or None
        except UnicodeDecodeError as exc:
            raise InvalidParameter(f"{label} is not UTF-8 text ({exc.reason}).") from exc
    if not _present(root / TOKENIZER_CONFIG, where):
        return None
    template = _json_object(root / TOKENIZER_CONFIG, where, MAX_TOKENIZER_CONFIG_BYTES).get(
        "chat_template"
    )
    return template if isinstance(template, str) and template else None


def _task(architecture: str, template: str | None) -> str:
    if template:
        return "llm/v1/chat"
    if not architecture.endswith(GENERATIVE_SUFFIXES) and architecture.endswith("Model"):
        return "llm/v1/embeddings"
    return "llm/v1/completions"


def _first_integer(config: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    """The first integer among ``keys`` in the config, else in its ``text_config`` (where a
    multimodal model keeps its language model's figures)."""
    for document in (config, config.get("text_config")):
        if isinstance(document, dict):
            for key in keys:
                value = document.get(key)
                if _is_integer(value):
                    return value
    return None


def _json_object(path: Path, where: str, limit: int) -> dict[str, Any]:
    label = f"{path.name} in {where}"
    document = _parse_json(_read(path, label, limit), label)
    if not isinstance(document, dict):
        raise InvalidParameter(
            f"{label} must be a JSON object of keys to values, it is a "
            f"{type(document).__name__}; write the folder again with save_pretrained."
        )
    return document


def _parse_json(raw: bytes, label: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidParameter(f"{label} is not UTF-8 text ({exc.reason}).") from exc
    except json.JSONDecodeError as exc:
        raise InvalidParameter(
            f"{label} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from exc
    except (ValueError, RecursionError) as exc:  # a number too long, nesting too deep
        raise InvalidParameter(f"{label} is not JSON berth reads: {exc}.") from exc


def _read(path: Path, label: str, limit: int) -> bytes:
    with _open(path, label) as file:
        raw = file.read(limit + 1)
    if len(raw) > limit:
        raise InvalidParameter(
            f"{label} is over {limit // _MIB} MiB, far more than any model's; it is not the "
            "file save_pretrained writes: replace it."
        )
    return raw


def _present(path: Path, where: str) -> bool:
    """Whether the folder holds ``path``; refused when it is there but not a regular file."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise InvalidParameter(
            f"{path.name} in {where} cannot be read: {exc.strerror or exc}."
        ) from exc
    _check_regular(info.st_mode, f"{path.name} in {where}")
    return True


@contextmanager
def _open(path: Path, label: str) -> Iterator[BinaryIO]:
    """``path`` opened for reading, once it is known to be a regular file and no link.

    The flags keep that true should the file be swapped after the check: a link is not
    followed, and a FIFO does not block the open (then fails the check on what was opened).
    """
    try:
        _check_regular(path.lstat().st_mode, label)
        with open(path, "rb", opener=_no_follow) as file:
            _check_regular(os.fstat(file.fileno()).st_mode, label)
            yield file
    except OSError as exc:
        raise InvalidParameter(f"{label} cannot be read: {exc.strerror or exc}.") from exc


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)


def _check_regular(mode: int, label: str) -> None:
    if stat.S_ISLNK(mode):
        raise InvalidParameter(
            f"{label} is a symbolic link; a model folder is registered as the files "
            "themselves: copy the file it points to in its place."
        )
    if not stat.S_ISREG(mode):
        raise InvalidParameter(f"{label} is not a regular file; put the file itself there.")


def _is_integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: object) -> str:
    """A header value as JSON, cut short: a hostile one may be megabytes."""
    text = json.dumps(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _some(names: list[str], shown: int = 5) -> str:
    listed = ", ".join(names[:shown])
    return listed if len(names) <= shown else f"{listed} and {len(names) - shown} more"
