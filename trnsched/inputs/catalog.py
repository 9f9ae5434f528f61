"""Built-in chip and model catalogs, with the sources of every figure.

Chip figures live in `data/chips.json` (each with value, status and source),
model shapes in `data/models.json`, and the fitted efficiency constants in
`data/calibration.json`.  A fleet file may override or add chip types.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

from trnsched.inputs.errors import InputError
from trnsched.inputs.schema import ChipTypeSpec
from trnsched.inputs.validate import validate_chip_object, validate_chip_types, validate_model_object

CHIP_NUMBERS = (
    "peak_bf16_tflops", "peak_fp8_tflops", "peak_fp4_tflops", "hbm_gb", "hbm_tbps", "tdp_w", "idle_w", "host_w",
    "domain_size", "scaleup_gbps", "scaleup_latency_us", "scaleout_gbps", "scaleout_latency_us", "price_per_chip_hour",
)
# What a chip type added in a fleet file may leave out: no FP4 arithmetic, no host share.
OPTIONAL_NUMBERS = {"peak_fp4_tflops": 0.0, "host_w": 0.0}
# Figures kept with their sources for reference; the model does not use them.
REFERENCE_FIGURES = ("price_on_demand_per_chip_hour",)
STACKS = ("cuda", "neuron")
CALIBRATION_NUMBERS = ("eff_bf16", "eff_fp8", "eff_prefill", "layer_overhead_us", "request_overhead_ms")
DEFAULT_FAMILY = {"cuda": "hopper", "neuron": "trainium2"}


def _data(name: str) -> dict:
    return json.loads(resources.files("trnsched").joinpath("data").joinpath(name).read_text())


@dataclass(frozen=True)
class ChipType:
    name: str
    description: str
    stack: str
    family: str
    tp_cores_per_chip: int
    peak_bf16_tflops: float
    peak_fp8_tflops: float
    peak_fp4_tflops: float          # 0: no FP4 arithmetic (FP4 weights multiply at the FP8 rate)
    hbm_gb: float
    hbm_tbps: float
    tdp_w: float
    idle_w: float
    host_w: float                   # the system's share per chip beyond the accelerator
    domain_size: int
    scaleup_gbps: float
    scaleup_latency_us: float
    scaleout_gbps: float
    scaleout_latency_us: float
    price_per_chip_hour: float
    # figure name -> {"status": ..., "source": ..., "note"?: ...}
    provenance: Mapping[str, Mapping[str, str]] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("name", "description", "stack", "family", "tp_cores_per_chip")}
        for k in CHIP_NUMBERS:
            d[k] = {"value": getattr(self, k), **self.provenance.get(k, {})}
        for k in REFERENCE_FIGURES:
            if k in self.provenance:
                d[k] = dict(self.provenance[k])
        return d


@lru_cache(maxsize=1)
def _chip_file() -> dict:
    return _data("chips.json")


def default_pue() -> float:
    return float(_chip_file()["default_pue"]["value"])


def builtin_chips() -> dict[str, ChipType]:
    chips = {}
    for name, raw in _chip_file()["chips"].items():
        values = {k: raw[k]["value"] for k in CHIP_NUMBERS}
        prov = {k: {kk: vv for kk, vv in raw[k].items() if kk != "value"} for k in CHIP_NUMBERS}
        prov.update({k: dict(raw[k]) for k in REFERENCE_FIGURES if k in raw})
        values["domain_size"] = int(values["domain_size"])
        chips[name] = ChipType(name=name, description=raw["name"], stack=raw["stack"], family=raw["family"],
                               tp_cores_per_chip=int(raw["tp_cores_per_chip"]), provenance=prov, **values)
    return chips


def chip_catalog(overrides: Mapping[str, Any] | None = None, *, file: str | None = None) -> dict[str, ChipType]:
    """The built-in chips, with a fleet file's `chip_types` overrides and
    additions applied (raw, or as the fleet schema already read them)."""
    chips = builtin_chips()
    if not overrides:
        return chips
    if not all(isinstance(v, ChipTypeSpec) for v in overrides.values()):
        overrides = validate_chip_types(overrides, file=file)
    for name, spec in overrides.items():
        where = f"chip_types.{name}"
        base = chips.get(name)
        given = {k for k in CHIP_NUMBERS if getattr(spec, k) is not None}
        if base is None:
            missing = [k for k in CHIP_NUMBERS if k not in given and k not in OPTIONAL_NUMBERS]
            missing += ["stack"] if spec.stack is None else []
            if missing:
                raise InputError(f"a new chip type needs {', '.join(missing)}", file=file, field=where)
        elif spec.stack not in (None, base.stack) and spec.family is None:
            raise InputError(f"moves {name} from {base.stack} to {spec.stack}: give its family too (its "
                             f"efficiency constants)", file=file, field=f"{where}.family")
        changes: dict[str, Any] = {}
        prov = dict(base.provenance) if base else {}
        for k in sorted(given):
            figure = getattr(spec, k)
            changes[k] = float(figure) if isinstance(figure, (int, float)) else float(figure.value)
            source = None if isinstance(figure, (int, float)) else figure.source
            prov[k] = {"status": "user", "source": source or "fleet file"}
        if "domain_size" in changes:
            if changes["domain_size"] != int(changes["domain_size"]):
                raise InputError(f"must be a whole number, got {changes['domain_size']:g}", file=file,
                                 field=f"{where}.domain_size")
            changes["domain_size"] = int(changes["domain_size"])
        stack = spec.stack or base.stack
        changes.update(stack=stack, family=spec.family or (base.family if base else DEFAULT_FAMILY[stack]),
                       provenance=prov)
        if spec.tp_cores_per_chip is not None:
            changes["tp_cores_per_chip"] = spec.tp_cores_per_chip
        if spec.description is not None:
            changes["description"] = spec.description
        if base is None:
            for k, default in OPTIONAL_NUMBERS.items():
                changes.setdefault(k, default)
            changes.setdefault("description", name)
            changes.setdefault("tp_cores_per_chip", 1)
            chips[name] = ChipType(name=name, **changes)
        else:
            chips[name] = replace(base, **changes)
        validate_chip_object(chips[name], file=file)
        chip_rules(chips[name], file=file)
    return chips


def chip_rules(chip: ChipType, *, file: str | None = None) -> None:
    """What spans a chip type's figures, for fleet files and library objects alike."""
    def fail(name: str, message: str) -> InputError:
        return InputError(message, file=file, field=f"chip_types.{chip.name}.{name}")

    families = _calibration()["families"]
    if chip.family not in families:
        raise fail("family", f"unknown family {chip.family!r}; known: {', '.join(sorted(families))}")
    if chip.idle_w > chip.tdp_w:
        raise fail("idle_w", f"{chip.idle_w:g} W exceeds tdp_w {chip.tdp_w:g} W")
    if chip.peak_fp8_tflops < chip.peak_bf16_tflops:
        raise fail("peak_fp8_tflops", f"{chip.peak_fp8_tflops:g} is below peak_bf16_tflops "
                                      f"{chip.peak_bf16_tflops:g} (a chip without FP8 gives its BF16 figure)")
    if 0 < chip.peak_fp4_tflops < chip.peak_fp8_tflops:
        raise fail("peak_fp4_tflops", f"{chip.peak_fp4_tflops:g} is below peak_fp8_tflops "
                                      f"{chip.peak_fp8_tflops:g} (0: no FP4 arithmetic)")


@lru_cache(maxsize=1)
def _calibration() -> dict:
    return _data("calibration.json")


def calibration(family: str, table: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Efficiency constants for a chip family (following `inherits`), merged with the globals."""
    table = table or _calibration()
    fams = table["families"]
    entry = fams[family]
    seen = {family}
    while "inherits" in entry:
        parent = entry["inherits"]
        if parent in seen:
            raise ValueError(f"calibration: inheritance loop at {parent}")
        seen.add(parent)
        entry = {**fams[parent], **{k: v for k, v in entry.items() if k != "inherits"}}
    out = dict(table["global"])
    out.update({k: float(entry[k]) for k in CALIBRATION_NUMBERS})
    out["eff_fp4"] = float(entry.get("eff_fp4", entry["eff_fp8"]))   # no FP4 measurement: FP8's
    return out


@dataclass(frozen=True)
class ModelSpec:
    name: str
    params_b: float
    active_params_b: float
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    experts: int = 1
    top_k: int = 1
    kv_dim: int = 0          # K+V elements cached per token and layer; 0 = 2 x kv_heads x head_dim
    ffn: int = 0             # FFN width (a routed expert's, for a MoE); 0 = not given
    vocab: int = 0           # vocabulary size; 0 = not given (no logits memory counted)
    source: str = ""

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    @property
    def expert_width(self) -> float:
        """A routed expert's FFN width: `ffn` where given, else from the experts'
        share of the parameters, each MoE layer holding experts x 3 x hidden x width
        (gate, up, down projections; DeepSeek-V3 derives 1,950 against its 2,048)."""
        if not self.is_moe:
            return 0.0
        if self.ffn:
            return float(self.ffn)
        return (self.params_b - self.dense_params_b) * 1e9 / (self.experts * self.layers * 3.0 * self.hidden)

    @property
    def kv_elements(self) -> int:
        return self.kv_dim or 2 * self.kv_heads * self.head_dim

    @property
    def dense_params_b(self) -> float:
        """Parameters outside the routed experts, from total = dense + expert and
        active = dense + expert x top_k / experts."""
        if not self.is_moe:
            return self.params_b
        share = self.top_k / self.experts
        return (self.active_params_b - self.params_b * share) / (1.0 - share)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


MODEL_FIELDS = ("params_b", "active_params_b", "layers", "hidden", "heads", "kv_heads", "head_dim",
                "experts", "top_k", "kv_dim", "ffn", "vocab")
_MODEL_INTS = ("layers", "hidden", "heads", "kv_heads", "head_dim", "experts", "top_k", "kv_dim", "ffn", "vocab")


@lru_cache(maxsize=1)
def builtin_models() -> dict[str, ModelSpec]:
    out = {}
    for name, raw in _data("models.json")["models"].items():
        out[name] = ModelSpec(name=name, **{k: raw[k] for k in MODEL_FIELDS if k in raw},
                              source=raw.get("source", ""))
    return out


def model_from_spec(raw: Mapping[str, Any], *, name: str = "inline", file: str | None = None,
                    job: str | None = None) -> ModelSpec:
    """An inline model shape (schema.InlineModel, ranges already checked):
    params_b, layers, hidden given, the rest defaulted from them."""
    vals: dict[str, Any] = {k: raw[k] for k in MODEL_FIELDS if k in raw}
    for key in MODEL_FIELDS:
        if key in vals:
            vals[key] = int(vals[key]) if key in _MODEL_INTS else float(vals[key])
    hidden = vals["hidden"]
    heads = vals.get("heads", max(1, hidden // 128))
    vals.setdefault("heads", heads)
    vals.setdefault("head_dim", max(1, hidden // heads))
    vals.setdefault("kv_heads", heads)
    vals.setdefault("active_params_b", vals["params_b"])
    spec = ModelSpec(name=raw.get("name", name), source=raw.get("source") or "", **vals)
    validate_model_object(spec, file=file, job=job, given=set(raw))
    model_rules(spec, file=file, job=job)
    return spec


def model_rules(spec: ModelSpec, *, file: str | None = None, job: str | None = None) -> None:
    """What spans a model's fields, for inline models and library ones alike."""
    def fail(name: str, message: str) -> InputError:
        return InputError(message, file=file, job=job, field=f"model.{name}")

    if spec.top_k > spec.experts:
        raise fail("top_k", f"top_k {spec.top_k} exceeds experts {spec.experts}")
    if spec.experts > 1 and spec.top_k == spec.experts:
        raise fail("top_k", f"all {spec.experts} experts active per token is a dense model: give experts 1")
    if spec.kv_heads > spec.heads:
        raise fail("kv_heads", f"kv_heads {spec.kv_heads} exceeds heads {spec.heads}")
    if spec.active_params_b > spec.params_b:
        raise fail("active_params_b", f"{spec.active_params_b:g} exceeds params_b {spec.params_b:g}")
    if spec.is_moe and not (0.0 < spec.dense_params_b <= spec.active_params_b):
        raise fail("active_params_b", "is inconsistent with params_b, experts and top_k")
