"""The one validation layer's definitions: what a jobs file, a fleet file, a
result read back, and the library's objects and arguments may hold, declared
once (pydantic v2, strict types, no NaN or infinity) and published as JSON
Schema (`trnsched schema jobs|fleet`).  validate.py checks inputs against
them, in compiled code, and words the errors.

Every number has a range.  The ranges are generous for real work (a million
chips, a quintillion training tokens, a century of hours) and small enough that
nothing derived from them overflows what CP-SAT holds: the objective's
integers are scaled to at most OBJECTIVE_RESOLUTION steps per job
(objective.py), priorities sum below 2^53 for any file that fits in memory, and
watts per rack stay below 2^40.  What depends on more than one field (a
deadline after the arrival, top_k within experts, a chip type the fleet has)
is checked where the typed objects are built, in jobs.py, fleet.py and
catalog.py, with the same one-line errors; cluster output read by fleet import
is checked by its readers (integrations/).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Sequence, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, StringConstraints, Tag,
                      TypeAdapter, with_config)
from typing_extensions import NotRequired, TypedDict


MAX_CHIPS = 2 ** 20                 # an UltraCluster of a million chips
MAX_PRIORITY = 10 ** 6
MAX_HOURS = 1e6                     # a century
MAX_TOKENS = 1e18                   # training tokens; the largest runs so far are ~4e13
MAX_SEQ = 2 ** 24                   # tokens in one sequence, prompt or output
MAX_MS = 1e9
MAX_RATE_RPS = 1e7
MAX_DIM = 2 ** 24                   # a model's widths and vocabulary
MAX_COUNT = 2 ** 16                 # heads, experts, layers
MAX_FIGURE = 1e7                    # any chip figure (W, GB, TFLOP/s, GB/s, us, USD)

# parse_jobs and parse_fleet mark what they made (an attribute outside the
# dataclass's fields), and the library's solve() takes it as it is instead of
# checking every field again (1.4 s at 100k jobs).  dataclasses.replace makes a
# new object from the fields alone, unmarked, so an edited job is checked.
CHECKED = "_trnsched_checked"

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, hide_input_in_errors=False)


def doc(text: str) -> Any:
    """A field's description in the published schema."""
    return Field(description=text)


def _whole(value: Any) -> Any:
    """8.0 is a whole number (JSON Schema's "integer" agrees); 8.5, "8" and true
    are not, and strict validation refuses them after this."""
    return int(value) if type(value) is float and value.is_integer() else value


def _ints(low: int, high: int) -> Any:
    return Annotated[int, BeforeValidator(_whole), Field(ge=low, le=high)]


# Text shown in tables and logs: printable, no control characters (a newline or
# an ANSI escape in an id would break every table it appears in).
# Unicode's invisible format characters too: a zero-width or a bidi override
# makes two ids that look alike, or one that looks empty.
_HIDDEN = r"\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
_PRINTABLE, _VISIBLE = f"[^{_HIDDEN}]", f"[^\\s{_HIDDEN}]"
Name = Annotated[str, StringConstraints(min_length=1, max_length=256,
                                        pattern=f"^{_PRINTABLE}*{_VISIBLE}{_PRINTABLE}*$")]
Text = Annotated[str, StringConstraints(max_length=10_000)]
Note = Annotated[Text | None, doc("free text, for people")]

# The ranges, named once.
Chips = _ints(1, MAX_CHIPS)
ChipsOrZero = _ints(0, MAX_CHIPS)
Priority = _ints(1, MAX_PRIORITY)
Hours = Annotated[float, Field(ge=0.0, le=MAX_HOURS)]
PositiveHours = Annotated[float, Field(gt=0.0, le=MAX_HOURS)]
Millis = Annotated[float, Field(gt=0.0, le=MAX_MS)]
SeqTokens = _ints(1, MAX_SEQ)
Tokens = Annotated[float, Field(gt=0.0, le=MAX_TOKENS)]
BatchTokens = Annotated[float, Field(gt=0.0, le=1e12)]
BatchSeqs = _ints(1, 10 ** 9)
Rate = Annotated[float, Field(ge=0.0, le=MAX_RATE_RPS)]
Batch = _ints(0, 10 ** 6)
Billions = Annotated[float, Field(gt=0.0, le=1e6)]
Count = _ints(1, MAX_COUNT)
Dim = _ints(1, MAX_DIM)
DimOrZero = _ints(0, MAX_DIM)
TpCores = _ints(1, 64)
Figure = Annotated[float, Field(ge=0.0, le=MAX_FIGURE)]
PositiveFigure = Annotated[float, Field(gt=0.0, le=MAX_FIGURE)]
CapKw = Annotated[float, Field(gt=0.0, le=1e4)]
Pue = Annotated[float, Field(ge=1.0, le=5.0)]
NetworkFigure = Annotated[float, Field(gt=0.0, le=1e6)]
Seconds = Annotated[float, Field(gt=0.0, le=1e6)]
# A library call's whole numbers are ints: they go on to CP-SAT as given.
Workers = Annotated[int, Field(ge=1, le=256)]
Seed = Annotated[int, Field(ge=0, le=2 ** 31 - 1)]
ChipCount = Annotated[int, Field(ge=1, le=MAX_CHIPS)]
SeqOrZero = _ints(0, MAX_SEQ)         # a library Job's fields of the other kind are 0
Buckets = Annotated[int, Field(ge=1, le=10 ** 6)]


# ---------------------------------------------------------------- jobs files
#
# Jobs are TypedDicts, not models: validation then builds plain dicts, 2.3x
# faster than model instances, which is what 100k jobs in well under a second
# takes on a 2-core machine.  A field left out is absent; jobs.py applies the
# defaults the descriptions state.  null is accepted where it means "none" (no
# deadline, no SLO, no limit, no hints, no note), never for a number that has a
# default: JavaScript writes NaN as null, and a null priority is a bug upstream.

def _strict_dict(cls: type) -> type:
    return with_config(_STRICT)(cls)


@_strict_dict
class InlineModel(TypedDict):
    """A model shape given in the jobs file instead of a preset name."""
    name: NotRequired[Name]
    source: NotRequired[Note]
    params_b: Annotated[Billions, doc("total parameters, billions")]
    active_params_b: NotRequired[Annotated[Billions, doc("parameters active per token (default params_b)")]]
    layers: Annotated[Count, doc("transformer layers")]
    hidden: Annotated[Dim, doc("hidden width")]
    heads: NotRequired[Annotated[Count, doc("attention heads (default hidden / 128)")]]
    kv_heads: NotRequired[Annotated[Count, doc("key/value heads (default heads)")]]
    head_dim: NotRequired[Annotated[Count, doc("width of one head (default hidden / heads)")]]
    experts: NotRequired[Annotated[Count, doc("routed experts (default 1: dense)")]]
    top_k: NotRequired[Annotated[Count, doc("experts per token (default 1)")]]
    kv_dim: NotRequired[Annotated[Dim, doc("K+V elements cached per token and layer (default 2 kv_heads head_dim)")]]
    ffn: NotRequired[Annotated[Dim, doc("FFN width, a routed expert's for a MoE")]]
    vocab: NotRequired[Annotated[Dim, doc("vocabulary size")]]


@_strict_dict
class ChipRange(TypedDict):
    min: NotRequired[Annotated[Chips, doc("fewest chips (default 1)")]]
    max: NotRequired[Annotated[Chips | None, doc("most chips (default: no limit)")]]


@_strict_dict
class Parallelism(TypedDict):
    tp: NotRequired[Annotated[Chips, doc("tensor-parallel degree, a power of two")]]
    pp: NotRequired[Annotated[Chips, doc("pipeline stages")]]
    dp: NotRequired[Annotated[Chips, doc("data-parallel replicas")]]
    ep: NotRequired[Annotated[Chips, doc("expert-parallel degree")]]


@_strict_dict
class Slo(TypedDict):
    ttft_ms: NotRequired[Annotated[Millis | None, doc("time to first token target")]]
    tpot_ms: NotRequired[Annotated[Millis | None, doc("time per output token target")]]


def _model_tag(v: Any) -> str:
    return "preset" if isinstance(v, str) else "inline"


# Tags test `dict`, not typing.Mapping: its isinstance is 20x slower, and at
# 100k jobs that was most of the validation's time.
def _chips_tag(v: Any) -> str:
    return "range" if isinstance(v, dict) else "count"


ModelField = Annotated[Union[Annotated[Name, Tag("preset")], Annotated[InlineModel, Tag("inline")]],
                       Discriminator(_model_tag), doc("a preset name (trnsched models) or a shape")]
ChipsField = Annotated[Union[Annotated[Chips, Tag("count")], Annotated[ChipRange, Tag("range")]],
                       Discriminator(_chips_tag), doc("chips exactly, or {min, max} (default: any)")]


@_strict_dict
class _JobCommon(TypedDict):
    id: Name
    model: ModelField
    name: NotRequired[Note]
    note: NotRequired[Note]
    precision: NotRequired[Annotated[Literal["bf16", "fp8", "fp4"], doc("default bf16")]]
    chips: NotRequired[ChipsField | None]
    chip_types: NotRequired[Annotated[list[Name] | None, Field(min_length=1), doc("allowed chip types")]]
    stack: NotRequired[Annotated[Literal["cuda", "neuron", "any"], doc("default any")]]
    priority: NotRequired[Annotated[Priority, doc("placed priority is maximised first (default 1)")]]
    arrival_h: NotRequired[Annotated[Hours, doc("hours from now the job arrives (default 0)")]]
    deadline_h: NotRequired[Annotated[PositiveHours | None, doc("hours from now it must end by")]]
    parallelism: NotRequired[Parallelism | None]


@_strict_dict
class TrainJob(_JobCommon):
    kind: Literal["train"]
    tokens: Annotated[Tokens, doc("tokens to train on")]
    seq_len: NotRequired[Annotated[SeqTokens, doc("tokens per sequence (default 4096)")]]
    batch_tokens: NotRequired[Annotated[BatchTokens, doc("tokens per optimizer step (default 4Mi)")]]
    batch_seqs: NotRequired[Annotated[BatchSeqs, doc("sequences per optimizer step (instead of batch_tokens)")]]


Disaggregation = Literal["never", "allow", "require"]


@_strict_dict
class InferJob(_JobCommon):
    kind: Literal["infer"]
    prompt_tokens: Annotated[SeqTokens, doc("tokens per prompt")]
    output_tokens: Annotated[SeqTokens, doc("tokens per answer")]
    rate_rps: NotRequired[Annotated[Rate, doc("requests per second to sustain (default 0)")]]
    slo: NotRequired[Slo | None]
    duration_h: NotRequired[Annotated[PositiveHours, doc("hours the service runs (default 1)")]]
    batch: NotRequired[Annotated[Batch, doc("concurrent sequences (default 0: chosen)")]]
    offline: NotRequired[Annotated[bool, doc("batch work with no latency target (default false)")]]
    disaggregation: NotRequired[Annotated[Disaggregation, doc(
        "prefill and decode on separate pools, possibly of two chip types: never, allow (default: when "
        "cheaper) or require (needs rate_rps)")]]


def _kind_tag(v: Any) -> str | None:
    kind = v.get("kind") if isinstance(v, dict) else None
    return kind if kind == "train" or kind == "infer" else None


AnyJob = Annotated[Union[Annotated[TrainJob, Tag("train")], Annotated[InferJob, Tag("infer")]],
                   Discriminator(_kind_tag, custom_error_type="kind", custom_error_message="must be train or infer")]


@_strict_dict
class JobsFile(TypedDict):
    """A jobs file: {"jobs": [...]} (a bare list of jobs is read the same)."""
    jobs: list[AnyJob]
    name: NotRequired[Note]
    note: NotRequired[Note]


# --------------------------------------------------------------- fleet files

class _Strict(BaseModel):
    """Fleet-side objects.  A field typed without None and defaulted to None may
    be left out but not given as null: only power_cap_kw's null means something
    (no cap)."""
    model_config = _STRICT


class SourcedFigure(_Strict):
    """A chip figure with where it came from."""
    value: Figure
    source: Note = None
    status: Note = None
    note: Note = None


def _figure_tag(v: Any) -> str:
    return "sourced" if isinstance(v, dict) else "bare"


ChipFigure = Annotated[Union[Annotated[Figure, Tag("bare")], Annotated[SourcedFigure, Tag("sourced")]],
                       Discriminator(_figure_tag)]


class ChipTypeSpec(_Strict):
    """Overrides of a built-in chip type, or a new one (then every figure but
    peak_fp4_tflops and host_w is needed, with its stack).  Ranges beyond the
    schema's (positive TDP, whole domain size) are checked in catalog.py."""
    description: Note = None
    stack: Literal["cuda", "neuron"] = None
    family: Name = None
    tp_cores_per_chip: Annotated[TpCores, doc("tensor-parallel ranks one chip holds")] = None
    peak_bf16_tflops: Annotated[ChipFigure, doc("dense BF16 TFLOP/s")] = None
    peak_fp8_tflops: Annotated[ChipFigure, doc("dense FP8 TFLOP/s")] = None
    peak_fp4_tflops: Annotated[ChipFigure, doc("dense FP4 TFLOP/s (0: none)")] = None
    hbm_gb: Annotated[ChipFigure, doc("HBM capacity, GB")] = None
    hbm_tbps: Annotated[ChipFigure, doc("HBM bandwidth, TB/s")] = None
    tdp_w: Annotated[ChipFigure, doc("board power at full load, W")] = None
    idle_w: Annotated[ChipFigure, doc("idle power, W")] = None
    host_w: Annotated[ChipFigure, doc("host share per chip, W")] = None
    domain_size: Annotated[ChipFigure, doc("chips in one scale-up domain")] = None
    scaleup_gbps: Annotated[ChipFigure, doc("scale-up bandwidth per chip, GB/s")] = None
    scaleup_latency_us: Annotated[ChipFigure, doc("scale-up latency, us")] = None
    scaleout_gbps: Annotated[ChipFigure, doc("scale-out bandwidth per chip, GB/s")] = None
    scaleout_latency_us: Annotated[ChipFigure, doc("scale-out latency, us")] = None
    price_per_chip_hour: Annotated[ChipFigure, doc("price, USD per chip-hour")] = None


class NodeSpec(_Strict):
    """A host in a rack: where work is pinned when a placement is exported."""
    name: Annotated[Name, doc("the node's name in the cluster (Kubernetes node, Slurm NodeName)")]
    chip_type: Name
    chips: Annotated[Chips, doc("chips of chip_type on this node")]
    used: Annotated[ChipsOrZero, doc("chips already busy on this node")] = 0


class RackSpec(_Strict):
    """One scale-up domain: chips per type, how many are busy, the IT power cap,
    and (for exports) its nodes and the labels that select it."""
    id: Name
    chips: Annotated[dict[Name, Chips], Field(min_length=1), doc("chips installed per type")]
    used: Annotated[dict[Name, ChipsOrZero] | None, doc("chips already busy per type")] = None
    power_cap_kw: Annotated[CapKw | None, doc("IT power cap at the rack, kW (PUE excluded; null: none)")] = None
    pod: Name = "default"
    nodes: Annotated[list[NodeSpec] | None, doc("the rack's hosts (trnsched fleet import writes them)")] = None
    labels: Annotated[dict[Name, Text] | None, doc("labels every node of the rack carries")] = None
    domains: Annotated[Chips, doc("scale-up domains this entry stands for (default 1): its chips, busy chips "
                                  "and power cap are split evenly among that many racks <id>/0, <id>/1, ...")] = 1
    note: Note = None


class Network(_Strict):
    scaleout_gbps_per_chip: Annotated[NetworkFigure, doc("scale-out GB/s per chip")] = None
    latency_us_in_pod: Annotated[NetworkFigure, doc("latency within a pod, us")] = None


class FleetFile(_Strict):
    """A fleet file: racks, optional chip type overrides, PUE and network."""
    chip_types: dict[Name, ChipTypeSpec] | None = None
    network: Network | None = None
    pue: Annotated[Pue, doc("power usage effectiveness (default: the catalog's)")] = None
    racks: Annotated[list[RackSpec], Field(min_length=1)]
    name: Note = None
    note: Note = None


# ------------------------------------------------- the library's own objects

class _Attrs(BaseModel):
    """A library object read by attribute: the same ranges as the files."""
    model_config = ConfigDict(strict=True, allow_inf_nan=False, from_attributes=True, extra="ignore")


class ModelAttrs(_Attrs):
    name: Name
    params_b: Billions
    active_params_b: Billions
    layers: Count
    hidden: Dim
    heads: Count
    kv_heads: Count
    head_dim: Count
    experts: Count
    top_k: Count
    kv_dim: DimOrZero
    ffn: DimOrZero
    vocab: DimOrZero


class JobAttrs(_Attrs):
    id: Name
    kind: Literal["train", "infer"]
    model: ModelAttrs
    precision: Literal["bf16", "fp8", "fp4"]
    chips_min: Chips | None
    chips_max: Chips | None
    chip_types: Sequence[Name] | None
    stack: Literal["cuda", "neuron", "any"]
    priority: Priority
    arrival_h: Hours
    deadline_h: PositiveHours | None
    parallelism: dict[Literal["tp", "pp", "dp", "ep"], Chips]
    tokens: Annotated[float, Field(ge=0.0, le=MAX_TOKENS)]          # 0 for an inference job
    seq_len: SeqOrZero
    batch_seqs: Annotated[float, Field(ge=0.0, le=1e12)]
    rate_rps: Rate
    prompt_tokens: SeqOrZero          # 0 for a training job
    output_tokens: SeqOrZero
    slo_ttft_ms: Millis | None
    slo_tpot_ms: Millis | None
    duration_h: PositiveHours
    batch: Batch
    offline: bool
    disaggregation: Disaggregation


class ChipAttrs(_Attrs):
    name: Name
    stack: Literal["cuda", "neuron"]
    tp_cores_per_chip: TpCores
    peak_bf16_tflops: PositiveFigure
    peak_fp8_tflops: PositiveFigure
    peak_fp4_tflops: Figure
    hbm_gb: PositiveFigure
    hbm_tbps: PositiveFigure
    tdp_w: PositiveFigure
    idle_w: Figure
    host_w: Figure
    domain_size: Chips
    scaleup_gbps: PositiveFigure
    scaleup_latency_us: Figure
    scaleout_gbps: PositiveFigure
    scaleout_latency_us: Figure
    price_per_chip_hour: Figure


class NodeAttrs(_Attrs):
    name: Name
    chip_type: Name
    chips: Chips
    used: ChipsOrZero


class RackAttrs(_Attrs):
    id: Name
    chips: Annotated[dict[Name, Chips], Field(min_length=1)]
    used: dict[Name, ChipsOrZero]
    power_cap_kw: CapKw | None
    pod: Name
    nodes: Sequence[NodeAttrs]
    labels: dict[Name, Text]


class FleetAttrs(_Attrs):
    racks: Annotated[Sequence[RackAttrs], Field(min_length=1)]
    chip_types: dict[Name, ChipAttrs]
    pue: Pue


# ----------------------------------------- a result, as export reads it back

class _Loose(BaseModel):
    """A result file's parts export uses; the rest of the result is let be."""
    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)


class AllocationIn(_Loose):
    rack: Name
    chips: Chips


class PoolIn(_Loose):
    role: Literal["prefill", "decode"]
    chip_type: Name
    chips: Chips
    allocations: Annotated[list[AllocationIn], Field(min_length=1)]
    layout: dict[str, Annotated[float, Field(ge=0.0, le=MAX_CHIPS)] | None] = {}


class PlacementIn(_Loose):
    job: Name
    chip_type: Name
    chips: Chips
    priority: Priority = 1
    allocations: Annotated[list[AllocationIn], Field(min_length=1)]
    start_h: Hours | None = None
    end_h: Hours | None = None
    layout: dict[str, Annotated[float, Field(ge=0.0, le=MAX_CHIPS)] | None] = {}
    pools: Annotated[list[PoolIn], Field(min_length=2, max_length=2)] | None = None


class ResultIn(_Loose):
    placements: list[PlacementIn]


_RESULT = TypeAdapter(ResultIn)


# The library's arguments, with the ranges the command line's options have.
@_strict_dict
class SolveArguments(TypedDict):
    objective: Name
    policy: Name
    time_limit: Seconds
    workers: Workers
    seed: Seed
    horizon_h: PositiveHours | None
    time_weight: Annotated[float, Field(ge=0.0, le=1e6)]
    deterministic: bool
    backend: Literal["local", "ray"]
    ray_address: Name | None
    on_interrupt: Literal["stop", "best"]
    split_types: Literal["any", "same", "cross"]


@_strict_dict
class SimulateArguments(TypedDict):
    policy: Name
    objective: Name
    batch_s: Annotated[float, Field(ge=0.0, le=1e7)]
    time_limit: Seconds
    workers: Workers
    seed: Seed
    buckets: Buckets


@_strict_dict
class WhatIfArguments(TypedDict):
    chip_type: Name | None
    count: ChipCount | None
    pue: Pue | None
    backend: Literal["core", "python"]


def json_schema(which: str) -> dict:
    """JSON Schema (draft 2020-12) of a jobs file or a fleet file, for editors.
    A jobs file may also be a bare list of jobs; either may name its schema."""
    if which == "jobs":
        schema = TypeAdapter(Union[JobsFile, list[AnyJob]]).json_schema()
        schema["title"] = "trnsched jobs file"
        schema["$defs"]["JobsFile"]["properties"]["$schema"] = {"type": "string"}
    elif which == "fleet":
        schema = TypeAdapter(FleetFile).json_schema()
        schema["title"] = "trnsched fleet file"
        schema["properties"]["$schema"] = {"type": "string"}
    else:
        raise ValueError(f"no schema for {which!r}: jobs or fleet")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **_without_null_defaults(schema)}


def _without_null_defaults(node: Any) -> Any:
    """Drop `"default": null` where null is not allowed: pydantic writes it for a
    field that may be left out (and then takes the catalog's value) but not
    given as null, and an editor would offer null."""
    if isinstance(node, dict):
        nullable = node.get("type") == "null" or any(isinstance(o, dict) and o.get("type") == "null"
                                                     for o in node.get("anyOf", ()))
        return {k: _without_null_defaults(v) for k, v in node.items()
                if not (k == "default" and v is None and not nullable)}
    if isinstance(node, list):
        return [_without_null_defaults(v) for v in node]
    return node
