"""Request and response shapes of POST /predict.

Requests are validated with `PredictRequest.model_validate_json` straight from the body bytes
(pydantic-core parses and validates in one pass). Responses are written straight to JSON bytes
(service/answer.py); the response models below document them in OpenAPI.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": "A gorgeous, heartfelt film."},
                {"texts": ["A gorgeous, heartfelt film.", "Dull and far too long."], "attention": True},
            ]
        },
    )

    text: str | None = Field(None, description="one text; or use `texts`")
    texts: list[str] | None = Field(None, description="several texts, answered in the same order")
    attention: bool = Field(True, description="false: omit the per-token attention weights")
    timeout_ms: int | None = Field(None, gt=0, description="deadline of this request (up to the server's maximum)")

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of `text` (a string) or `texts` (a list of strings)")
        return self

    def items(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class Token(BaseModel):
    text: str = Field(description="exactly text[start:end] of the caller's string")
    start: int
    end: int
    attention: float | None = Field(None, description="attention weight; the weights of one text sum to 1")
    piece: str = Field(description="the tokenizer's own token (e.g. '##ly')")


class Prediction(BaseModel):
    label: str
    score: float
    probabilities: dict[str, float]
    tokens: list[Token] | None = Field(None, description="absent when attention=false")
    truncated: bool = Field(description="the text was longer than the model's max_length tokens")


class ModelRef(BaseModel):
    name: str
    version: str


class PredictResponse(BaseModel):
    model: ModelRef
    predictions: list[Prediction]


class ErrorDetail(BaseModel):
    code: str
    message: str
    fix: str | None = None
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


RESPONSE_EXAMPLE: dict[str, Any] = {
    "model": {"name": "default", "version": "3f2a9c1b0d4e"},
    "predictions": [
        {
            "label": "positive",
            "score": 0.97,
            "probabilities": {"negative": 0.03, "positive": 0.97},
            "tokens": [
                {"text": "A", "start": 0, "end": 1, "attention": 0.02, "piece": "a"},
                {"text": "gorgeous", "start": 2, "end": 10, "attention": 0.61, "piece": "gorgeous"},
            ],
            "truncated": False,
        }
    ],
}
