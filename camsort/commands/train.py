"""`camsort train`: a folder or S3 prefix of labelled frames -> a model directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.command("train")
@click.argument("dataset", nargs=-1, required=True)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Model directory to write: model.onnx, manifest.json, report.html/.json/.png.",
)
@click.option(
    "--weights",
    default="imagenet",
    show_default=True,
    help="ResNet50 weights: imagenet (Keras downloads them once), none (seeded random init) or a notop .h5 path.",
)
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2), help="Cross-validation folds.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for folds, LightGBM and sampling.")
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "int8"]),
    default="auto",
    show_default=True,
    help="Backbone precision to ship; auto = int8 when the quantization guard passes, else fp32.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Backbone + feature cache (default: $CAMSORT_CACHE_DIR or ~/.cache/camsort).",
)
@click.option(
    "--task",
    type=click.Choice(["auto", "multilabel"]),
    default="auto",
    show_default=True,
    help="auto: one label per frame (binary or multiclass by the number of label folders); "
    "multilabel: a set of labels per frame, from folder names split on --label-sep or a --labels-file.",
)
@click.option(
    "--label-sep",
    default="_",
    show_default=True,
    help="multilabel: the separator in folder names (bus_car/ -> {bus, car}); the folder 'none' holds frames with no label.",
)
@click.option(
    "--labels-file",
    default=None,
    help='multilabel: a CSV (path,labels with labels joined by \';\') or JSONL ({"path", "labels"}) file, '
    "local or s3://, listing each frame's labels; with --regions: key,region,label per region (CSV, or JSONL "
    '{"key", "region", "label"}); paths and keys are relative to DATASET.',
)
@click.option(
    "--regions",
    default=None,
    help="Train a region model: the cameras' regions config (one camera's {\"regions\": [...]} or "
    '{"cameras": {id: {"regions": [...]}}}, local or s3://); each frame in --labels-file (key,region,label, '
    "CSV or JSONL) is cut with the function's crop function and each labelled region of --model-name is one crop.",
)
@click.option(
    "--model-name",
    default=None,
    help="With --regions: the named model to train (e.g. bay): the crops of every region answered by it "
    "(default: the only model the regions use).",
)
@click.option(
    "--head",
    type=click.Choice(["lightgbm", "logistic", "svm", "auto"]),
    default="lightgbm",
    show_default=True,
    help="Classifier on the backbone features; auto cross-validates all on the same folds and ships the "
    "lowest out-of-fold log loss.",
)
@click.option(
    "--endpoint-url", default=None, help="S3 endpoint for an s3:// DATASET (e.g. a local moto server)."
)
@click.option(
    "--features",
    default=None,
    help="Train from feature shards (s3://bucket/features/<backbone sha256>/, written by "
    "`camsort backfill --mode featurize`) instead of featurizing DATASET locally; needs --backbone-from.",
)
@click.option(
    "--backbone-from",
    default=None,
    help="With --features: the model that wrote the shards (s3://bucket/models/<version>/ or a local model "
    "directory); its manifest's backbone_sha256 must be the shards' and its backbone ships.",
)
@click.option(
    "--fine-tune",
    is_flag=True,
    help="Also fine-tune the top of the ResNet50 on these frames (augmented views, early stopping), "
    "cross-fitted on the same folds: prints frozen and fine-tuned side by side.",
)
@click.option(
    "--fine-tune-from",
    type=click.Choice(["conv5", "conv4", "conv3", "conv2"]),
    default="conv5",
    show_default=True,
    help="The first ResNet50 stage to train; the stages before it stay frozen (their output is cached).",
)
@click.option(
    "--fine-tune-epochs",
    default=20,
    show_default=True,
    type=click.IntRange(1),
    help="Most epochs per training run.",
)
@click.option(
    "--fine-tune-views",
    default=4,
    show_default=True,
    type=click.IntRange(1),
    help="Views per frame: the frame and augmented copies (flip, crop, light, colour).",
)
@click.option(
    "--fine-tune-ship",
    type=click.Choice(["always", "if-better"]),
    default="always",
    show_default=True,
    help="always ships the fine-tuned network; if-better only when its cross-fitted balanced accuracy beats the frozen one.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="With --features: where the LightGBM head trains; dask = lightgbm.dask on a Dask cluster "
    "(same grouped folds; a LocalCluster unless --scheduler).",
)
@click.option(
    "--scheduler", default=None, help="With --engine dask: a Dask scheduler address (tcp://host:8786)."
)
@click.option(
    "--camera",
    "cameras",
    multiple=True,
    help="With --features s3://.../archive/features/<backbone>/: only these cameras (repeatable).",
)
@click.option(
    "--since", default=None, help="With the Parquet archive: frames captured at or after (ISO 8601, UTC)."
)
@click.option(
    "--until", default=None, help="With the Parquet archive: frames captured before (ISO 8601, UTC)."
)
def train(dataset: tuple[str, ...], out_dir: Path, **options: Any) -> None:
    """Train on DATASET (a folder or s3://bucket/prefix/, one sub-folder per label) and export the model.

    A DATASET may also be a labels file: a labelling set's labels.jsonl (`camsort label`), a CSV
    (path,label) or a Label Studio JSON export (the image `Choices` template).

    Several DATASETs combine (labels merged by folder name), e.g. the original data and a
    `camsort review export` folder; frames still under its _unlabeled/ folder are ignored.

    Cross-validates LightGBM on ResNet50 features, picks decision thresholds, exports one ONNX
    model, checks it against Keras + LightGBM and writes a report.
    """
    from camsort.quiet import quiet_tensorflow

    quiet_tensorflow()  # before anything imports TensorFlow
    from rich.console import Console

    from camsort.commands.results import parse_time
    from training.fit.finetune_net import TuneSettings
    from training.options import IncompatibleOptions, train_with_options
    from training.settings import TrainSettings

    console = Console()
    if options["weights"] == "none":
        console.print(
            "[bold yellow]--weights none: the ResNet50 backbone is randomly initialised (no ImageNet weights "
            "offline), so the figures below are not representative of a production model.[/]"
        )
    tune = TuneSettings(
        from_stage=options.pop("fine_tune_from"),
        epochs=options.pop("fine_tune_epochs"),
        views=options.pop("fine_tune_views"),
        seed=options["seed"],
    )
    settings = TrainSettings(
        **{
            name: options.pop(name) for name in ("weights", "folds", "seed", "precision", "head", "cache_dir")
        },
        fine_tune=tune if options.pop("fine_tune") else None,
        fine_tune_ship=options.pop("fine_tune_ship"),
    )
    since, until = options.pop("since"), options.pop("until")
    try:
        train_with_options(
            dataset,
            out_dir,
            settings,
            console=console,
            cameras=list(options.pop("cameras")),
            since=parse_time(since, "--since") if since else None,
            until=parse_time(until, "--until") if until else None,
            **options,  # task, label_sep, labels_file, regions, model_name, endpoint_url, features, backbone_from, ...
        )
    except IncompatibleOptions as error:
        raise click.UsageError(str(error)) from error
