"""Local models: converting ESC-RANK (InternLM2 + LoRA) into a stock Llama checkpoint + LoRA.

`convert_rank` is the `esc-bench convert-rank` command; `internlm2` maps names and splits the
fused attention projection; `spm` rebuilds a SentencePiece tokenizer with `tokenizers`.
Nothing here imports torch or transformers at import time.
"""
