"""SentencePiece model files without sentencepiece: read the protobuf, rebuild it with `tokenizers`.

A `.model` file is a serialized `ModelProto`. Only the handful of fields that change how text is
cut into ids are read here (pieces, model type, byte fallback, normalizer flags), with a minimal
protobuf wire-format reader, so conversion needs neither `sentencepiece` nor `protobuf`.

The rebuilt tokenizer follows what transformers' fast InternLM2 tokenizer does (and what upstream
used): special tokens are cut out first, then each remaining segment is normalized (dummy prefix
``▁``, spaces to ``▁``) and BPE-merged, merges ranked by the score of the merged piece.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esc_bench.errors import UserError

# ModelProto.SentencePiece.Type
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
# TrainerSpec.ModelType
UNIGRAM, BPE, WORD, CHAR = 1, 2, 3, 4
SPACE = "\u2581"  # ▁


@dataclass
class SpPiece:
    piece: str
    score: float = 0.0
    type: int = NORMAL


@dataclass
class SpModel:
    pieces: list[SpPiece] = field(default_factory=list)
    model_type: int = UNIGRAM
    byte_fallback: bool = False
    unk_id: int = 0
    treat_whitespace_as_suffix: bool = False
    normalizer_name: str = ""
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True


# -- protobuf wire format ------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): ints for varint/fixed, bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated field")
        yield number, wire, value


def _int32(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def parse_sp_model(data: bytes) -> SpModel:
    m = SpModel()
    for number, _wire, value in _fields(data):
        if number == 1:  # pieces
            p = SpPiece("")
            for n, _w, v in _fields(value):
                if n == 1:
                    p.piece = v.decode("utf-8")
                elif n == 2:
                    p.score = struct.unpack("<f", v)[0]
                elif n == 3:
                    p.type = v
            m.pieces.append(p)
        elif number == 2:  # trainer_spec
            for n, _w, v in _fields(value):
                if n == 3:
                    m.model_type = v
                elif n == 24:
                    m.treat_whitespace_as_suffix = bool(v)
                elif n == 35:
                    m.byte_fallback = bool(v)
                elif n == 40:
                    m.unk_id = _int32(v)
        elif number == 3:  # normalizer_spec
            for n, _w, v in _fields(value):
                if n == 1:
                    m.normalizer_name = v.decode("utf-8")
                elif n == 2:
                    m.precompiled_charsmap = bytes(v)
                elif n == 3:
                    m.add_dummy_prefix = bool(v)
                elif n == 4:
                    m.remove_extra_whitespaces = bool(v)
                elif n == 5:
                    m.escape_whitespaces = bool(v)
    if not m.pieces:
        raise ValueError("no pieces")
    return m


def read_sp_model(path: Path) -> SpModel:
    try:
        return parse_sp_model(Path(path).read_bytes())
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError, struct.error) as exc:
        raise UserError(f"{path}: not a SentencePiece model ({exc})") from None


# -- tokenizers rebuild --------------------------------------------------------------------


def bpe_merges(pieces: list[SpPiece]) -> list[tuple[str, str]]:
    """Every split of a normal piece into two normal pieces, best-scored merged piece first.

    SentencePiece BPE repeatedly joins the adjacent pair whose joined piece scores highest; a
    rank list ordered by that score makes `tokenizers` BPE take the same steps.
    """
    ids = {p.piece: i for i, p in enumerate(pieces) if p.type == NORMAL}
    ranked: list[tuple[float, int, int, int, str, str]] = []
    for i, p in enumerate(pieces):
        if p.type != NORMAL or len(p.piece) < 2:
            continue
        s = p.piece
        for k in range(1, len(s)):
            left, right = s[:k], s[k:]
            if left in ids and right in ids:
                ranked.append((-p.score, i, ids[left], ids[right], left, right))
    ranked.sort()
    return [(r[4], r[5]) for r in ranked]


def build_tokenizer(
    sp: SpModel,
    added: dict[int, tuple[str, bool]] | None = None,
    *,
    add_bos: str | None = None,
) -> Any:
    """A `tokenizers.Tokenizer` giving the same ids as the SentencePiece model.

    `added`: id -> (content, special) from the checkpoint's tokenizer_config.json; an id inside
    the vocabulary renames that piece (as transformers' converter does), one past its end appends.
    `add_bos`: the BOS token to put in front of every encoding (None: nothing is added).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, processors
    from tokenizers.models import BPE as BPEModel

    if sp.model_type != BPE:
        raise UserError("only BPE SentencePiece models are supported (InternLM2's tokenizer is BPE)")
    if sp.treat_whitespace_as_suffix:
        raise UserError("SentencePiece models with treat_whitespace_as_suffix are not supported")
    pieces = [SpPiece(p.piece, p.score, p.type) for p in sp.pieces]
    added = dict(added or {})
    for i in sorted(added):
        content, _special = added[i]
        if i < len(pieces):
            pieces[i].piece = content
            if pieces[i].type == NORMAL:
                pieces[i].type = USER_DEFINED
        elif i == len(pieces):
            pieces.append(SpPiece(content, 0.0, USER_DEFINED))
        else:
            raise UserError(f"added token {content!r} has id {i}, past the vocabulary ({len(pieces)})")
    vocab: dict[str, int] = {}
    for i, p in enumerate(pieces):
        if p.piece in vocab:
            raise UserError(f"SentencePiece model: piece {p.piece!r} appears twice (ids {vocab[p.piece]}, {i})")
        vocab[p.piece] = i
    unk = pieces[sp.unk_id].piece if 0 <= sp.unk_id < len(pieces) else None
    tok = Tokenizer(
        BPEModel(vocab=vocab, merges=bpe_merges(pieces), unk_token=unk, fuse_unk=True, byte_fallback=sp.byte_fallback)
    )
    steps: list[Any] = []
    if sp.precompiled_charsmap:
        steps.append(normalizers.Precompiled(sp.precompiled_charsmap))
    if sp.remove_extra_whitespaces:
        # As sentencepiece's normaliser does (InternLM2's tokenizer.model, run by its tokenizer):
        # drop spaces at the start and end of the whole text and squeeze runs of spaces; tabs and
        # newlines stay, and so does a space before a newline ("AI assistant: \n"). \A and \z,
        # not ^ and $: the tokenizers library's regexes (Oniguruma) match ^ and $ at every newline.
        steps += [normalizers.Replace(Regex(r"\A +| +\z"), ""), normalizers.Replace(Regex(" {2,}"), " ")]
    if sp.add_dummy_prefix:
        steps.append(normalizers.Prepend(SPACE))
    if sp.escape_whitespaces:
        steps.append(normalizers.Replace(" ", SPACE))
    if steps:
        tok.normalizer = normalizers.Sequence(steps)
    dec: list[Any] = [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if sp.add_dummy_prefix:
        dec.append(decoders.Strip(content=" ", left=1, right=0))
    tok.decoder = decoders.Sequence(dec)
    specials = []
    for i, p in enumerate(pieces):
        if i in added:
            content, special = added[i]
            specials.append(AddedToken(content, special=special, normalized=False))
        elif p.type in (UNKNOWN, CONTROL):
            specials.append(AddedToken(p.piece, special=True, normalized=False))
        elif p.type == USER_DEFINED:
            specials.append(AddedToken(p.piece, special=False, normalized=False))
    tok.add_tokens(specials)  # AddedToken carries its own `special` flag
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{add_bos}:0 $A:0", pair=f"{add_bos}:0 $A:0 {add_bos}:1 $B:1",
            special_tokens=[(add_bos, vocab[add_bos])],
        )
    return tok


# -- checking ids against sentencepiece itself ----------------------------------------------

SAMPLE_TEXTS: tuple[str, ...] = (
    "Hello world",
    " leading space and  double  spaces ",
    "Line one\nLine two\n\n\tTabbed line",
    "I feel anxious about my exams; could you help me?",
    "我最近压力很大，晚上总是睡不着。",
    "你好！今天过得怎么样？😊",
    "Mixed 中英文 text with numbers 12345 and 3.14",
    "Emoji only: 🎉🎉 and rare: \u00e9\u00e8\u00ea \u0416\u0437",
    "Score: 4",
    # ESC-RANK's judge prompt has "AI assistant: \n": a space before a newline stays (only the
    # whole text's ends are trimmed).
    "User: I can't sleep \nAI assistant: \nThat sounds hard.  \n  Tell me more. ",
    "",
)


def reference_ids(spp: Any, text: str, specials: dict[str, int]) -> list[int]:
    """What transformers' InternLM2 tokenizer gives: specials cut out, each other part encoded alone."""
    out: list[int] = []
    rest = text
    while rest:
        hits = [(rest.find(s), s) for s in specials if s and rest.find(s) >= 0]
        if not hits:
            out += spp.encode(rest)
            break
        at, s = min(hits, key=lambda h: (h[0], -len(h[1])))
        if at:
            out += spp.encode(rest[:at])
        out.append(specials[s])
        rest = rest[at + len(s) :]
    return out


def check_against_sentencepiece(model_path: Path, tokenizer: Any, texts: tuple[str, ...] = SAMPLE_TEXTS) -> int | None:
    """Compare ids on `texts` with sentencepiece (when installed). Returns texts checked, None if not installed."""
    try:
        import sentencepiece
    except ImportError:
        return None
    spp = sentencepiece.SentencePieceProcessor(model_file=str(model_path))
    specials = {t.content: i for i, t in tokenizer.get_added_tokens_decoder().items()}
    for text in texts:
        want = reference_ids(spp, text, specials)
        got = tokenizer.encode(text, add_special_tokens=False).ids
        if got != want:
            raise UserError(
                f"converted tokenizer disagrees with {model_path.name} on {text[:40]!r}: {got[:12]} vs {want[:12]}"
            )
    return len(texts)
