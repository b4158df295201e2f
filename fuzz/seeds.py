#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets from the repository's test data (vectors,
conformance scripts, sync scenarios): every JSON text and sub-value found there, shaped for each
target (the first byte of a seed picks a target's entry point). Usage: seeds.py OUT_DIR"""
import json, os, re, sys, hashlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SOURCES = ["tests/vectors", "tests/conformance", "tests/interop/sync/scenarios"]
HLC = re.compile(r"^[-0-9A-Z_a-z]{16}$")
MAX_LEN, CAP = 4096, 800

def dump(v):
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))

def walk(v, out):
    if isinstance(v, str):
        out["strings"].add(v)
        for text in (v, v.split("\n", 1)[1] if "\n" in v else None):
            if text and text[:1] in "[{":
                try:
                    walk(json.loads(text), out)
                    out["texts"].add(text)
                except ValueError:
                    pass
    elif isinstance(v, list):
        out["values"].add(dump(v))
        if v and all(isinstance(x, str) and "\n" in x for x in v) and utf8("".join(v)):
            out["frame_lists"].append(v)
        for x in v:
            walk(x, out)
    elif isinstance(v, dict):
        out["values"].add(dump(v))
        for x in v.values():
            walk(x, out)
    else:
        out["values"].add(dump(v))

def utf8(s):
    try:
        return len(s.encode()) <= MAX_LEN
    except UnicodeEncodeError:  # lone surrogates (JSON.parse keeps them; Rust strings cannot)
        return False

def pick(items):
    items = sorted({i for i in items if utf8(i)}, key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    return items[:CAP]

def main(out_dir):
    found = {"strings": set(), "texts": set(), "values": set(), "frame_lists": []}
    for src in SOURCES:
        for base, _, files in os.walk(os.path.join(ROOT, src)):
            for f in sorted(files):
                if f.endswith(".json"):
                    with open(os.path.join(base, f), encoding="utf-8") as fh:
                        walk(json.load(fh), found)
    texts = found["values"] | found["texts"]
    parsed = {t: json.loads(t) for t in texts}
    stamps = [t for t, v in parsed.items() if isinstance(v, list) and len(v) in (2, 3) and isinstance(v[0], list)]
    objects = [t for t, v in parsed.items() if isinstance(v, dict)]
    payloads = [t for t, v in parsed.items() if isinstance(v, list) and len(v) == 3 and isinstance(v[1], int)]
    frames = [s for s in found["strings"] if "\n[" in s]
    hlcs = sorted(s for s in found["strings"] if HLC.match(s))
    frames = [s for s in frames if utf8(s)]
    seeds = {
        "json": [t.encode() for t in pick(texts)],
        "mergeable": [bytes([op]) + t.encode() for t in pick(stamps) for op in range(4)],
        "diff": [bytes([op]) + t.encode() for t in pick(objects)[:200] for op in range(6)],
        "store_json": [bytes([i % 14]) + t.encode() for i, t in enumerate(pick(texts))],
        "sync": [bytes([2]) + t.encode() for t in pick(payloads)] + [bytes([3]) + t.encode() for t in pick(frames)],
        "c_abi": [bytes([op]) + t.encode() + bad for t in pick(stamps)[:150] for op in range(3) for bad in (b"", b"\xff")],
        "hlc": [(a + "\n" + b).encode() for a, b in list(zip(hlcs, hlcs[1:] + [""]))[:CAP]],
        # Mode byte: bit 0 multiplexed, bits 1-3 and 4-7 the fragment size and the time step.
        "ws_codec": [bytes([m]) + s.encode() for s in pick(s for s in found["strings"] if "\n" in s) for m in (0, 1, 0x22)]
        + [bytes([m]) + "\0".join(g).encode() for g in found["frame_lists"] for m in (0, 1, 0x13, 0xf4)],
    }
    for target, items in seeds.items():
        d = os.path.join(out_dir, target)
        os.makedirs(d, exist_ok=True)
        for item in items:
            with open(os.path.join(d, hashlib.sha1(item).hexdigest()), "wb") as fh:
                fh.write(item)
        print(f"{target}: {len(items)} seeds")

if __name__ == "__main__":
    main(sys.argv[1])
