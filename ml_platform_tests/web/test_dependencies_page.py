"""A model's page lists every source it depends on: in the Dagster UI (the model asset's definition metadata, and a
trust tag on every source asset) and on the command line (`ml-platform dependencies`)."""

from __future__ import annotations

import dagster as dg

from ml_platform.build import build_definitions
from ml_platform.cli import main
from ml_platform.features.library import load_catalog
from ml_platform.names import TRUST_TAG, source_key, stage_key

from ml_platform_tests.helpers import january_model

SMALL = january_model(name="flight_delay_small", features=["departure_hour", "carrier_code", "eve_temp_f"])
WEATHER_REASON = " ".join(SMALL["data_dependencies"]["accept"]["weather"]["reason"].split())


def test_the_model_asset_shows_its_data_dependencies_and_sources_carry_their_trust(make_project):
    project = make_project({"flight_delay_small": SMALL})
    graph = build_definitions(load_catalog(project.specs_dir, project.root), project.storage).resolve_asset_graph()

    table = graph.get(stage_key("model", "flight_delay_small")).metadata["data_dependencies"]

    assert isinstance(table, dg.MarkdownMetadataValue)
    assert table.value.splitlines() == [
        "| source | trust | partitioning | read through | model features | opt-in |",
        "|---|---|---|---|---|---|",
        "| flights | internal | daily | entity (rows, label, money) | all | not needed (internal) |",
        "| weather | external_vendor | daily | origin_weather_eve | eve_temp_f | accepted by team:flight-ops-ds on "
        f"2026-11-28: {WEATHER_REASON} |",
    ]
    trust = {name: graph.get(source_key(name)).tags.get(TRUST_TAG)
             for name in ("flights", "weather", "planes", "airports")}
    assert trust == {"flights": "internal", "weather": "external_vendor", "planes": "external_vendor",
                     "airports": "external_vendor"}
    assert {key for key in graph.get_all_asset_keys() if key.path[0] == "source"} == {
        source_key(name) for name in trust}


def test_dependencies_command_prints_every_source_and_names_an_unknown_model(make_project, capsys):
    project = make_project({"flight_delay_small": SMALL})

    assert main(["--project", str(project.root), "dependencies", "flight_delay_small"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:9] == [
        "flight_delay_small depends on 2 source(s); 1 not internal, each accepted in its spec: weather",
        "  flights (internal, daily)",
        "    read through    entity (rows, label, money)",
        "    model features  all",
        "    opt-in          not needed (internal)",
        "  weather (external_vendor, daily)",
        "    read through    origin_weather_eve",
        "    model features  eve_temp_f",
        "    opt-in          accepted by team:flight-ops-ds on 2026-11-28: NOAA's hourly observations at EWR, JFK "
        "and LGA,",
    ]

    assert main(["--project", str(project.root), "dependencies", "flight_delay_smal"]) == 2
    assert capsys.readouterr().err == ("error: unknown model 'flight_delay_smal'; did you mean 'flight_delay_small'? "
                                       "(allowed: flight_delay_small)\n")
