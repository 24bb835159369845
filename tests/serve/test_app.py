"""The web app as a user and a script meet it: `python -m serve` on a free loopback port over
the store the session pipeline filled, called through Gradio's API (gradio_client)."""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from serve.models import champion_label, choices
from stages.core import tracking
from tests.conftest import REPO
from tests.flows.conftest import stop
from tests.serve.conftest import start_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(app) -> Client:
    return Client(app, verbose=False)


@pytest.fixture(scope="module")
def labels(pipeline) -> dict[str, str]:
    tracking.configure(pipeline)
    try:
        return {task: champion_label(task) for task in ("simpsons", "detection", "churn")}
    finally:
        mlflow.set_tracking_uri(None)


def png(tensor: torch.Tensor, path: Path) -> Path:
    Image.fromarray(tensor.permute(1, 2, 0).numpy()).save(path)
    return path


def test_a_test_image_is_classified_as_its_character(client, labels, pipeline, tmp_path):
    test = torch.load(pipeline / "data/processed/simpsons/test.pt")
    classes = json.loads((pipeline / "data/processed/simpsons/classes.json").read_text())["classes"]
    hits = 0
    for index in range(5):
        image = png(test["images"][index], tmp_path / f"{index}.png")
        top, every = client.predict(
            [handle_file(str(image))], 3, labels["simpsons"], api_name="/simpsons"
        )
        assert len(top["confidences"]) == 3
        assert abs(sum(every[0]["top"].values()) - 1) < 0.5
        hits += top["label"] == classes[int(test["labels"][index])]
    assert hits >= 4, f"{hits} of 5 test images classified as their character"


def test_detection_keeps_only_the_chosen_classes_limit_and_confidence(
    client, labels, pipeline, tmp_path
):
    test = torch.load(pipeline / "data/processed/detection/test.pt")
    shown = []
    for index in range(4):
        image = png(test["images"][index], tmp_path / f"{index}.png")
        drawn, table, download = client.predict(
            handle_file(str(image)), ["head"], 1, 0.3, labels["detection"], api_name="/detection"
        )
        rows = pd.DataFrame(table["data"], columns=table["headers"])
        assert set(rows["class"]) <= {"head"}
        assert len(rows) <= 1
        assert (rows["score"] >= 0.3).all()
        assert Image.open(download).size == Image.open(image).size
        shown.append(len(rows))
    assert sum(shown) >= 2, "no head found on test images that have heads"

    everything = client.predict(
        handle_file(str(tmp_path / "0.png")),
        ["head", "helmet"],
        50,
        0.0,
        labels["detection"],
        api_name="/detection",
    )[1]
    assert len(everything["data"]) > 1


def test_a_lesion_mask_overlaps_the_drawn_truth(client, pipeline, tmp_path):
    test = torch.load(pipeline / "data/processed/segmentation/test.pt")
    label = None  # the champion
    ious = []
    for index in range(3):
        image = png(test["images"][index], tmp_path / f"{index}.png")
        _overlay, share, mask_png = client.predict(
            handle_file(str(image)), 0.5, 0.5, label, api_name="/segmentation"
        )
        mask = np.asarray(Image.open(mask_png)) > 0
        truth = test["masks"][index].reshape(mask.shape).numpy() > 0
        ious.append((mask & truth).sum() / max((mask | truth).sum(), 1))
        assert share.startswith("lesion: ") and share.endswith("% of the image")
    assert min(ious) > 0.6, ious


def test_a_test_sentence_is_translated_into_russian(client, pipeline):
    from stages.nmt.preprocess import load_split

    source = load_split(pipeline / "data/processed/nmt", "test").source[:3]
    translation, attention = client.predict("\n".join(source), 2, 2, None, api_name="/nmt")
    lines = translation.splitlines()
    assert len(lines) == 3
    assert all(re.search("[а-яА-ЯёЁ]", line) for line in lines), lines
    assert attention is not None
    with pytest.raises(AppError, match="no text"):
        client.predict("   ", 2, 1, None, api_name="/nmt")
    with pytest.raises(AppError, match="expected at most"):
        client.predict("word " * 2000, 2, 1, None, api_name="/nmt")


def test_a_series_forecast_covers_the_rows_to_forecast_and_its_test_window(client, pipeline):
    future = pd.read_parquet(pipeline / "data/processed/timeseries/future.parquet")
    panel = pd.read_parquet(pipeline / "data/processed/timeseries/panel.parquet")
    start = pd.Timestamp(
        json.loads((pipeline / "data/processed/timeseries/split.json").read_text())["test_start"]
    )
    store, family = future["store_nbr"].iloc[0], future["family"].iloc[0]
    plot, table = client.predict(int(store), str(family), None, api_name="/timeseries")
    rows = pd.DataFrame(table["data"], columns=table["headers"])
    ahead = rows[rows["window"] == "forecast"]
    expected = future[(future["store_nbr"] == store) & (future["family"] == family)]
    assert len(ahead) == len(expected) > 0
    assert (ahead["forecast"] >= 0).all() and ahead["forecast"].sum() > 0
    # the test window: the version's forecasts made before it, next to the actual sales
    tested = rows[rows["window"] == "test"]
    series = panel[(panel["store_nbr"] == store) & (panel["family"] == family)]
    actual = series[series["date"] >= start].sort_values("date")
    assert list(tested["date"]) == list(actual["date"].dt.strftime("%Y-%m-%d"))
    assert np.allclose(tested["actual"].astype(float), actual["sales"].round(2), atol=0.01)
    assert tested["forecast"].astype(float).notna().all()
    assert plot is not None


def test_compare_runs_two_versions_on_the_same_input(client, pipeline, tmp_path):
    """Every tab's /<task>_compare: the first version's outputs, then the second's; the same
    version twice gives the same answer twice."""
    test = torch.load(pipeline / "data/processed/simpsons/test.pt")
    image = handle_file(str(png(test["images"][0], tmp_path / "0.png")))
    tracking.configure(pipeline)
    try:
        options = [c.label for c in choices("simpsons")]
        translators = [c.label for c in choices("nmt")]
    finally:
        mlflow.set_tracking_uri(None)
    first, second = options[0], options[-1]
    top_a, _every_a, top_b, _every_b = client.predict(
        [image], 3, first, second, api_name="/simpsons_compare"
    )
    assert len(top_a["confidences"]) == len(top_b["confidences"]) == 3
    same = client.predict([image], 3, first, first, api_name="/simpsons_compare")
    assert same[0] == same[2]
    with pytest.raises(AppError, match="choose the second version"):
        client.predict([image], 3, first, None, api_name="/simpsons_compare")

    translation_a, _attention_a, translation_b, _attention_b = client.predict(
        "The cat sleeps.", 1, 1, translators[0], translators[-1], api_name="/nmt_compare"
    )
    assert translation_b and re.search("[а-яА-ЯёЁ]", translation_a)


def churn_frame(pipeline: Path, rows: int) -> pd.DataFrame:
    holdout = pd.read_parquet(pipeline / "data/processed/churn/holdout.parquet")
    return holdout.drop(columns=["Churn"]).head(rows).reset_index(drop=True)


def test_churn_form_and_csv_agree_with_the_registered_model(client, labels, pipeline, tmp_path):
    from stages.churn.schema import FEATURES, NUMERIC

    frame = churn_frame(pipeline, 30)
    frame.insert(0, "Id", range(100, 130))
    frame.to_csv(tmp_path / "clients.csv", index=False)
    result, _preview = client.predict(
        handle_file(str(tmp_path / "clients.csv")), labels["churn"], api_name="/churn_csv"
    )
    scored = pd.read_csv(result)
    assert list(scored.columns) == ["Id", "Churn"] and list(scored["Id"]) == list(range(100, 130))

    tracking.configure(pipeline)
    try:
        model = mlflow.sklearn.load_model("models:/churn@champion")
    finally:
        mlflow.set_tracking_uri(None)
    expected = model.predict_proba(frame[FEATURES])[:, 1]
    assert np.allclose(scored["Churn"], expected, atol=1e-9)

    first = frame.iloc[0]
    values = [float(first[c]) if c in NUMERIC else str(first[c]) for c in FEATURES]
    probability, reasons = client.predict(*values, labels["churn"], api_name="/churn")
    churn = {c["label"]: c["confidence"] for c in probability["confidences"]}["churn"]
    assert abs(churn - expected[0]) < 1e-6
    assert len(reasons["data"]) == 5


def bomb_png(path: Path, side: int = 30_000) -> Path:
    """A PNG whose header claims side x side pixels: 70 bytes on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def test_bad_input_gets_one_clear_message_and_the_app_keeps_serving(
    client, app, labels, pipeline, tmp_path
):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo")
    good = png(
        torch.load(pipeline / "data/processed/detection/test.pt")["images"][0],
        tmp_path / "good.png",
    )
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases = {
        text: "not an image",
        truncated: "damaged",
        bomb_png(tmp_path / "bomb.png"): "expected at most",
    }
    for path, message in cases.items():
        with pytest.raises(AppError, match=message):
            client.predict(
                handle_file(str(path)), None, 5, 0.5, labels["detection"], api_name="/detection"
            )
    with pytest.raises(AppError, match="'dog' .*is not in the list of choices"):
        client.predict(
            handle_file(str(good)), ["dog"], 5, 0.5, labels["detection"], api_name="/detection"
        )

    frame = churn_frame(pipeline, 5)
    broken = {
        "missing": frame.drop(columns=["TotalSpent"]),
        "extra": frame.assign(Favourite="blue"),
        "mistyped": frame.assign(ClientPeriod=["ten", *frame["ClientPeriod"][1:]]),
        "unknown value": frame.assign(Sex=["Robot", *frame["Sex"][1:]]),
    }
    messages = {
        "missing": "missing column\\(s\\) TotalSpent",
        "extra": "unexpected column\\(s\\) Favourite",
        "mistyped": "column ClientPeriod: 'ten' \\(row 1\\) is not a number",
        "unknown value": "column Sex: 'Robot' \\(row 1\\), expected one of Female, Male",
    }
    for case, broken_frame in broken.items():
        path = tmp_path / f"{case.replace(' ', '_')}.csv"
        broken_frame.to_csv(path, index=False)
        with pytest.raises(AppError, match=messages[case]):
            client.predict(handle_file(str(path)), labels["churn"], api_name="/churn_csv")

    large = tmp_path / "large.png"
    large.write_bytes(b"\0" * (11 * 1024 * 1024))
    with large.open("rb") as body:
        upload = httpx.post(f"{app}gradio_api/upload", files={"files": body}, timeout=60)
    assert upload.status_code == 413

    # and the next user is served as before
    table = client.predict(
        handle_file(str(good)),
        ["head", "helmet"],
        5,
        0.3,
        labels["detection"],
        api_name="/detection",
    )[1]
    assert "headers" in table


def test_a_store_without_models_says_so_in_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    process, url = start_app(tmp_path, tmp_path / "app.log")
    try:
        with pytest.raises(AppError, match="no model is registered yet: run the pipeline first"):
            Client(url, verbose=False).predict(
                [handle_file(str(bomb_png(tmp_path / "x.png", 8)))], 3, None, api_name="/simpsons"
            )
    finally:
        stop(process, tmp_path / "app.log")
    assert "Traceback" not in (tmp_path / "app.log").read_text()
