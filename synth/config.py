"""Generator knobs: one frozen object, hashed into every record's ``config_hash``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import blake3

GENERATOR_NAME = "jitsynth.typed"
GENERATOR_VERSION = "1.0.0"


def _default_weights() -> dict[str, float]:
    # Relative weights of statement kinds; the generator normalises them.
    return {
        "assign": 4.0,
        "augassign": 2.0,
        "store": 2.0,
        "for": 1.5,
        "while": 0.5,
        "if": 1.5,
        "atomic": 1.0,
    }


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    min_statements: int = 3
    max_statements: int = 8
    max_depth: int = 2  # expression nesting
    max_block_depth: int = 2  # nesting of loops/branches
    max_helpers: int = 3
    min_arrays: int = 2
    max_arrays: int = 5
    max_loop_trip: int = 4
    use_structs: bool = True
    use_matrices: bool = True
    use_quaternions: bool = True
    statement_weights: dict[str, float] = field(default_factory=_default_weights)

    def validate(self) -> None:
        problems = []
        if not 1 <= self.min_statements <= self.max_statements:
            problems.append("need 1 <= min_statements <= max_statements")
        if not 1 <= self.min_arrays <= self.max_arrays:
            problems.append("need 1 <= min_arrays <= max_arrays")
        if self.max_depth < 1 or self.max_block_depth < 0 or self.max_helpers < 0:
            problems.append("max_depth >= 1, max_block_depth >= 0, max_helpers >= 0")
        if any(w < 0 for w in self.statement_weights.values()):
            problems.append("statement weights must be >= 0")
        if problems:
            raise ValueError("generator config: " + "; ".join(problems))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @property
    def config_hash(self) -> str:
        payload = f"{GENERATOR_NAME}/{GENERATOR_VERSION}/{self.to_json()}"
        return blake3.blake3(payload.encode()).hexdigest(length=8)
