"""Regenerate the demo country as an analyst would receive it, and its model.

Run from the repository root::

    python datasets/demo/make_demo.py

Writes, in ``datasets/demo/``: ``encuesta_hogares.csv`` (the household survey
as a Spanish-locale export: ``;`` separators, decimal commas, cp1252),
``censo.parquet`` (the census), ``indicadores.xlsx`` (territory indicators),
``municipios.geojson`` (synthetic boundaries: one square per municipality),
``spec.toml`` (the feature specification) and ``golden.json`` (figures the
tests check); and in ``models/demo/``: ``model.json`` (fitted on the survey
with its design) and ``model.md`` (its model card). Everything is synthetic
(``clrisk.make_country``), so it can be shared freely.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import clrisk
from clrisk.io import read_table
from clrisk.modelfile import model_card

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "datasets" / "demo"
MODELS = ROOT / "models" / "demo"
SEED, TERRITORIES, REGIONS, CHILDREN, SURVEY = 2024, 60, 6, 400, 8000
FIT = {"outcome": "trabajo_infantil", "weight": "fexp", "strata": "estrato",
       "psu": "upm", "territory": "cod_mun"}  # fmt: skip


def boundaries(codes: list[str], names: list[str], regions: list[str]) -> dict:  # type: ignore[type-arg]
    """A square per municipality on a grid, regions in bands of rows."""
    side = int(np.ceil(np.sqrt(len(codes))))
    feats = []
    for i, (code, name, region) in enumerate(zip(codes, names, regions, strict=True)):
        x, y = -75.0 + 0.5 * (i % side), 5.0 + 0.5 * (i // side)
        ring = [[x, y], [x + 0.5, y], [x + 0.5, y + 0.5], [x, y + 0.5], [x, y]]
        feats.append({
            "type": "Feature",
            "properties": {"codigo": code, "nombre": name, "departamento": region},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        })  # fmt: skip
    return {"type": "FeatureCollection", "features": feats}


def main() -> None:
    c = clrisk.make_country(random_state=SEED, n_territories=TERRITORIES,
                            n_regions=REGIONS, children_per_territory=CHILDREN,
                            survey_children=SURVEY)  # fmt: skip
    DATA.mkdir(parents=True, exist_ok=True)
    MODELS.mkdir(parents=True, exist_ok=True)
    c.spec.to_toml(DATA / "spec.toml")
    survey = c.survey.copy()
    survey["fexp"] = survey["fexp"].map(lambda v: f"{v:.4f}".replace(".", ","))
    survey.to_csv(DATA / "encuesta_hogares.csv", sep=";", index=False,
                  encoding="cp1252")  # fmt: skip
    c.census.to_parquet(DATA / "censo.parquet", index=False)
    c.indicators.to_excel(DATA / "indicadores.xlsx", sheet_name="indicadores",
                          index=False)  # fmt: skip
    regions = c.truth.territories.set_index("territory")["region"]
    ind = c.indicators.set_index("codigo")
    geo = boundaries(list(ind.index), list(ind["nombre"]), list(regions[ind.index]))
    (DATA / "municipios.geojson").write_text(json.dumps(geo), encoding="utf-8")

    # the model is fitted on the files as shipped (weights rounded in the CSV)
    spec = clrisk.FeatureSpec.from_toml(DATA / "spec.toml")
    shipped, _ = read_table(DATA / "encuesta_hogares.csv")
    indicators, _ = read_table(DATA / "indicadores.xlsx")
    model = clrisk.RiskModel(spec).fit(shipped, **FIT, indicators=indicators)
    model.save(MODELS / "model.json")
    (MODELS / "model.md").write_text(model_card(model), encoding="utf-8")
    risk = clrisk.predict(model, c.census, **c.predict_kwargs)
    nat = risk.national().iloc[0]
    golden = {
        "seed": SEED,
        "survey_rows": len(c.survey),
        "census_rows": len(c.census),
        "territories": TERRITORIES,
        "national_expected_count": float(nat["expected_count"]),
        "national_risk_percent": float(nat["risk"]),
        "true_national_count": float(c.truth.territories["true_count"].sum()),
        "params": [float(v) for v in model.params_],
    }
    (DATA / "golden.json").write_text(json.dumps(golden, indent=1) + "\n",
                                      encoding="utf-8")  # fmt: skip
    print(f"wrote {DATA} and {MODELS}")


if __name__ == "__main__":
    main()
