"""Request and response models.

The ``/predict`` request model is not written here by hand: it is *built from the artifact's
feature schema* (``build_request_schema``), so the validator and ``/docs`` always describe the
model that is serving — its field names, units, bounds and categories — and follow it after a
hot reload. Validation is strict (no ``"3"`` or ``true`` for a number, no NaN/Infinity, no
unknown field) because a silently coerced input gives a confident wrong price.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic.json_schema import models_json_schema
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
REF_TEMPLATE = "#/components/schemas/{model}"


@dataclass(frozen=True)
class FeatureSpec:
    """One entry of the artifact's ``metadata["features"]`` (docs/ARCHITECTURE.md)."""

    name: str
    kind: Literal["numeric", "integer", "categorical"]
    required: bool
    unit: str
    description: str
    categories: frozenset[str]
    category_list: tuple[str, ...]
    lo: float  # training minimum: outside [lo, hi] is counted as out of range, not refused
    hi: float
    bounds: tuple[float, float] | None  # hard limits: outside is refused (422)
    example: Any

    @classmethod
    def from_metadata(cls, entry: Mapping[str, Any]) -> FeatureSpec:
        try:
            name = str(entry["name"])
            kind = entry["kind"]
        except KeyError as e:
            raise ValueError(f"feature entry {dict(entry)!r} has no {e.args[0]!r}") from None
        if kind not in ("numeric", "integer", "categorical"):
            raise ValueError(
                f"feature {name!r}: kind must be numeric, integer or categorical, got {kind!r}"
            )
        cats = tuple(str(c) for c in (entry.get("categories") or ()))
        bounds = entry.get("bounds")
        lo = entry.get("min")
        hi = entry.get("max")
        return cls(
            name=name,
            kind=kind,
            required=bool(entry.get("required", False)),
            unit=str(entry.get("unit") or ""),
            description=str(entry.get("description") or name),
            categories=frozenset(cats),
            category_list=cats,
            lo=float(lo) if lo is not None else -math.inf,
            hi=float(hi) if hi is not None else math.inf,
            bounds=(float(bounds[0]), float(bounds[1])) if bounds else None,
            example=entry.get("example"),
        )


def _sentence(text: str) -> str:
    """``text`` ending as a sentence (a full stop added unless it has one)."""
    return text if text.endswith((".", "?", "!")) else text + "."


def _field(spec: FeatureSpec) -> tuple[Any, Any]:
    """The pydantic ``(type, FieldInfo)`` of one feature: strict, documented, bounded."""
    extra: dict[str, Any] = {}
    if spec.kind != "categorical":
        typ: Any = float
        head = spec.description.removesuffix(".") if spec.unit else spec.description
        sentences = [head + (f" [{spec.unit}]" if spec.unit else "")]
        if math.isfinite(spec.lo) and math.isfinite(spec.hi):
            sentences.append(f"Training range {spec.lo:g} to {spec.hi:g}.")
            extra["x-training-range"] = [spec.lo, spec.hi]
        if spec.unit:
            extra["x-unit"] = spec.unit
        if spec.kind == "integer":
            typ = _whole_number(**_limits(spec))
        examples = [spec.example] if spec.example is not None else None
    else:
        typ = str
        sentences = [spec.description]
        if spec.category_list:
            sentences.append(
                f"Known categories: {', '.join(spec.category_list)}."
                " Others are accepted and reported as unknown."
            )
            extra["x-categories"] = list(spec.category_list)
        examples = list(spec.category_list) or ([spec.example] if spec.example else None)
    if not spec.required:
        typ = typ | None
        sentences.append("Optional: omitted or null is imputed as in training.")
    desc = " ".join(map(_sentence, sentences))
    default: Any = ... if spec.required else None
    kwargs = _limits(spec) if spec.kind != "integer" else {}
    return typ, Field(
        default,
        description=desc,
        examples=examples,
        json_schema_extra=extra or None,
        **kwargs,
    )


def _limits(spec: FeatureSpec) -> dict[str, Any]:
    """The constraints of a feature's value: its hard bounds, or a category's length."""
    if spec.kind == "categorical":
        return {"min_length": 1, "max_length": 100}
    return {"ge": spec.bounds[0], "le": spec.bounds[1]} if spec.bounds is not None else {}


def _value(spec: FeatureSpec) -> Any:
    """The type of one value of a feature, its constraints included: what ``_field``
    validates, for a list of values (a V2 tensor's ``data``)."""
    base: Any = str if spec.kind == "categorical" else float
    if spec.kind == "integer":
        typ: Any = _whole_number(**_limits(spec))
    else:
        typ = Annotated[base, Field(**_limits(spec))]
    return typ if spec.required else typ | None


def _whole(x: float) -> float:
    if not x.is_integer():
        raise PydanticCustomError(
            "int_from_float", "Input should be a valid integer, got a number with a fractional part"
        )
    return x


def _whole_number(**bounds: Any) -> Any:
    """A count, a year, a grade: a JSON number without a fractional part (``2.0`` is 2,
    ``2.5`` is refused), carried as a float like every numeric feature, documented as
    ``integer`` (with ``ge``/``le`` as its ``minimum``/``maximum``)."""
    schema: dict[str, Any] = {"type": "integer"}
    if bounds:
        schema.update(minimum=bounds["ge"], maximum=bounds["le"])
    return Annotated[float, Field(**bounds), AfterValidator(_whole), WithJsonSchema(schema)]


def _shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "instances" in value else "house"


@dataclass(frozen=True)
class RequestSchema:
    """The validators and OpenAPI pieces built once per loaded model."""

    house: type[BaseModel]
    batch: type[BaseModel]
    body: TypeAdapter[Any]  # one house or {"instances": [...]}
    rows: TypeAdapter[Any]  # a list of houses (the V2 route builds rows from tensors)
    tensors: TypeAdapter[Any]  # a V2 inference request whose tensors hold valid values
    components: dict[str, Any]  # JSON schemas to merge into components/schemas
    example: dict[str, Any]
    max_batch_size: int

    def validate(self, body: bytes) -> tuple[list[BaseModel], bool]:
        """Parse and validate a JSON body; return the rows and whether it was a batch.

        A body that does not even contain the text ``"instances"`` (nor a ``\\u`` escape,
        which can spell it: ``"\\u0069nstances"``) cannot be a batch, so it goes straight to
        the one-house model (half the cost of the tagged union). One that may be is tried as a
        batch first: the union's Python discriminator makes pydantic-core build the whole body
        as Python objects before validating, which doubles the cost of a 1,000-house batch.
        Only if that fails (an invalid batch, or a house whose text mentions "instances") does
        the union answer, with its own errors.
        """
        if b'"instances"' not in body and b"\\u" not in body:
            return [self.house.model_validate_json(body)], False
        try:
            batch = self.batch.model_validate_json(body)
            return list(batch.instances), True  # type: ignore[attr-defined]
        except ValidationError:
            pass
        parsed = self.body.validate_json(body)
        if isinstance(parsed, self.batch):
            return list(parsed.instances), True  # type: ignore[attr-defined]
        return [parsed], False


def build_request_schema(
    features: Sequence[FeatureSpec], max_batch_size: int, title: str = "House"
) -> RequestSchema:
    """Pydantic models for one house and a batch, from the artifact's feature schema."""
    fields: dict[str, Any] = {spec.name: _field(spec) for spec in features}
    example = {spec.name: spec.example for spec in features if spec.example is not None}
    config = ConfigDict(**_STRICT, title=title, json_schema_extra={"examples": [example]})
    house: type[BaseModel] = create_model(title, __config__=config, **fields)
    batch: type[BaseModel] = create_model(
        f"{title}Batch",
        __config__=ConfigDict(
            **_STRICT, json_schema_extra={"examples": [{"instances": [example, example]}]}
        ),
        instances=(
            list[house],  # type: ignore[valid-type]
            Field(
                min_length=1,
                max_length=max_batch_size,
                description=f"1 to {max_batch_size} houses",
                fail_fast=True,  # the first invalid house is reported, not every one
            ),
        ),
    )
    union = Annotated[
        Annotated[house, Tag("house")] | Annotated[batch, Tag("batch")],  # type: ignore[valid-type]
        Discriminator(_shape),
    ]
    _, defs = models_json_schema(
        [(house, "validation"), (batch, "validation")], ref_template=REF_TEMPLATE
    )
    return RequestSchema(
        house=house,
        batch=batch,
        body=TypeAdapter(union),
        rows=TypeAdapter(list[house]),  # type: ignore[valid-type]
        tensors=v2_request_of(features),
        components=defs.get("$defs", {}),
        example=example,
        max_batch_size=max_batch_size,
    )


def error_list(
    exc: ValidationError, max_errors: int, prefix: Sequence[str | int] = ("body",)
) -> list[dict[str, Any]]:
    """FastAPI-style ``[{"loc", "msg", "type"}]``, the first ``max_errors`` of them; the
    union's tag is dropped from ``loc``.

    The offending input is not echoed back: it may be a 16 MB body.
    """
    out = []
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    for err in errors[:max_errors]:
        loc = list(err["loc"])
        if loc and loc[0] in ("house", "batch"):
            loc = loc[1:]
        out.append({"loc": [*prefix, *loc], "msg": err["msg"], "type": err["type"]})
    return out


# --- static models: responses and the small JSON bodies --------------------------------------


class UnknownCategory(BaseModel):
    row: int = Field(description="Index of the house in the batch")
    feature: str
    value: str


class Interval(BaseModel):
    """A split-conformal prediction interval at the served ``INTERVAL_LEVEL``."""

    level: float = Field(description="Nominal coverage, e.g. 0.9")
    low: float = Field(description="Lower bound [USD]")
    high: float = Field(description="Upper bound [USD]")


class Explanation(BaseModel):
    """``exp(baseline + Σ contributions)`` (space ``log``; ``expm1`` for ``log1p``) or
    ``baseline + Σ contributions`` (space ``price``) is the price."""

    space: Literal["log", "log1p", "price"]
    method: Literal["exact-linear", "saabas"]
    baseline: float
    contributions: dict[str, float] = Field(description="Input feature -> its contribution")


_INTERVAL_DOC = (
    "Prediction interval at INTERVAL_LEVEL; absent when the artifact stores no intervals"
)


class PredictResponse(BaseModel):
    """The answer for one house."""

    price: float = Field(description="Predicted sale price [USD]")
    interval: Interval | None = Field(None, description=_INTERVAL_DOC)
    explanation: Explanation | None = Field(None, description="With ?explain=true")
    model_version: str
    request_id: str
    unknown_categories: dict[str, str] = Field(
        description="Categorical inputs never seen in training (feature -> value); they are "
        "encoded as all zeros, like the training encoder does"
    )


class BatchPredictResponse(BaseModel):
    """The answer for ``{"instances": [...]}``, prices in the order of the houses."""

    prices: list[float] = Field(description="Predicted sale prices [USD]")
    intervals: list[Interval] | None = Field(None, description=_INTERVAL_DOC + " (one per house)")
    explanations: list[Explanation] | None = Field(None, description="With ?explain=true")
    model_version: str
    request_id: str
    unknown_categories: list[UnknownCategory]


class ErrorMessage(BaseModel):
    detail: str


class HealthResponse(BaseModel):
    status: str
    model_version: str | None = None
    reason: str | None = None


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    path: str | None = Field(
        None,
        description="Artifact to load, inside the configured model directory (default: MODEL_PATH)",
        max_length=4096,
        pattern=r"^[^\x00]*$",  # no NUL byte: no file system takes one in a path
    )
    allow_downgrade: bool = Field(
        False, description="Load an artifact created before the serving one (a rollback)"
    )


class LoadShadowRequest(BaseModel):
    """Load an artifact as the shadow model, replacing any shadow; the champion is untouched."""

    model_config = ConfigDict(extra="forbid", strict=True)

    shadow_path: str = Field(
        description="Artifact to load as the shadow, inside the configured model directory",
        max_length=4096,
        pattern=r"^[^\x00]*$",
    )


class DropShadowRequest(BaseModel):
    """Stop scoring the shadow model."""

    model_config = ConfigDict(extra="forbid", strict=True)

    drop_shadow: Literal[True]


def _reload_kind(body: Any) -> str:
    if isinstance(body, dict):
        if "shadow_path" in body:
            return "load_shadow"
        if "drop_shadow" in body:
            return "drop_shadow"
    return "champion"


#: The body of ``POST /admin/reload``: the champion's reload (``path``, ``allow_downgrade``,
#: or nothing), or the shadow's (``shadow_path``, or ``drop_shadow``), never a mix: the key
#: present picks the shape, and a key of another shape is refused (422).
AnyReloadRequest = TypeAdapter(
    Annotated[
        Annotated[ReloadRequest, Tag("champion")]
        | Annotated[LoadShadowRequest, Tag("load_shadow")]
        | Annotated[DropShadowRequest, Tag("drop_shadow")],
        Discriminator(_reload_kind),
    ]
)
RELOAD_FIELDS = [*ReloadRequest.model_fields, "shadow_path", "drop_shadow"]


class ReloadResponse(BaseModel):
    model_version: str
    previous_version: str | None
    sha256: str
    path: str


class ShadowModel(BaseModel):
    model_version: str
    sha256: str
    path: str


class ShadowReloadResponse(BaseModel):
    """The answer to a reload of the shadow (``shadow_path`` or ``drop_shadow``)."""

    shadow: ShadowModel | None = Field(description="The shadow now scored, or null")
    previous_shadow_version: str | None


class FeedbackRequest(BaseModel):
    """The sale price finally observed for a served prediction: either the answer's
    ``request_id`` (and ``index``, the house's position in a batch), which the server looks up
    among its recent predictions, or the ``model_version`` and ``predicted_price`` it gave."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {"request_id": "4f1c0e2a9b7d4c3e8a6f5b2d1e0c9a8b", "actual_price": 208500.0},
                {
                    "model_version": "20261201T000000Z",
                    "predicted_price": 201000.0,
                    "actual_price": 208500.0,
                },
            ]
        },
    )

    request_id: str | None = Field(
        None, max_length=128, description="As /predict returned it; found among recent answers"
    )
    index: int | None = Field(
        None, ge=0, description="The house's position in a batch answer (default 0)"
    )
    model_version: str | None = Field(None, max_length=128)
    predicted_price: float | None = Field(
        None, gt=0, le=1e9, description="As /predict returned it [USD]"
    )
    actual_price: float = Field(gt=0, le=1e9, description="Observed sale price [USD]")

    @model_validator(mode="after")
    def _one_way(self) -> FeedbackRequest:
        if (self.model_version is None) != (self.predicted_price is None):
            raise ValueError("model_version and predicted_price go together")
        if self.model_version is None and self.request_id is None:
            raise ValueError("give request_id, or model_version and predicted_price")
        if self.index is not None and self.model_version is not None:
            raise ValueError("index goes with request_id alone, not with predicted_price")
        return self


class FeedbackScore(BaseModel):
    model_version: str
    predicted_price: float
    abs_error: float
    squared_error: float


class FeedbackResponse(BaseModel):
    model_version: str
    abs_error: float
    squared_error: float
    request_id: str | None = Field(None, description="With feedback by request id")
    index: int | None = None
    predicted_price: float | None = Field(None, description="The champion's price, looked up")
    shadow: FeedbackScore | None = Field(
        None, description="The shadow model's price of the same house, when it priced it"
    )


# --- Open Inference Protocol (V2) --------------------------------------------------------------


class V2Tensor(TypedDict):
    """An input tensor; ``data`` holds JSON scalars (or ``[n, 1]`` rows), checked per feature
    by the house validator once the tensors are turned into rows."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    name: str
    shape: list[int]
    datatype: str
    parameters: NotRequired[dict[str, Any]]
    data: list[Any]


class V2RequestOutput(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    name: str
    parameters: NotRequired[dict[str, Any]]


#: A V2 request's ``id``: it becomes the request id, so it is bounded as one.
V2Id = Annotated[str, Field(max_length=128)]


class V2InferenceRequest(TypedDict):
    """Typed dicts, not models: pydantic-core checks the structure while parsing the JSON and
    hands back plain dicts, with no object built per tensor."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    id: NotRequired[V2Id]
    parameters: NotRequired[dict[str, Any]]
    inputs: Annotated[list[V2Tensor], Field(min_length=1)]
    outputs: NotRequired[list[V2RequestOutput]]


V2_REQUEST: TypeAdapter[V2InferenceRequest] = TypeAdapter(V2InferenceRequest)
#: The datatypes a numeric feature's tensor may have (its values are validated as numbers).
V2_NUMERIC_TYPES = (
    *("FP64", "FP32", "FP16", "INT8", "INT16", "INT32", "INT64"),
    *("UINT8", "UINT16", "UINT32", "UINT64"),
)


def v2_request_of(features: Sequence[FeatureSpec]) -> TypeAdapter[Any]:
    """:data:`V2_REQUEST` narrowed to one model: each input tensor is one of its features
    (told apart by ``name``), of that feature's datatype, its ``data`` a flat list of that
    feature's values, validated as ``/predict`` validates them.

    What it accepts, the generic request and the house validator accept too; it only takes
    the common request's path in one pass, and anything it refuses is checked again the
    generic way, whose errors name the input and element.
    """
    strict = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    tensors = []
    for spec in features:
        datatype = Literal["BYTES"] if spec.kind == "categorical" else Literal[V2_NUMERIC_TYPES]
        fields = {
            "name": Literal[spec.name],
            "shape": list[int],
            "datatype": datatype,
            "parameters": NotRequired[dict[str, Any]],
            "data": list[_value(spec)],  # type: ignore[misc]
        }
        tensor = TypedDict(f"V2Tensor_{len(tensors)}", fields)  # type: ignore[misc]
        tensor.__pydantic_config__ = strict  # type: ignore[attr-defined]
        tensors.append(tensor)
    one_of = Annotated[Union[tuple(tensors)], Discriminator("name")]  # type: ignore[valid-type]  # noqa: UP007

    class Request(TypedDict):
        __pydantic_config__ = strict  # type: ignore[misc]

        id: NotRequired[V2Id]
        parameters: NotRequired[dict[str, Any]]
        inputs: Annotated[list[one_of], Field(min_length=1)]  # type: ignore[valid-type]
        outputs: NotRequired[list[V2RequestOutput]]

    return TypeAdapter(Request)


class V2OutputTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class V2InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str
    outputs: list[V2OutputTensor]


class V2TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class V2ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]


class V2Error(BaseModel):
    error: str


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    """400 (malformed JSON) and 422 (invalid values): every error names its field in ``loc``;
    at most ``MAX_ERRORS`` are listed, ``error_count`` says how many there were."""

    detail: list[ErrorDetail]
    error_count: int = Field(description="All the errors found; `detail` lists the first ones")
