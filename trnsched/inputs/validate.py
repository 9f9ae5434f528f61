"""Checking inputs against schema.py's definitions: the entry points that
validate a jobs file, a fleet file, a result, the library's objects and
arguments, and the translation of pydantic's errors into trnsched's one line
naming the file, the job and the field."""
from __future__ import annotations

from typing import Any, Mapping

from pydantic import TypeAdapter, ValidationError

from trnsched.inputs.errors import InputError
from trnsched.inputs.schema import (AnyJob, ChipAttrs, ChipRange, ChipTypeSpec, FleetAttrs, FleetFile, InferJob,
                                    InlineModel, JobAttrs, JobsFile, ModelAttrs, Name, Network, Parallelism,
                                    ResultIn, SimulateArguments, Slo, SolveArguments, TrainJob, WhatIfArguments)


_JOBS_FILE = TypeAdapter(JobsFile)
_JOB_LIST = TypeAdapter(list[AnyJob])
_JOB_OBJECTS = TypeAdapter(list[JobAttrs])
_MODEL_OBJECT = TypeAdapter(ModelAttrs)
_FLEET_OBJECT = TypeAdapter(FleetAttrs)
_CHIP_OBJECT = TypeAdapter(ChipAttrs)
_FLEET = TypeAdapter(FleetFile)
_CHIP_TYPES = TypeAdapter(dict[Name, ChipTypeSpec])
_ONLY_FOR = {"train": "a training job", "infer": "an inference job"}


def validate_jobs(data: Any, *, file: str | None) -> list[TrainJob | InferJob]:
    """The jobs of a decoded jobs file, typed and range-checked, or the first
    problem as one InputError naming the file, the job and the field."""
    if isinstance(data, Mapping):
        if "jobs" not in data:
            raise InputError("expected an object with a 'jobs' list, or a list of jobs", file=file, field="jobs")
        data = _without_schema_key(data, file)
        adapter = _JOBS_FILE
    elif isinstance(data, list):
        adapter = _JOB_LIST
    else:
        raise InputError("expected an object with a 'jobs' list, or a list of jobs", file=file)
    try:
        parsed = adapter.validate_python(data)
    except ValidationError as exc:
        raise _first_job_error(exc, data, file) from None
    return parsed if isinstance(parsed, list) else parsed["jobs"]


def validate_fleet(data: Any, *, file: str | None) -> FleetFile:
    """A decoded fleet file, typed and range-checked, or the first problem as
    one InputError naming the file and the field."""
    if not isinstance(data, Mapping):
        raise InputError("a fleet file must be a JSON object", file=file)
    data = _without_schema_key(data, file)
    try:
        return _FLEET.validate_python(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = _untagged(err["loc"])
        if len(loc) >= 2 and loc[0] == "racks" and isinstance(loc[1], int):
            raw = data["racks"][loc[1]] if isinstance(data.get("racks"), list) else None
            rid = raw.get("id") if isinstance(raw, Mapping) else None
            head = f"racks[{rid}]" if isinstance(rid, str) and rid and loc[2:] != ["id"] else f"racks[{loc[1]}]"
            loc = [head] + loc[2:]
        if err["type"] == "extra_forbidden" and len(loc) == 1:
            raise InputError("is not a known fleet field", file=file, field=str(loc[0])) from None
        raise _located(err, loc, file=file) from None


def validate_chip_types(data: Any, *, file: str | None) -> dict[str, ChipTypeSpec]:
    """chip_types given to the library (a fleet file's are checked with it)."""
    try:
        return _CHIP_TYPES.validate_python(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise _located(err, ["chip_types"] + _untagged(err["loc"]), file=file) from None


def validate_job_objects(jobs: list[Any]) -> None:
    """The library's Job objects, held to the same ranges as a file's."""
    try:
        _JOB_OBJECTS.validate_python(jobs)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = list(err["loc"])
        index = loc.pop(0) if loc and isinstance(loc[0], int) else None
        job = getattr(jobs[index], "id", None) if index is not None else None
        raise _located(err, loc, job=job if isinstance(job, str) else f"#{index}") from None


def validate_model_object(model: Any, *, file: str | None, job: str | None, given: set[str]) -> None:
    """An inline model once its defaults are filled in: a default derived from
    the fields given (heads from hidden, say) must be in range too."""
    try:
        _MODEL_OBJECT.validate_python(model)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        name = str(err["loc"][0])
        error = _located(err, ["model", name], file=file, job=job)
        if name not in given:
            error = InputError(f"{error.detail} (its default, from the fields given: give it in the model)",
                               file=file, job=job, field=f"model.{name}")
        raise error from None


def validate_fleet_object(fleet: Any) -> None:
    """A library Fleet object (racks built in code), held to a file's ranges."""
    try:
        _FLEET_OBJECT.validate_python(fleet)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = list(err["loc"])
        if len(loc) >= 2 and loc[0] == "racks" and isinstance(loc[1], int):
            rid = getattr(fleet.racks[loc[1]], "id", None)
            loc = [f"racks[{rid if isinstance(rid, str) and rid else loc[1]}]"] + loc[2:]
        raise _located(err, loc, file="<fleet>") from None


def validate_chip_object(chip: Any, *, file: str | None) -> None:
    """A chip type once a fleet file's overrides are applied: the same ranges a
    library ChipType is held to (a TDP of 0, say, is refused here)."""
    try:
        _CHIP_OBJECT.validate_python(chip)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise _located(err, ["chip_types", chip.name, *err["loc"]], file=file) from None


def _without_schema_key(data: Mapping[str, Any], file: str | None) -> Mapping[str, Any]:
    """A file may name its schema ("$schema", for editors); it is not data."""
    if "$schema" not in data:
        return data
    if not isinstance(data["$schema"], str):
        raise InputError(f"must be the schema's address, got {_shown(data['$schema'])}", file=file, field="$schema")
    return {k: v for k, v in data.items() if k != "$schema"}


def _first_job_error(exc: ValidationError, data: Any, file: str | None) -> InputError:
    err = exc.errors(include_url=False)[0]
    loc = _untagged(err["loc"])
    raw_jobs = data.get("jobs") if isinstance(data, Mapping) else data
    if isinstance(data, Mapping):
        if not loc or loc[0] != "jobs":
            if err["type"] == "extra_forbidden":
                return InputError("is not a known field of a jobs file (jobs, name, note)", file=file,
                                  field=_dotted(loc) or None)
            return _located(err, loc, file=file)
        loc = loc[1:]
    if not loc:
        return InputError("'jobs' must be a list", file=file, field="jobs")
    index, loc = loc[0], loc[1:]
    raw = raw_jobs[index] if isinstance(raw_jobs, list) and isinstance(index, int) else None
    rid = raw.get("id") if isinstance(raw, Mapping) else None
    job = rid if isinstance(rid, str) and rid.strip() and loc != ["id"] else f"#{index + 1}"
    if not loc:
        if not isinstance(raw, Mapping):
            return InputError(f"job #{index + 1} must be an object", file=file)
        return InputError(f"must be one of train, infer, got {raw.get('kind')!r}", file=file, job=job, field="kind")
    if err["type"] == "extra_forbidden" and len(loc) == 1:
        other = "infer" if raw.get("kind") == "train" else "train"
        owner = TrainJob if other == "train" else InferJob
        said = f"is only for {_ONLY_FOR[other]}" if loc[0] in owner.__annotations__ else "is not a known job field"
        return InputError(said, file=file, job=job, field=_dotted(loc))
    return _located(err, loc, file=file, job=job)


# pydantic puts a tagged union's tag in an error's path, after the field that
# holds the union (a job's kind after its index, a model's form after "model",
# a chip figure's after its name); these are dropped where they can stand, and
# only there, so that a key a user chose (a chip type named "range") stays.
_JOB_TAGS = {"train", "infer"}
_FIELD_TAGS = {"model": {"preset", "inline"}, "chips": {"count", "range"},
               **{name: {"bare", "sourced"} for name in ChipTypeSpec.model_fields if name not in
                  ("description", "stack", "family", "tp_cores_per_chip")}}


def _untagged(loc: tuple | list) -> list:
    out: list = []
    for p in loc:
        prev = out[-1] if out else None
        if isinstance(p, str) and ((isinstance(prev, int) and p in _JOB_TAGS)
                                   or (isinstance(prev, str) and p in _FIELD_TAGS.get(prev, ()))):
            continue
        out.append(p)
    return out


# Objects inside a job or a fleet, by the field that holds them: an unknown key
# in one is answered with the keys it has.
_NESTED = {"slo": Slo, "parallelism": Parallelism, "chips": ChipRange, "model": InlineModel, "network": Network}
# What a field takes, where "must be an object" would say too little.
_TAKES = {"model": "a preset name or an object", "chips": "a whole number or an object with min and max"}


def _fields(cls: type) -> list[str]:
    return list(cls.model_fields) if hasattr(cls, "model_fields") else list(cls.__annotations__)


def _dotted(loc: list[Any]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _located(err: Mapping[str, Any], loc: list[Any], *, file: str | None = None,
             job: str | None = None) -> InputError:
    """An error at `loc` (tags dropped), in trnsched's words."""
    if loc and loc[-1] == "[key]":          # a dict key itself is wrong, not its value
        return InputError(f"has a bad key {_shown(loc[-2])}: {_message(err, loc[:-1])}", file=file, job=job,
                          field=_dotted(loc[:-2]) or None)
    return InputError(_message(err, loc), file=file, job=job, field=_dotted(loc) or None)


def _message(err: Mapping[str, Any], loc: list[Any]) -> str:
    """pydantic's error in the words of the rest of trnsched's errors."""
    kind, got, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    shown = _shown(got)
    last = loc[-1] if loc else None
    if kind == "missing":
        return "is required"
    if got is None and kind.endswith("_type"):
        return "must not be null"
    if kind == "extra_forbidden":
        parent = _NESTED.get(str(loc[-2])) if len(loc) >= 2 else None
        return f"is not one of {', '.join(_fields(parent))}" if parent else "is not a known field"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return f"must be a whole number, got {shown}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, got {shown}"
    if kind == "finite_number":
        return f"must be a finite number, got {shown}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        word = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()))
        if kind == "greater_than" and bound == 0:
            return f"must be positive, got {shown}"
        if kind == "greater_than_equal" and bound == 0:
            return f"must be non-negative, got {shown}"
        if kind == "greater_than_equal" and bound == 1 and isinstance(got, int):
            return f"must be positive, got {shown}"
        return f"must be {word} {bound if isinstance(bound, int) else format(bound, 'g')}, got {shown}"
    if kind == "bool_type":
        return f"must be true or false, got {shown}"
    if kind == "string_type":
        return f"must be a string, got {shown}"
    if kind == "string_unicode":
        return f"must be valid Unicode text, got {shown}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"is longer than {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        return f"must be printable text with no control or invisible characters, got {shown}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '').replace(' or ', ', ')}, got {shown}".replace("'", "")
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be {_TAKES.get(str(last), 'an object')}, got {shown}"
    if kind in ("list_type", "tuple_type", "is_instance_of", "sequence_str"):
        return f"must be a list, got {shown}"
    if kind == "too_short":
        return "must not be empty"
    return f"{err['msg'][0].lower()}{err['msg'][1:]}, got {shown}"


def _shown(value: Any) -> str:
    """An offending value, short enough for one line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_RESULT = TypeAdapter(ResultIn)
_ARGUMENTS = {cls: TypeAdapter(cls) for cls in (SolveArguments, SimulateArguments, WhatIfArguments)}


def validate_result(data: Any, *, file: str) -> dict:
    """A result file (`solve -o`) as export reads it: placements with jobs,
    chips and rack allocations in range, allocations summing to the chips."""
    if not isinstance(data, Mapping) or "placements" not in data:
        raise InputError("is not a trnsched result (no 'placements' list)", file=file, field="placements")
    try:
        _RESULT.validate_python(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = list(err["loc"])
        job = None
        if len(loc) >= 2 and loc[0] == "placements" and isinstance(loc[1], int):
            entry = data["placements"][loc[1]]
            job = entry.get("job") if isinstance(entry, Mapping) and isinstance(entry.get("job"), str) else None
        raise _located(err, loc, file=file, job=job) from None
    for p in data["placements"]:
        for where, entry in [("", p)] + [(f"pools[{k}].", pool) for k, pool in enumerate(p.get("pools") or [])]:
            if sum(a["chips"] for a in entry["allocations"]) != entry["chips"]:
                raise InputError(f"allocations sum to {sum(a['chips'] for a in entry['allocations'])}, not "
                                 f"{entry['chips']}", file=file, job=p["job"], field=f"{where}allocations")
    return dict(data)


def check_arguments(schema: type, **values: Any) -> None:
    """A library call's arguments, held to the command line's ranges: the first
    one out of range is an InputError naming it."""
    try:
        _ARGUMENTS[schema].validate_python(values)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise InputError(_message(err, list(err["loc"])), field=str(err["loc"][0])) from None
