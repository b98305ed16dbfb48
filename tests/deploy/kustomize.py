"""The small part of kustomize our deploy/ uses, so the overlays can be rendered and validated
without the kustomize binary (not packaged for this machine): `resources` (files and folders),
`namespace`, `labels` (pairs, added to metadata.labels), `images` (newName/newTag) and `patches`
(strategic-merge files matched by kind and name; lists of named items are merged by `name`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]


def merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(x, dict) and "name" in x for x in base + patch):
        by_name = {x["name"]: x for x in base}
        out_list = [merge(by_name[p["name"]], p) if p["name"] in by_name else copy.deepcopy(p) for p in patch]
        patched = {p["name"] for p in patch}
        return [x for x in base if x["name"] not in patched] + out_list
    return copy.deepcopy(patch)


def _containers(r: Resource) -> list[dict[str, Any]]:
    spec = r.get("spec", {}).get("template", {}).get("spec", {})
    return list(spec.get("containers", [])) + list(spec.get("initContainers", []))


def build(folder: Path) -> list[Resource]:
    k = yaml.safe_load((folder / "kustomization.yaml").read_text())
    out: list[Resource] = []
    for entry in k.get("resources", []):
        path = folder / entry
        if path.is_dir():
            out += build(path)
        else:
            out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for p in k.get("patches", []):
        patch = yaml.safe_load((folder / p["path"]).read_text())
        hits = [i for i, r in enumerate(out) if r["kind"] == patch["kind"] and r["metadata"]["name"] == patch["metadata"]["name"]]
        if len(hits) != 1:
            raise ValueError(f"patch {p['path']} matches {len(hits)} resources")
        out[hits[0]] = merge(out[hits[0]], patch)
    for group in k.get("labels", []):
        for r in out:
            r.setdefault("metadata", {}).setdefault("labels", {}).update(group["pairs"])
    if "namespace" in k:
        for r in out:
            r["metadata"]["namespace"] = k["namespace"]
    for img in k.get("images", []):
        for r in out:
            for c in _containers(r):
                name, _, tag = c["image"].partition(":")
                if name == img["name"]:
                    c["image"] = f"{img.get('newName', name)}:{img.get('newTag', tag)}"
    return out
