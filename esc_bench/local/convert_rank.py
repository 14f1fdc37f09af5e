"""`esc-bench convert-rank`: ESC-RANK (InternLM2 + one LoRA per dimension) as Llama + LoRA.

InternLM2's hub code no longer runs on current transformers, so the judge is converted once into
a stock Llama checkpoint (no remote code) whose logits equal the original's, plus the LoRA
adapters renamed for it (`wqkv` split into q/k/v, see esc_bench.local.internlm2):

    <out>/model              config.json, safetensors, tokenizer.json (ids as the original
                             sentencepiece model), chat template with InternLM2's default system
                             text, generation_config.json (stops at </s> and <|im_end|>)
    <out>/adapters/<name>    adapter_config.json + adapter_model.safetensors, one per folder found
    <out>/chat_template.jinja  the same template, for serving the ORIGINAL base with vLLM
    <out>/conversion.json    what was converted from where

The default system text (`meta_instruction`, which InternLM2's `chat()` inserts) is read from the
base model's own Python files at conversion time; it is never stored in this repository.

The model and adapters are built in `<out>/.model.tmp` and `<out>/.adapters.tmp` and renamed into
place only when everything was written: a failed conversion leaves no half-written `<out>/model`
(and, with --force, the previous conversion untouched). Unreadable or corrupt inputs and unwritable
outputs are reported as one line (UserError), never a traceback.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

from esc_bench.errors import UserError, exc_line, parse_json
from esc_bench.files import write_atomic
from esc_bench.local import internlm2, spm

IM_START, IM_END = "<|im_start|>", "<|im_end|>"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", required=True, type=Path, metavar="DIR",
                        help="the InternLM2 chat checkpoint (a local copy of internlm/internlm2-chat-7b)")
    parser.add_argument("--adapters", required=True, type=Path, metavar="DIR",
                        help="folder with one LoRA folder per dimension (a local copy of haidequanbu/ESC-RANK)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="output folder: <out>/model and <out>/adapters/<name>")
    parser.add_argument("--meta-instruction-file", type=Path, metavar="FILE",
                        help="read the default system text from FILE instead of the base's modeling code")
    parser.add_argument("--keep-dynamic-rope", action="store_true",
                        help="keep dynamic-NTK rope_scaling (default: dropped; exact up to max_position_embeddings)")
    parser.add_argument("--force", action="store_true", help="replace <out>/model and <out>/adapters if present")


def run(args: argparse.Namespace) -> int:
    report = convert(
        Path(args.base).expanduser(), Path(args.adapters).expanduser(), Path(args.out).expanduser(),
        meta_instruction_file=args.meta_instruction_file, keep_dynamic_rope=args.keep_dynamic_rope, force=args.force,
    )
    checked = report["tokenizer_checked_texts"]
    print(f"converted {report['base']} -> {report['model']}")
    print(f"  adapters: {', '.join(report['adapters'])}")
    print(f"  system text from {report['meta_instruction_from']}")
    print("  tokenizer ids checked against sentencepiece on "
          + (f"{checked} texts" if checked is not None else "no texts (pip install sentencepiece to check)"))
    print(f"use it: model: {report['model']} in model_configs/esc-rank.yaml (adapters under {report['adapters_dir']})")
    return 0


def convert(
    base: Path, adapters: Path, out: Path, *, meta_instruction_file: Path | None = None,
    keep_dynamic_rope: bool = False, force: bool = False,
) -> dict[str, Any]:
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - a dependency of transformers
        SafetensorError = OSError  # type: ignore[misc,assignment]
    try:
        return _convert(base, adapters, out, meta_instruction_file=meta_instruction_file,
                        keep_dynamic_rope=keep_dynamic_rope, force=force)
    except OSError as exc:
        raise UserError(_os_error(exc)) from None
    except SafetensorError as exc:
        raise UserError(f"safetensors: {exc_line(exc)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"unreadable input: {exc_line(exc)}") from None


def _convert(
    base: Path, adapters: Path, out: Path, *, meta_instruction_file: Path | None,
    keep_dynamic_rope: bool, force: bool,
) -> dict[str, Any]:
    base_cfg = _read_json(base / "config.json", "the base model's config.json")
    arch = " ".join(base_cfg.get("architectures") or []) + " " + str(base_cfg.get("model_type", ""))
    if "internlm2" not in arch.lower():
        raise UserError(f"{base}: not an InternLM2 checkpoint (architectures/model_type: {arch.strip() or 'none'})")
    adapter_dirs = find_adapters(adapters)
    _check_out_folder(out)
    model_dir, adapters_out = out / "model", out / "adapters"
    for d in (model_dir, adapters_out):
        if d.exists() and not d.is_dir():
            raise UserError(f"{d} is a file, not a folder")
        if d.exists() and any(d.iterdir()) and not force:
            raise UserError(f"{d} is not empty (use --force to replace it)")
    if meta_instruction_file is not None:
        try:
            meta, meta_from = Path(meta_instruction_file).read_text(encoding="utf-8"), str(meta_instruction_file)
        except OSError as exc:
            raise UserError(f"{meta_instruction_file}: cannot read ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise UserError(f"{meta_instruction_file}: not UTF-8 text") from None
    else:
        meta, meta_from = find_meta_instruction(base)
    model_tmp, adapters_tmp = out / ".model.tmp", out / ".adapters.tmp"
    made_out = not out.exists()
    for tmp in (model_tmp, adapters_tmp):  # left by a conversion that was killed
        if tmp.exists():
            shutil.rmtree(tmp)
    try:
        model_tmp.mkdir(parents=True)
        adapters_tmp.mkdir()
        template = chat_template(meta)
        tok, checked = write_tokenizer(base, model_tmp, template)
        im_end = tok.token_to_id(IM_END)
        if im_end is None:
            raise UserError(f"{base}: the tokenizer has no {IM_END} token")
        llama_cfg = internlm2.llama_config(base_cfg, keep_dynamic_rope=keep_dynamic_rope)
        (model_tmp / "config.json").write_text(json.dumps(llama_cfg, indent=2) + "\n")
        gen = _read_json(base / "generation_config.json", "") if (base / "generation_config.json").exists() else {}
        eos = gen.get("eos_token_id", base_cfg.get("eos_token_id", 2))
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        gen.update(
            bos_token_id=base_cfg.get("bos_token_id", 1), eos_token_id=eos + [i for i in [im_end] if i not in eos],
            pad_token_id=base_cfg.get("pad_token_id", eos[0] if eos else None),
        )
        (model_tmp / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
        heads = internlm2.heads_of(base_cfg)
        write_weights(base, model_tmp, heads)
        names = []
        for folder in adapter_dirs:  # adapters name the final model folder as their base
            convert_adapter(folder, adapters_tmp / folder.name, heads, str(model_dir.resolve()))
            names.append(folder.name)
        report = {
            "base": str(base), "model": str(model_dir), "adapters_dir": str(adapters_out), "adapters": names,
            "meta_instruction_from": meta_from, "tokenizer_checked_texts": checked,
            "rope_scaling_dropped": bool(base_cfg.get("rope_scaling")) and llama_cfg["rope_scaling"] is None,
        }
        for tmp, final in ((model_tmp, model_dir), (adapters_tmp, adapters_out)):
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
    except BaseException:
        for tmp in (model_tmp, adapters_tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        if made_out:
            with contextlib.suppress(OSError):
                out.rmdir()  # only when nothing else was put there meanwhile
        raise
    write_atomic(out / "chat_template.jinja", template)
    write_atomic(out / "conversion.json", json.dumps(report, indent=2) + "\n")
    return report


def _check_out_folder(out: Path) -> None:
    """A clear error when the output folder cannot be a folder (it, or a parent, is a file)."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise UserError(f"{out}: cannot create the output folder ({p} is a file)")
            return
        if p.is_symlink():  # a dangling link
            raise UserError(f"{out}: cannot create the output folder ({p} is a broken link)")


def _os_error(exc: OSError) -> str:
    reason = exc.strerror or exc_line(exc)
    return f"{exc.filename}: {reason}" if exc.filename else f"{type(exc).__name__}: {reason}"


# -- pieces --------------------------------------------------------------------------------


def find_adapters(folder: Path) -> list[Path]:
    if (folder / "adapter_config.json").exists():
        return [folder]
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    found = sorted(p.parent for p in folder.glob("*/adapter_config.json"))
    if not found:
        raise UserError(f"{folder}: no adapter folders (subfolders with adapter_config.json)")
    return found


def _const_str(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _const_str(node.left), _const_str(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in node.values):
        return "".join(str(v.value) for v in node.values)  # type: ignore[attr-defined]
    return None


def find_meta_instruction(base: Path) -> tuple[str, str]:
    """The `meta_instruction` default of `chat()` in the base's modeling code (then any default or
    module-level assignment of that name); returns (text, where it was found)."""
    found: list[tuple[int, str, str]] = []
    for py in sorted(base.glob("*.py")):
        try:
            tree = ast.parse(py.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                pos = a.posonlyargs + a.args
                pairs = list(zip(pos[len(pos) - len(a.defaults):], a.defaults))
                pairs += [(k, d) for k, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
                for arg, default in pairs:
                    text = _const_str(default) if arg.arg == "meta_instruction" else None
                    if text:
                        where = f"{py.name}: {node.name}(meta_instruction=...)"
                        found.append((0 if node.name == "chat" else 1, text, where))
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "meta_instruction" for t in node.targets
            ):
                text = _const_str(node.value)
                if text:
                    found.append((2, text, f"{py.name}: meta_instruction = ..."))
    if not found:
        raise UserError(
            f"{base}: no meta_instruction default in its *.py files (modeling_internlm2.py); "
            "pass --meta-instruction-file FILE"
        )
    _, text, where = min(found, key=lambda f: f[0])
    return text, where


def _jinja_literal(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )
    return "'" + escaped + "'"


def chat_template(meta_instruction: str | None) -> str:
    """InternLM2's chat format with `chat()`'s default system text when no system message is given."""
    default = _jinja_literal(meta_instruction) if meta_instruction else "''"
    return (
        "{{ bos_token }}"
        "{% if messages and messages[0]['role'] == 'system' %}"
        "{% set system = messages[0]['content'] %}{% set rest = messages[1:] %}"
        "{% else %}{% set system = " + default + " %}{% set rest = messages %}{% endif %}"
        "{% if system %}{{ '" + IM_START + "system\\n' + system + '" + IM_END + "\\n' }}{% endif %}"
        "{% for m in rest %}"
        "{{ '" + IM_START + "' + m['role'] + '\\n' + m['content'] + '" + IM_END + "\\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '" + IM_START + "assistant\\n' }}{% endif %}"
    )


def _token_str(value: Any, default: str) -> str:
    if isinstance(value, dict):
        return str(value.get("content", default))
    return str(value) if value else default


def write_tokenizer(base: Path, model_dir: Path, template: str) -> tuple[Any, int | None]:
    """tokenizer.json + tokenizer_config.json (chat template included); returns (tokenizer, texts checked)."""
    from transformers import PreTrainedTokenizerFast

    tcfg = _read_json(base / "tokenizer_config.json", "") if (base / "tokenizer_config.json").exists() else {}
    bos = _token_str(tcfg.get("bos_token"), "<s>")
    added: dict[int, tuple[str, bool]] = {
        int(i): (str(t["content"]), bool(t.get("special", True)))
        for i, t in (tcfg.get("added_tokens_decoder") or {}).items()
    }
    if (base / "added_tokens.json").exists():
        for content, i in _read_json(base / "added_tokens.json", "").items():
            added.setdefault(int(i), (content, True))
    checked = None
    if (base / "tokenizer.model").exists():
        sp = spm.read_sp_model(base / "tokenizer.model")
        tok = spm.build_tokenizer(sp, added, add_bos=bos if tcfg.get("add_bos_token", True) else None)
        checked = spm.check_against_sentencepiece(base / "tokenizer.model", tok)
    elif (base / "tokenizer.json").exists():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    else:
        raise UserError(f"{base}: no tokenizer.model or tokenizer.json")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=_token_str(tcfg.get("eos_token"), "</s>"),
        unk_token=_token_str(tcfg.get("unk_token"), "<unk>"),
        pad_token=_token_str(tcfg.get("pad_token"), "</s>"),
        clean_up_tokenization_spaces=False,
        padding_side="left",
    )
    fast.chat_template = template
    fast.save_pretrained(model_dir)
    # Readable by older transformers too (vLLM's): the generic fast class, the template inline.
    path = model_dir / "tokenizer_config.json"
    tc = _read_json(path, "tokenizer_config.json")
    tc.pop("backend", None)
    tc.update(tokenizer_class="PreTrainedTokenizerFast", chat_template=template)
    path.write_text(json.dumps(tc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return tok, checked


def _weight_files(base: Path) -> list[Path]:
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (base / index).exists():
            wm = _read_json(base / index, index).get("weight_map", {})
            return [base / f for f in dict.fromkeys(wm.values())]
    files = sorted(base.glob("*.safetensors")) or sorted(base.glob("pytorch_model*.bin"))
    if not files:
        raise UserError(f"{base}: no weights (*.safetensors or pytorch_model*.bin)")
    return files


def _load_tensors(path: Path) -> dict[str, Any]:
    import torch

    if not path.exists():
        raise UserError(f"{path}: missing weight file")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is no mapping
        return dict(torch.load(path, map_location="cpu", weights_only=True))
    except MemoryError:
        raise
    except Exception as exc:  # truncated or corrupt: any error of the reader
        raise UserError(f"{path}: cannot read the weights, truncated or corrupt? ({exc_line(exc)})") from None


def write_weights(base: Path, model_dir: Path, heads: internlm2.Heads) -> None:
    """Shard by shard (one output shard per input shard): memory holds one shard at a time."""
    from safetensors.torch import save_file

    files = _weight_files(base)
    n = len(files)
    weight_map: dict[str, str] = {}
    total = 0
    for i, f in enumerate(files, 1):
        out_name = "model.safetensors" if n == 1 else f"model-{i:05d}-of-{n:05d}.safetensors"
        tensors: dict[str, Any] = {}
        for key, t in _load_tensors(f).items():
            for new_key, new_t in internlm2.convert_tensor(key, t, heads):
                tensors[new_key] = new_t.contiguous()
        save_file(tensors, str(model_dir / out_name), metadata={"format": "pt"})
        total += sum(t.numel() * t.element_size() for t in tensors.values())
        weight_map.update({k: out_name for k in tensors})
        del tensors
    if n > 1:
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (model_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def convert_adapter(src: Path, dst: Path, heads: internlm2.Heads, base_path: str) -> None:
    from safetensors.torch import save_file

    acfg = internlm2.convert_adapter_config(_read_json(src / "adapter_config.json", "adapter_config.json"), base_path)
    weights = src / "adapter_model.safetensors"
    if not weights.exists():
        weights = src / "adapter_model.bin"
    if not weights.exists():
        raise UserError(f"{src}: no adapter_model.safetensors or adapter_model.bin")
    tensors: dict[str, Any] = {}
    for key, t in _load_tensors(weights).items():
        for new_key, new_t in internlm2.convert_tensor(key, t, heads):
            tensors[new_key] = new_t.contiguous()
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "adapter_config.json").write_text(json.dumps(acfg, indent=2) + "\n")
    save_file(tensors, str(dst / "adapter_model.safetensors"), metadata={"format": "pt"})


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what or path.name} ({exc.strerror})") from None
    data = parse_json(raw, str(path), UserError)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data
