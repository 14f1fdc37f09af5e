"""The files behind a local (hf) model: where it loads from, and digests of what defines it.

The digests are the response cache's key for local models: the model folder's small defining files
(config, generation config, tokenizer files, chat template, weight index) by content, its weight
files by name, size and mtime (never read: they are gigabytes), and the adapters' files by content.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from esc_bench.backends.base import BackendError
from esc_bench.config.schema import HFConfig

# Small files of a model folder that define its behaviour: hashed by content.
MODEL_FILES = (
    "config.json", "generation_config.json", "tokenizer_config.json", "tokenizer.json", "tokenizer.model",
    "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja",
    "chat_template.json", "model.safetensors.index.json", "pytorch_model.bin.index.json",
)
# Weight files (multi-GB): hashed by name, size and mtime, never read.
WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf")


def expand_path(value: str) -> str:
    """`~` and `$VARS` expanded (model and adapter paths in configs)."""
    return os.path.expandvars(os.path.expanduser(value))



def model_source(config: HFConfig) -> str:
    """The local folder or hub id to load; a local path that does not exist is an error."""
    model = config.model
    path = expand_path(model)
    if os.path.exists(path):
        return path
    if model.startswith(("~", "/", ".", "$")) or model.count("/") > 1:
        raise BackendError("local", f"model folder {path} does not exist", retryable=False)
    return model  # a hub id


def model_folder(config: HFConfig) -> Path | None:
    """The local folder the model loads from: the path, or a hub id's cached snapshot (None if
    the id is not in the local cache, or the path does not exist)."""
    try:
        src = model_source(config)
    except BackendError:
        return None
    if os.path.isdir(src):
        return Path(src)
    if os.path.exists(src):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(src, "config.json")
    except Exception:  # not a valid repo id, no huggingface_hub: the id alone
        return None
    return Path(cached).parent if isinstance(cached, str) else None


def model_digest(config: HFConfig) -> str:
    """sha256 over the model folder's defining small files (bytes) and its weight files (name,
    size, mtime). A hub id uses its snapshot in the local HF cache; the id alone when absent."""
    h = hashlib.sha256()
    folder = model_folder(config)
    if folder is None:
        h.update(b"id\0" + config.model.encode())
        return h.hexdigest()[:16]
    names = [n for n in MODEL_FILES if (folder / n).is_file()]
    extra = folder / "additional_chat_templates"
    if extra.is_dir():
        names += sorted(f"{extra.name}/{f.name}" for f in extra.iterdir() if f.is_file())
    if config.trust_remote_code:  # the model's own code runs
        names += sorted(f.name for f in folder.glob("*.py") if f.is_file())
    for name in names:
        h.update(b"file\0" + name.encode() + b"\0")
        _hash_file(h, folder / name)
    weights = sorted({f for g in WEIGHT_GLOBS for f in folder.glob(g) if f.is_file()})
    for f in weights:
        try:
            st = f.stat()
            h.update(f"weights\0{f.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        except OSError:
            h.update(f"weights\0{f.name}\0unreadable\0".encode())
    return h.hexdigest()[:16]


def adapter_digest(config: HFConfig) -> str:
    """sha256 over adapter names and the bytes of their files (paths when absent)."""
    h = hashlib.sha256()
    for name in sorted(config.adapters):
        h.update(name.encode() + b"\0")
        folder = Path(expand_path(config.adapters[name]))
        files = sorted(folder.glob("adapter_*")) if folder.is_dir() else []
        if not files:
            h.update(str(config.adapters[name]).encode() + b"\0")
        for f in files:
            h.update(f.name.encode() + b"\0")
            _hash_file(h, f)
    return h.hexdigest()[:16]


def _hash_file(h: Any, path: Path) -> None:
    """File bytes into `h`; a marker when the file cannot be read (identity() never raises)."""
    try:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        h.update(f"\0unreadable:{type(exc).__name__}\0".encode())
