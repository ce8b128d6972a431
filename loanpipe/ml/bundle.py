"""A model version as the pipeline holds it: its CatBoost model, its feature spec and its metadata.

Its own module so that the registry (``model``) and the card (``model_card``) both import it and neither imports
the other's importer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loanpipe.ml.features import FeatureSpec


@dataclass
class ModelBundle:
    version: str
    spec: FeatureSpec
    native: bytes
    metadata: dict[str, Any]

    def predictor(self) -> Any:
        from loanpipe.ml.engine import load_native

        return load_native(self.native)
