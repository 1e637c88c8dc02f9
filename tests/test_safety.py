"""Deterministic outputs and no network use (issue 6, security and robustness)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

import clrisk
from clrisk.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA, MODELS = ROOT / "datasets" / "demo", ROOT / "models" / "demo"


def test_same_inputs_give_byte_identical_files(tmp_path: Path) -> None:
    outs = []
    for i in range(2):
        out = tmp_path / f"r{i}.csv"
        assert (
            main(
                [
                    "predict",
                    str(DATA / "censo.parquet"),
                    "--model",
                    str(MODELS / "model.json"),
                    "--territory",
                    "municipio",
                    "--by",
                    "sex",
                    "-o",
                    str(out),
                    "--quiet",
                ]
            )
            == 0
        )
        outs.append(out)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert (tmp_path / "r0_by_sex.csv").read_bytes() == (
        tmp_path / "r1_by_sex.csv"
    ).read_bytes()


def test_model_files_differ_only_in_their_timestamp(tmp_path: Path) -> None:
    model = clrisk.load_model(MODELS / "model.json")
    a = json.loads(model.save(tmp_path / "a.json").read_text(encoding="utf-8"))
    b = json.loads(model.save(tmp_path / "b.json").read_text(encoding="utf-8"))
    for d in (a, b):
        d.pop("created"), d.pop("checksum")
    assert a == b


def test_no_network_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole workflow runs with every outgoing connection refused."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network use attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    assert (
        main(
            [
                "demo",
                "--out",
                str(tmp_path / "demo"),
                "--territories",
                "40",
                "--format",
                "json",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "predict",
                str(DATA / "censo.parquet"),
                "--model",
                str(MODELS / "model.json"),
                "--territory",
                "municipio",
                "-o",
                str(tmp_path / "r.xlsx"),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
