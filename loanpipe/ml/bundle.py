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

    def initial_validation(self) -> dict[str, Any]:
        """The figures of the model's initial validation that the ECB's tests compare with (loanpipe.ml.ecb): its
        out-of-sample AUC (a promoted challenger's on the comparison rows; a bootstrap's chosen candidate's mean CV
        AUC) and its training sample's applications by grade (None where the model predates them, or for a
        challenger whose calibrator waits for its promotion)."""
        promotion = self.metadata.get("promotion") or {}
        discovery = self.metadata.get("discovery") or {}
        chosen = [c for c in discovery.get("candidates", []) if c.get("candidate") == discovery.get("decision", {})
                  .get("chosen")]
        if promotion.get("challenger_auc") is not None:
            auc, source = promotion["challenger_auc"], f"on the comparison rows of its promotion ({self.metadata.get('run_date')})"
        elif chosen:
            auc, source = chosen[0]["mean_auc"], f"mean {discovery.get('cv', {}).get('folds')}-fold CV AUC of its discovery"
        else:
            auc, source = None, None
        pending = (self.metadata.get("calibration") or {}).get("status") == "pending"  # its PDs are not calibrated
        return {"auc": auc, "auc_source": source,
                "grade_counts": None if pending else (self.spec.reference or {}).get("score", {}).get("grade_counts")}

    def predictor(self) -> Any:
        from loanpipe.ml.engine import load_native

        return load_native(self.native)
