"""The /predict answer's JSON: a request's predictions written in one go, straight into bytes.

Building each prediction as dicts and letting orjson write them cost about 3 µs of event-loop CPU
per text (dicts, a label lookup, the token array, a float32 round trip), a third of the loop's own
work per text; one C call per request (`render_predictions`, service/_fastpath_json.c) does it in
about 1.5 (docs/PERFORMANCE.md, session 12). The numbers are copied as orjson writes float32, the
shortest form that reads back as the same float32 (0.9998461, not float64's 0.9998461008071899),
from one orjson call per request for all probabilities and one for all attention weights.

`render_predictions` below is its exact Python twin, used when the extension is not built or
`SENTIMENT_NATIVE` is off; tests compare the two byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import orjson

from service.native import fastpath as _fastpath
from service.text_tokenizer import Encoded

# (texts, labels, probabilities JSON (N, C), attention JSON (N, L_i) or None) → the predictions array
Render = Callable[[list[Encoded], list[str], bytes, "bytes | None"], bytes]


def render_tokens(enc: Encoded, attention_json: bytes) -> bytes:
    """The JSON array of a text's token objects: {"text", "start", "end", "attention", "piece"}.
    What service/_fastpath.c's render writes, byte for byte, in Python."""
    values = attention_json[1:-1].split(b",") if len(attention_json) > 2 else []
    text = enc.text
    tokens = [
        {"text": text[s:e], "start": s, "end": e, "attention": orjson.Fragment(v), "piece": p}
        for (s, e), v, p in zip(enc.offsets(), values, enc.pieces, strict=True)
    ]
    return orjson.dumps(tokens)


def _rows(matrix_json: bytes) -> list[bytes]:
    """The insides of a JSON array of number arrays: b"[[1,2],[3]]" → [b"1,2", b"3"]."""
    if matrix_json == b"[]":
        return []
    if not (matrix_json.startswith(b"[[") and matrix_json.endswith(b"]]")):
        raise ValueError("fewer rows than texts, or not a JSON array of arrays")
    return matrix_json[2:-2].split(b"],[")


def render_predictions(encoded: list[Encoded], labels: list[str], probs_json: bytes, attention_json: bytes | None) -> bytes:
    """The JSON array of predictions {"label", "score", "probabilities", "tokens"?, "truncated"},
    one per text: the label of the first largest probability, and "tokens" only when the
    attention is given. What service/_fastpath.c's render_predictions writes, in Python."""
    keys = [orjson.dumps(label) for label in labels]
    rows = _rows(probs_json)
    atts = _rows(attention_json) if attention_json is not None else rows  # (no attention: nothing more to count)
    if min(len(rows), len(atts)) < len(encoded):
        raise ValueError("fewer rows than texts, or not a JSON array of arrays")
    if max(len(rows), len(atts)) > len(encoded):
        raise ValueError("more rows than texts")
    out = []
    for i, (enc, row) in enumerate(zip(encoded, rows, strict=True)):
        values = row.split(b",")
        if len(values) != len(keys):
            raise ValueError(f"a row of probabilities must hold {len(keys)} numbers")
        numbers = [float(v) for v in values]
        k = numbers.index(max(numbers))
        probs = b",".join(key + b":" + v for key, v in zip(keys, values, strict=True))
        pred = b'{"label":' + keys[k] + b',"score":' + values[k] + b',"probabilities":{' + probs + b"}"
        if attention_json is not None:
            pred += b',"tokens":' + render_tokens(enc, b"[" + atts[i] + b"]")
        out.append(pred + (b',"truncated":true}' if enc.truncated else b',"truncated":false}'))
    return b"[" + b",".join(out) + b"]"


def renderer(native: bool) -> Render:
    """The compiled renderer when asked for and built, else the Python twin."""
    if native and _fastpath is not None:
        return _fastpath.render_predictions
    return render_predictions


def as_json(rows: Sequence[np.ndarray]) -> bytes:
    """Float32 arrays as one JSON array of arrays, in orjson's float32 form."""
    return orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY)
