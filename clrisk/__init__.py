"""clrisk: where children are most at risk of child labour, and why.

The public API::

    c = clrisk.make_country(random_state=0)                     # synthetic data + truth
    model = clrisk.RiskModel(c.spec).fit(c.survey, **c.fit_kwargs)
    risk = clrisk.predict(model, c.census, **c.predict_kwargs)   # TerritoryRisk
    plan = clrisk.prioritise(risk, budget=30)
    zones = clrisk.intervention_zones(risk, neighbours)          # Phase II
"""

from clrisk.datasets import Country, Truth, make_country
from clrisk.diagnostics import ClassificationTable, Diagnostics
from clrisk.effects import TerritoryEffects, territory_effects
from clrisk.exceptions import (
    ClriskError,
    ClriskWarning,
    DataValidationError,
    InvalidParameterError,
    ModelFormatError,
    SchemaError,
)
from clrisk.factors import FactorWeights
from clrisk.levels import Levels, classify
from clrisk.model import RiskModel
from clrisk.modelfile import load_model
from clrisk.outcome import AgeBand, OutcomeRule
from clrisk.prioritise import Priorities, prioritise
from clrisk.projection import predict, territory_stats
from clrisk.quality import DataQuality
from clrisk.scenario import Change, Scenario, simulate
from clrisk.scoring import TerritoryStats
from clrisk.sites import score_sites
from clrisk.spec import Feature, FeatureSpec, Source
from clrisk.territory import TerritoryRisk
from clrisk.validation import CrossValidation, cross_validate
from clrisk.vulnerability import VulnerabilityIndex, VulnerabilityResult
from clrisk.workbook import write_workbook
from clrisk.zones import InterventionZones, intervention_zones

__version__ = "0.1.0.dev0"

__all__ = [
    "AgeBand",
    "Change",
    "ClassificationTable",
    "ClriskError",
    "ClriskWarning",
    "Country",
    "CrossValidation",
    "DataQuality",
    "DataValidationError",
    "Diagnostics",
    "FactorWeights",
    "Feature",
    "FeatureSpec",
    "InterventionZones",
    "InvalidParameterError",
    "Levels",
    "ModelFormatError",
    "OutcomeRule",
    "Priorities",
    "RiskModel",
    "Scenario",
    "SchemaError",
    "Source",
    "TerritoryEffects",
    "TerritoryRisk",
    "TerritoryStats",
    "Truth",
    "VulnerabilityIndex",
    "VulnerabilityResult",
    "__version__",
    "classify",
    "cross_validate",
    "intervention_zones",
    "load_model",
    "make_country",
    "predict",
    "prioritise",
    "score_sites",
    "simulate",
    "territory_effects",
    "territory_stats",
    "write_workbook",
]
