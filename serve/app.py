"""The Gradio app: a tab per task over its registered versions (champion by default). Every
handler is also an HTTP API endpoint (Gradio's own, `api_name` = the task), so scripts call the
same models with `gradio_client`."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw

from serve import inputs, models
from serve.inputs import BadInput
from stages.core import tracking
from stages.core.errors import UserError
from stages.core.params import PARAMS_FILE, load_params

MAX_FILE_SIZE = "10mb"  # Gradio answers 413 above it
PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6"]


def user_errors(handler: Callable) -> Callable:
    """Bad input and a missing model become one message in the page / API, never a trace."""

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except (BadInput, UserError) as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    return wrapped


class Outputs:
    """Files a request hands back (images, PNG and CSV downloads), each under a folder of its
    own: Gradio copies a returned path into its cache by an atomic rename, while an image it
    is handed as pixels is written in place under the hash of its bytes, and two identical
    concurrent requests would read each other's half-written file. Folders older than
    `keep_seconds` are removed as new ones are made."""

    def __init__(self, keep_seconds: float = 3600):
        self.root = Path(tempfile.mkdtemp(prefix="serve-outputs-"))
        self.keep_seconds = keep_seconds

    def path(self, name: str) -> Path:
        cutoff = time.time() - self.keep_seconds
        for old in self.root.iterdir():
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=self.root)) / name

    def image(self, image: Image.Image, name: str) -> str:
        path = self.path(name)
        image.save(path)
        return str(path)


class Models:
    """The registry of one repository's store and the versions loaded from it."""

    def __init__(self, root: Path):
        self.root = root
        tracking.configure(root)
        self.cache = models.ModelCache(root)
        self.outputs = Outputs()

    def torch_model(self, task: str, label: str | None):
        import mlflow

        choice = models.resolve(task, label)

        def load(uri: str):
            network = mlflow.pytorch.load_model(uri, map_location="cpu").eval()
            return network, tracking.model_card(uri)

        return self.cache.get(task, choice, load)

    def translator(self, label: str | None):
        """The version's network and the tokenizers logged with its run (stages/nmt/scoring)."""
        from stages.core.comparison import Unscorable
        from stages.nmt.scoring import load_network, version_tokenizers

        choice = models.resolve("nmt", label)

        def load(uri: str):
            try:
                return load_network(uri, choice.version).eval(), version_tokenizers(uri)
            except Unscorable as exc:
                raise UserError(f"nmt: {exc}") from None

        return self.cache.get("nmt", choice, load)

    def sklearn_model(self, task: str, label: str | None):
        import mlflow

        return self.cache.get(task, models.resolve(task, label), mlflow.sklearn.load_model)

    def inference_defaults(self):
        from stages.detection.params import InferenceParams

        try:
            return load_params(self.root / PARAMS_FILE).task("detection").evaluate.inference
        except (UserError, KeyError):
            return InferenceParams()


def classify(store: Models, paths: list[str] | None, top_k: int, label: str | None):
    from stages.simpsons.train import predict

    if not paths:
        raise BadInput("no image: upload one or more images")
    network, card = store.torch_model("simpsons", label)
    size = int(card["image_size"])
    images = [inputs.read_image(path) for path in paths]
    batch = torch.from_numpy(np.stack([inputs.as_uint8_chw(i, (size, size)) for i in images]))
    probabilities = predict(network, batch)
    classes = card["classes"]
    results = []
    for path, row in zip(paths, probabilities, strict=True):
        best = np.argsort(row)[::-1][: int(top_k)]
        results.append({"image": Path(path).name, "top": {classes[i]: float(row[i]) for i in best}})
    return results[0]["top"], results


def draw_boxes(image: Image.Image, boxes: list[dict]) -> Image.Image:
    drawn = image.copy()
    pen = ImageDraw.Draw(drawn)
    names = sorted({b["class"] for b in boxes})
    for box in boxes:
        colour = PALETTE[names.index(box["class"]) % len(PALETTE)]
        xyxy = [box["x1"], box["y1"], box["x2"], box["y2"]]
        pen.rectangle(xyxy, outline=colour, width=max(2, image.width // 200))
        pen.text((xyxy[0] + 3, xyxy[1] + 2), f"{box['class']} {box['score']:.2f}", fill=colour)
    return drawn


def detect_objects(
    store: Models,
    path: str | None,
    classes: list[str] | None,
    max_per_class: int,
    min_confidence: float,
    label: str | None,
):
    """The same `detect(...)` evaluate uses, with the user's classes, limit and confidence."""
    from stages.detection.model import detect

    image = inputs.read_image(path)
    network, card = store.torch_model("detection", label)
    known = card["classes"]
    # a class outside the card's: Gradio's dropdown refuses it, naming the choices
    if not 0 <= float(min_confidence) <= 1 or int(max_per_class) < 1:
        raise BadInput("min_confidence: expected 0-1; max_per_class: expected 1 or more")
    scale = int(card["image_size"]) / max(image.size)
    resized = image.resize((round(image.width * scale), round(image.height * scale)))
    tensor = torch.from_numpy(inputs.as_uint8_chw(resized))
    keep = [known.index(c) + 1 for c in classes] if classes else None
    found = detect(
        network,
        [tensor],
        keep=keep,
        min_confidence=float(min_confidence),
        max_per_class=int(max_per_class),
    )[0]
    boxes = [
        {
            "class": known[int(lab) - 1],
            "score": round(float(score), 4),
            **dict(zip(("x1", "y1", "x2", "y2"), (float(v) / scale for v in box), strict=True)),
        }
        for box, score, lab in zip(found["boxes"], found["scores"], found["labels"], strict=True)
    ]
    table = pd.DataFrame(boxes, columns=["class", "score", "x1", "y1", "x2", "y2"])
    table[["x1", "y1", "x2", "y2"]] = table[["x1", "y1", "x2", "y2"]].round(1)
    drawn = store.outputs.image(draw_boxes(image, boxes), "detections.png")
    return drawn, table, drawn


def segment(store: Models, path: str | None, threshold: float, opacity: float, label: str | None):
    """The lesion mask over the image, its share of the image, and the mask as a PNG."""
    from stages.segmentation.model import predict_logits

    image = inputs.read_image(path)
    if not 0 <= float(threshold) <= 1 or not 0 <= float(opacity) <= 1:
        raise BadInput("threshold and opacity: expected values from 0 to 1")
    network, card = store.torch_model("segmentation", label)
    size = int(card["size"])
    batch = torch.from_numpy(inputs.as_uint8_chw(image, (size, size)))[None]
    probability = torch.sigmoid(predict_logits(network, batch))[0, 0].numpy()
    small = Image.fromarray(((probability >= float(threshold)) * 255).astype(np.uint8))
    mask = small.resize(image.size, Image.Resampling.NEAREST)
    lesion = np.asarray(mask) > 0
    overlay = np.asarray(image).astype(np.float32)
    colour = np.array([255, 0, 80], dtype=np.float32)
    overlay[lesion] = (1 - float(opacity)) * overlay[lesion] + float(opacity) * colour
    return (
        store.outputs.image(Image.fromarray(overlay.astype(np.uint8)), "overlay.png"),
        f"lesion: {float(lesion.mean()):.1%} of the image",
        store.outputs.image(mask, "mask.png"),
    )


MAX_SOURCE_TOKENS = 200


def translate_text(store: Models, text: str | None, beam: int, shown: int, label: str | None):
    """One translation per line (beam search as evaluate decodes), and the attention of the
    chosen line's translation over its source tokens."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stages.nmt.decoding import decode_all
    from stages.nmt.preprocess import encode

    lines = inputs.check_text(text)
    if int(beam) < 1:
        raise BadInput(f"beam: expected 1 or more, got {beam}")
    network, (source_tokenizer, target_tokenizer) = store.translator(label)
    sources = encode(source_tokenizer, lines)
    for number, ids in enumerate(sources, 1):
        if len(ids) > MAX_SOURCE_TOKENS:
            raise BadInput(
                f"line {number}: {len(ids)} tokens, expected at most {MAX_SOURCE_TOKENS}"
            )
    with torch.inference_mode():
        decoded = decode_all(network, sources, int(beam), 1.0, 32, "cpu")
    translations = target_tokenizer.decode_batch(
        [d.tokens for d in decoded], skip_special_tokens=True
    )
    index = min(max(int(shown), 1), len(lines)) - 1
    attention = decoded[index].attention.float().numpy()
    figure, axes = plt.subplots(figsize=(1 + 0.45 * attention.shape[1], 1 + 0.35 * len(attention)))
    axes.imshow(attention, cmap="viridis", aspect="auto")
    axes.set_xticks(range(attention.shape[1]))
    axes.set_xticklabels([source_tokenizer.id_to_token(i) for i in sources[index]], rotation=90)
    axes.set_yticks(range(len(attention)))
    axes.set_yticklabels([target_tokenizer.id_to_token(i) for i in decoded[index].tokens])
    axes.set_title(f"attention, line {index + 1}")
    figure.tight_layout()
    plt.close(figure)
    return "\n".join(translations), figure


HISTORY_DAYS = 120


class Panel:
    """The preprocessed sales panel and the rows to forecast (data/processed/timeseries)."""

    def __init__(self, root: Path):
        from stages.timeseries.preprocess import FUTURE, PANEL

        processed = root / "data" / "processed" / "timeseries"
        self.available = (processed / PANEL).is_file() and (processed / FUTURE).is_file()
        if self.available:
            self.panel = pd.read_parquet(processed / PANEL)
            self.future = pd.read_parquet(processed / FUTURE)
            self.stores = sorted(self.panel["store_nbr"].unique().tolist())
            self.families = sorted(self.panel["family"].unique().tolist())
        else:
            self.stores, self.families = [], []


def version_forecasts(panel: Panel, uri: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A version's forecast of every row to forecast (test.csv), and its logged backtest: its
    forecasts of its test window made before it, next to the actual sales."""
    import mlflow

    from stages.timeseries.scoring import logged_backtest

    predicted = mlflow.pyfunc.load_model(uri).predict(panel.future)
    ahead = panel.future.assign(forecast=np.asarray(predicted, dtype=float))
    return ahead, logged_backtest(uri)


def forecast_series(store: Models, panel: Panel, store_nbr, family: str | None, label: str | None):
    """The series' recent history, the chosen version's forecast of its test window against the
    actual sales (where the version logged one), and its forecast of the rows to forecast."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not panel.available:
        raise UserError("timeseries: no preprocessed data here: run the pipeline first")
    if store_nbr not in panel.stores or family not in panel.families:
        raise BadInput("choose a store and a family of the data")
    choice = models.resolve("timeseries", label)
    ahead, backtest = store.cache.get(
        "timeseries", choice, functools.partial(version_forecasts, panel)
    )

    def series(frame: pd.DataFrame) -> pd.DataFrame:
        same = (frame["store_nbr"] == store_nbr) & (frame["family"] == family)
        return frame[same].sort_values("date")

    history = series(panel.panel).tail(HISTORY_DAYS)
    ahead = series(ahead).assign(window="forecast", sales=np.nan)
    tested = series(backtest).assign(window="test") if backtest is not None else ahead.iloc[:0]
    figure, axes = plt.subplots(figsize=(10, 3.5))
    axes.plot(history["date"], history["sales"], label="sales (actual)", color="#4363d8")
    if len(tested):
        axes.plot(
            tested["date"],
            tested["forecast"],
            "--",
            color="#f58231",
            label="test-window forecast, made before it",
        )
    axes.plot(ahead["date"], ahead["forecast"], label=f"forecast, {choice.label}", color="#e6194b")
    axes.set_title(f"store {store_nbr} · {family}")
    axes.legend(fontsize=8)
    figure.autofmt_xdate()
    plt.close(figure)
    table = pd.concat([tested, ahead])[["window", "date", "sales", "forecast"]]
    table = table.rename(columns={"sales": "actual"}).round({"actual": 2, "forecast": 2})
    return figure, table.assign(date=table["date"].dt.strftime("%Y-%m-%d"))


def churn_columns() -> dict[str, list | None]:
    from stages.churn.schema import CATEGORIES, NUMERIC

    return {**{c: None for c in NUMERIC}, **CATEGORIES}


def churn_reasons(model, frame: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """SHAP values of the ensemble's first CatBoost member: what pushed this client's churn
    log-odds up or down (the stacked ensemble itself has no additive explanation)."""
    from catboost import CatBoostClassifier, Pool

    from stages.churn.schema import CATEGORICAL, FEATURES

    member = next((m for m in model.members.values() if isinstance(m, CatBoostClassifier)), None)
    if member is None:
        return pd.DataFrame(columns=["feature", "value", "contribution"])
    shap = member.get_feature_importance(
        Pool(frame[FEATURES], cat_features=CATEGORICAL), type="ShapValues"
    )[0, :-1]
    order = np.argsort(-np.abs(shap))[:top]
    return pd.DataFrame(
        {
            "feature": [FEATURES[i] for i in order],
            "value": [str(frame[FEATURES].iloc[0, i]) for i in order],
            "contribution": [round(float(shap[i]), 4) for i in order],
        }
    )


def churn_one(store: Models, *values_and_label):
    """One client's churn probability and its top reasons; the last argument is the version."""
    from stages.churn.preprocess import clean

    *values, label = values_and_label
    columns = churn_columns()
    frame = pd.DataFrame([dict(zip(columns, values, strict=True))])
    for column, allowed in columns.items():
        if allowed is None and (frame[column].isna().any() or frame[column].iloc[0] is None):
            raise BadInput(f"{column}: expected a number")
    frame = clean(frame)  # the pipeline's own cleaning: the dtypes the model was trained on
    model = store.sklearn_model("churn", label)
    probability = float(model.predict_proba(frame)[0, 1])
    return {"churn": probability, "stays": 1 - probability}, churn_reasons(model, frame)


def churn_csv(store: Models, path: str | None, label: str | None):
    from stages.churn.preprocess import clean

    frame = clean(inputs.read_csv_upload(path, churn_columns()))
    model = store.sklearn_model("churn", label)
    out = pd.DataFrame({"Churn": model.predict_proba(frame)[:, 1]})
    if "Id" in frame.columns:
        out.insert(0, "Id", frame["Id"])
    result = store.outputs.path("churn_probabilities.csv")
    out.to_csv(result, index=False)
    return str(result), out.head(20)


def picker(task: str, second: bool = False) -> gr.Dropdown:
    labels = [c.label for c in _safe_choices(task)]
    default = (
        labels[min(1, len(labels) - 1)] if second and labels else labels[0] if labels else None
    )
    return gr.Dropdown(
        choices=labels,
        value=default,
        label="second version" if second else "model (registry version)",
        elem_id=f"{task}-{'other' if second else 'model'}",
        allow_custom_value=False,
    )


def _safe_choices(task: str) -> list[models.Choice]:
    try:
        return models.choices(task)
    except UserError:
        return []


def both_versions(handler: Callable) -> Callable:
    """The handler run twice on the same input, the version (its last argument) first the
    chosen one, then the second: the first's outputs, then the second's."""

    def run(*args):
        *shared, first, second = args
        if not second:
            raise BadInput("choose the second version to compare with")
        return (*handler(*shared, first), *handler(*shared, second))

    return run


def task_tab(
    task: str,
    handler: Callable,
    inputs: list[gr.components.Component],
    model: gr.Dropdown,
    make_outputs: Callable[[str], list[gr.components.Component]],
    button: str,
) -> None:
    """The tab's run button and outputs (`make_outputs(elem_id suffix)`), and the compare
    section: two versions, one input.
    API: `/<task>` (inputs, then the version) and `/<task>_compare` (inputs, both versions)."""
    run = gr.Button(button, elem_id=f"{task}-run")
    outputs = make_outputs("")
    run.click(user_errors(handler), [*inputs, model], outputs, api_name=task)
    with gr.Accordion("Compare with another version on the same input", open=False):
        other = picker(task, second=True)
        compare = gr.Button("Run both versions", elem_id=f"{task}-compare")
        second = make_outputs("-other")  # elem_id suffix: ids stay unique in the page
    compare.click(
        user_errors(both_versions(handler)),
        [*inputs, model, other],
        [*outputs, *second],
        api_name=f"{task}_compare",
    )


def build_app(root: Path) -> gr.Blocks:
    store = Models(root)
    columns = churn_columns()
    with gr.Blocks(title="ML course pipelines") as app:
        gr.Markdown(
            "# ML course pipelines\nEach tab uses the task's **champion** from the MLflow "
            "registry unless you pick another version; *compare* runs two versions on one input."
        )
        with gr.Tab("Simpsons", id="simpsons"):
            model = picker("simpsons")
            with gr.Row():
                files = gr.File(
                    file_count="multiple",
                    file_types=["image"],
                    label="images",
                    elem_id="simpsons-images",
                )
                top_k = gr.Slider(1, 10, value=5, step=1, label="top-k")

            def classified(tag: str):
                with gr.Row():
                    return [
                        gr.Label(label="first image", elem_id=f"simpsons-top{tag}"),
                        gr.JSON(label="every image"),
                    ]

            task_tab(
                "simpsons",
                functools.partial(classify, store),
                [files, top_k],
                model,
                classified,
                "Classify",
            )
        with gr.Tab("Detection", id="detection"):
            defaults = store.inference_defaults()
            model = picker("detection")
            known = _card_classes(store, "detection")
            with gr.Row():
                # a File, not gr.Image: Gradio's Image decodes uploads itself, before the checks
                image = gr.File(file_types=["image"], label="image", elem_id="detection-image")
                with gr.Column():
                    classes = gr.Dropdown(
                        choices=known,
                        value=defaults.classes or known,
                        multiselect=True,
                        label="classes",
                        elem_id="detection-classes",
                    )
                    max_per_class = gr.Number(
                        value=defaults.max_per_class, precision=0, label="max boxes per class"
                    )
                    min_confidence = gr.Slider(
                        0,
                        1,
                        value=defaults.min_confidence,
                        step=0.01,
                        label="min confidence",
                        elem_id="detection-confidence",
                    )

            def detected(tag: str):
                with gr.Row():
                    drawn = gr.Image(label="detections", elem_id=f"detection-result{tag}")
                    table = gr.Dataframe(label="kept boxes", elem_id=f"detection-table{tag}")
                return [drawn, table, gr.File(label="image with boxes")]

            task_tab(
                "detection",
                functools.partial(detect_objects, store),
                [image, classes, max_per_class, min_confidence],
                model,
                detected,
                "Detect",
            )
        with gr.Tab("Segmentation", id="segmentation"):
            model = picker("segmentation")
            with gr.Row():
                lesion_image = gr.File(
                    file_types=["image"], label="dermoscopy image", elem_id="segmentation-image"
                )
                with gr.Column():
                    threshold = gr.Slider(0, 1, value=0.5, step=0.01, label="mask threshold")
                    opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="mask opacity")

            def segmented(tag: str):
                with gr.Row():
                    overlaid = gr.Image(
                        label="mask over the image", elem_id=f"segmentation-result{tag}"
                    )
                    with gr.Column():
                        share = gr.Textbox(label="lesion area", elem_id=f"segmentation-share{tag}")
                        mask_png = gr.File(label="mask (PNG)")
                return [overlaid, share, mask_png]

            task_tab(
                "segmentation",
                functools.partial(segment, store),
                [lesion_image, threshold, opacity],
                model,
                segmented,
                "Segment",
            )
        with gr.Tab("Translation", id="nmt"):
            model = picker("nmt")
            source = gr.Textbox(
                lines=6, label="English, one sentence per line", elem_id="nmt-source"
            )
            with gr.Row():
                beam = gr.Slider(1, 8, value=4, step=1, label="beam size")
                shown = gr.Number(value=1, precision=0, label="attention of line")

            def translated(tag: str):
                with gr.Row():
                    return [
                        gr.Textbox(lines=6, label="Russian", elem_id=f"nmt-translation{tag}"),
                        gr.Plot(label="attention"),
                    ]

            task_tab(
                "nmt",
                functools.partial(translate_text, store),
                [source, beam, shown],
                model,
                translated,
                "Translate",
            )
        with gr.Tab("Sales forecast", id="timeseries"):
            panel = Panel(root)
            model = picker("timeseries")
            with gr.Row():
                store_nbr = gr.Dropdown(
                    panel.stores, value=panel.stores[0] if panel.stores else None, label="store"
                )
                family = gr.Dropdown(
                    panel.families,
                    value=panel.families[0] if panel.families else None,
                    label="family",
                )

            def forecasted(tag: str):
                return [
                    gr.Plot(label="history and forecast", elem_id=f"timeseries-plot{tag}"),
                    gr.Dataframe(label="test window and forecast"),
                ]

            task_tab(
                "timeseries",
                functools.partial(forecast_series, store, panel),
                [store_nbr, family],
                model,
                forecasted,
                "Forecast",
            )
        with gr.Tab("Churn", id="churn"):
            model = picker("churn")
            fields = []
            with gr.Row():
                for column, allowed in columns.items():
                    if allowed is None:
                        fields.append(gr.Number(label=column, value=_churn_default(column)))
                    else:
                        text = [str(a) for a in allowed]  # as clean() makes them
                        fields.append(gr.Dropdown(text, value=text[0], label=column))

            def predicted(tag: str):
                with gr.Row():
                    return [
                        gr.Label(label="churn probability", elem_id=f"churn-probability{tag}"),
                        gr.Dataframe(label="top reasons (SHAP, log-odds)"),
                    ]

            task_tab(
                "churn", functools.partial(churn_one, store), fields, model, predicted, "Predict"
            )
            gr.Markdown("### Many clients: a CSV with the competition's columns")
            upload = gr.File(file_types=[".csv"], label="clients.csv", elem_id="churn-csv")
            result = gr.File(label="probabilities")
            preview = gr.Dataframe(label="first rows")
            gr.Button("Score the CSV").click(
                user_errors(functools.partial(churn_csv, store)),
                [upload, model],
                [result, preview],
                api_name="churn_csv",
            )
    return app


def _card_classes(store: Models, task: str) -> list[str]:
    try:
        return list(store.torch_model(task, None)[1].get("classes", []))
    except (UserError, KeyError):
        return []


def _churn_default(column: str) -> float:
    return {"ClientPeriod": 12.0, "MonthlySpending": 70.0, "TotalSpent": 840.0}[column]


def launch(root: Path, host: str, port: int, block: bool = True):
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app = build_app(root)
    app.queue(default_concurrency_limit=4)
    return app.launch(
        server_name=host,
        server_port=port,
        max_file_size=MAX_FILE_SIZE,
        prevent_thread_lock=not block,
        show_error=True,
    )
