"""The configuration's sections, one frozen dataclass each, with the checks each applies to its own values.

``loanpipe.core.config`` assembles them into one ``Config`` and loads it from YAML and the environment; import
them from there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

class ConfigError(ValueError):
    """A configuration file or override is malformed; the message names the key and the source."""


@dataclass(frozen=True)
class StorageConfig:
    """Where the lake lives. ``root`` is a local folder or ``s3a://bucket/prefix``."""

    root: str = "var/lake"
    s3_endpoint: str | None = None
    s3_region: str = "ru-central1"
    s3_path_style: bool = True
    # boto3: attempts per call (standard retry mode: exponential back-off on throttling, 5xx, connection errors)
    s3_max_attempts: int = 5
    s3_timeout_seconds: int = 10
    # Airflow connection holding the keys for Airflow's own reads (sensor, reports): login = access key id,
    # password = secret key. Absent connection -> the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
    s3_conn_id: str | None = "loanpipe_s3"

    def __post_init__(self) -> None:
        if self.s3_max_attempts < 1:
            raise ConfigError(f"storage.s3_max_attempts must be at least 1 (got {self.s3_max_attempts})")

    @property
    def is_s3(self) -> bool:
        return self.root.startswith(("s3a://", "s3://"))


@dataclass(frozen=True)
class SparkConfig:
    """How jobs get a SparkSession. ``master`` None means: whatever spark-submit was given."""

    master: str | None = "local[2]"
    app_name: str = "loanpipe"
    driver_memory: str = "6g"
    executor_memory: str | None = None
    executor_cores: int | None = None
    shuffle_partitions: int = 8
    # Spark's largest input split (spark.sql.files.maxPartitionBytes; Spark's own default 128m). Spark sizes splits
    # by whole-file bytes, and a job that reads a few of ~770 columns (scoring reads 32) got a task for every
    # 128 MB of files it barely touches, each task of a Python UDF with a cost of its own (README, "Where scoring's
    # time goes"). Spark still makes at least one split per core while the data allows.
    max_partition_bytes: str = "1g"
    # JVM packages resolved from Maven Central (``spark.jars.packages``); cached in ``ivy_dir``.
    catboost_spark_package: str = "ai.catboost:catboost-spark_4.0_2.13:1.2.10"
    s3_packages: list[str] = field(
        default_factory=lambda: [
            "org.apache.hadoop:hadoop-aws:3.4.1",
            "software.amazon.awssdk:bundle:2.24.6",
        ]
    )
    ivy_dir: str = "~/.cache/loanpipe/ivy"
    # catboost-spark's own timeouts (its CatBoostClassifier's connectTimeout, workerInitializationTimeout): how long
    # its master waits for the workers to connect, and for each worker to load its part of the data.
    catboost_connect_timeout_seconds: int = 60
    catboost_worker_init_timeout_seconds: int = 600
    extra_conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetRule:
    """The rule that turns the raw target into the binary label: ``target <op> threshold``."""

    op: str = ">"
    # A number, or a text for text targets ("target equals bad": ``{op: "==", threshold: bad}``).
    threshold: float | str = 0.0

    def __post_init__(self) -> None:
        if self.op not in (">", ">=", "<", "<=", "==", "!="):
            raise ConfigError(f"schema.target_rule.op must be one of > >= < <= == != (got {self.op!r})")
        if isinstance(self.threshold, str) and self.op not in ("==", "!="):
            raise ConfigError(f"schema.target_rule: a text threshold ({self.threshold!r}) needs op == or != "
                              f"(got {self.op!r})")


@dataclass(frozen=True)
class SchemaConfig:
    """The data's shape: which column is the id, which the target, which features are categorical.

    ``feature_columns`` None means every column except the id, the target and ``exclude_columns``.
    Categorical columns are stored as strings in the lake (string categoricals work as they are);
    every other feature is stored as a double. ``id_column`` None: the file has no id, and ingest derives a
    stable one (column ``row_id``) from the file's digest and the data row number.
    """

    id_column: str | None = "id"
    target_column: str = "loss"
    target_rule: TargetRule = field(default_factory=TargetRule)
    label_column: str = "default"
    feature_columns: list[str] | None = None
    categorical_columns: list[str] = field(default_factory=list)
    exclude_columns: list[str] = field(default_factory=list)
    # Integer targets (Kaggle's ``loss`` is 0..100) stay integers in the lake. Text targets are stored as text.
    target_is_integer: bool = True
    # The CSV field separator (one character). Spreadsheet exports in many locales write ";"; a file whose header
    # splits on another common separator than this one is refused with a message naming the separator it found.
    csv_separator: str = ","
    # Characters removed from numeric cells before they are parsed (currency signs, thousands separators).
    numeric_strip: list[str] = field(default_factory=list)
    # Rows whose target is empty: refused (false, the default) or left out and counted in the ingest summary.
    drop_missing_target: bool = False
    # A feature cell that reads inf or -inf: refused, naming the cell (fail), or stored as missing and counted.
    on_infinite: str = "fail"

    def __post_init__(self) -> None:
        if len(self.csv_separator) != 1 or self.csv_separator in "\"\r\n":
            raise ConfigError(f"schema.csv_separator must be one character, not a quote or a line break "
                              f"(got {self.csv_separator!r}); for example ',' or ';'")
        if self.on_infinite not in ("fail", "missing"):
            raise ConfigError(f"schema.on_infinite must be fail or missing (got {self.on_infinite!r})")


@dataclass(frozen=True)
class SplitConfig:
    """The train/test split made at ingest (stratified on the label, seeded)."""

    test_fraction: float = 0.3
    seed: int = 42

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"split.test_fraction must be in (0, 1) (got {self.test_fraction})")


@dataclass(frozen=True)
class SyntheticConfig:
    """The synthetic Kaggle-shaped generator (see ``loanpipe.ml.synth``)."""

    rows: int = 20_000
    full_rows: int = 105_471
    seed: int = 2014
    chunk_rows: int = 10_000


@dataclass(frozen=True)
class SamplingConfig:
    """The new-data job: how much of ``test/`` one run date samples."""

    fraction: float = 0.1
    with_replacement: bool = False


BATCH_SOURCES = ("emulated", "inbox")


@dataclass(frozen=True)
class BatchConfig:
    """Where the run date's batch of applications comes from."""

    # emulated: data_gen samples test/ (the seed's emulation); inbox: an upstream system drops application files
    # (CSV or Parquet, any name) into ``inbox``, which ``loanpipe.jobs.land applications --from-inbox`` lands.
    source: str = "emulated"
    inbox: str | None = None  # a local folder or s3a://bucket/prefix (same endpoint and keys as the lake)

    def __post_init__(self) -> None:
        if self.source not in BATCH_SOURCES:
            raise ConfigError(f"batch.source must be one of {BATCH_SOURCES} (got {self.source!r})")
        if self.source == "inbox" and not self.inbox:
            raise ConfigError("batch.source is inbox but batch.inbox is not set: name the folder or s3a:// prefix "
                              "the application files are dropped into")


@dataclass(frozen=True)
class OutcomesConfig:
    """When outcomes are known (``loanpipe.core.maturity``) and how the emulation delivers them."""

    # The emulated source (data_gen) lands a batch's outcome records this many days after its run date.
    lag_days: int = 2
    # An application with no bad outcome by its date plus this many days is good (production: 12 months).
    performance_window_days: int = 365

    def __post_init__(self) -> None:
        if self.lag_days < 1:
            raise ConfigError(f"outcomes.lag_days must be at least 1 (got {self.lag_days}): an outcome is known "
                              "after the application was scored, never on its day")
        if self.performance_window_days < 1:
            raise ConfigError(f"outcomes.performance_window_days must be at least 1 (got "
                              f"{self.performance_window_days})")


@dataclass(frozen=True)
class QualityConfig:
    """The data contract each daily batch's rows are checked against (``loanpipe.core.contract``)."""

    # The run fails when a larger share of the batch's rows is quarantined; below it they are set aside.
    max_bad_share: float = 0.01
    # A number is implausible beyond the training [min, max] widened on each side by this many times its width:
    # wide enough for heavy tails on small training sets (bench/results/contract.json), narrow enough for sentinels
    # and unit errors.
    range_margin: float = 3.0
    on_extra_columns: str = "fail"  # a batch column the lake does not have: fail the run, or drop it (a warning)
    examples: int = 3  # example rows per reason in the summary and the emails
    # A batch of at most this many rows is read and checked on the driver (pyarrow, no Spark job: a daily batch);
    # a larger one in one Spark pass. 0: always Spark. 50,000 rows of ~770 doubles are ~300 MB on the driver.
    driver_check_rows: int = 50_000

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_bad_share < 1.0:
            raise ConfigError(f"quality.max_bad_share must be in [0, 1) (got {self.max_bad_share}); e.g. 0.01 fails "
                              "the run when more than 1% of a batch's rows are bad")
        if self.range_margin < 0:
            raise ConfigError(f"quality.range_margin must be >= 0 (got {self.range_margin})")
        if self.driver_check_rows < 0:
            raise ConfigError(f"quality.driver_check_rows must be >= 0 (got {self.driver_check_rows}); 0 checks "
                              "every batch in Spark")
        if self.on_extra_columns not in ("fail", "drop"):
            raise ConfigError(f"quality.on_extra_columns must be fail or drop (got {self.on_extra_columns!r})")


@dataclass(frozen=True)
class PromotionConfig:
    """When a challenger replaces the champion (``loanpipe.ml.policy``): every rule must hold, and each is reported
    with its value. One paired test a day at 5% promotes by chance alone now and then (bench/results/promotion.json),
    so the bar is a real gain, a stricter alpha, enough evidence and no change soon after the last one."""

    min_auc_gain: float = 0.005   # the challenger's AUC minus the champion's, on the same comparison rows
    alpha: float = 0.01           # the paired DeLong test's one-sided p must be under this
    min_rows: int = 200           # matured comparison rows no model trained on ...
    min_defaults: int = 30        # ... and defaults among them (fewer: no challenger is trained)
    cooldown_dates: int = 14      # run dates after the last change of the serving model before the next one
    # The comparison rows are the newest matured cohorts no model trained on, at most this many application dates
    # (0: no cap, only model.validation_fraction): a window over all unseen cohorts is mostly the past, so after a
    # real change the first proposal came 22 dates later (bench/results/promotion.json at 48bc886), with the cap 5.
    window_dates: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ConfigError(f"model.promotion.alpha must be in (0, 1) (got {self.alpha})")
        for name in ("min_auc_gain", "min_rows", "min_defaults", "cooldown_dates", "window_dates"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.promotion.{name} must be >= 0 (got {getattr(self, name)})")


@dataclass(frozen=True)
class ModelConfig:
    """Training, selection, scoring and promotion parameters."""

    # "auto": catboost-spark when its JVM package is on the classpath, else CatBoost's Python library.
    engine: str = "auto"
    # The serving model's (and every CV fit's) parameters; learning_rate None = CatBoost's automatic rate, which it
    # derives from the data size and the iterations.
    iterations: int = 500
    depth: int = 6
    learning_rate: float | None = None
    thread_count: int = 2
    seed: int = 7
    # A fit on more columns than this looks at this many of them, drawn at random, for each split (CatBoost's
    # random subspace, rsm = split_features / columns): a 770-column fit of 70,000 rows took 3.2-3.3x less time,
    # its held-out AUC changed by -0.0001 to -0.0022 (bench/results/rsm.json). Narrower fits use every column.
    # 0 = every column always.
    split_features: int = 80
    # Candidate feature sets compared by K-fold CV (loanpipe.ml.selection) on a sample of the training data.
    cv_folds: int = 5
    cv_sample_rows: int = 20_000
    search_iterations: int = 100  # the cheap fits of the importance ranking and the forward-selection search
    # The PD calibrator's out-of-fold scores: this many fits on the whole training sample (loanpipe.ml.training)
    calibration_folds: int = 3
    top_k_features: int = 30
    max_forward_features: int = 12
    forward_patience: int = 3
    engineered_pairs: int = 10
    # A challenger re-runs the candidate comparison on train_sup (and may change the features) every
    # rediscover_every_days run dates after the features were chosen, and when a model feature's PSI exceeds this.
    rediscover_every_days: int = 7
    rediscover_psi: float = 0.25
    # A feature's PSI on n rows is about (bins - 1) / n from sampling alone (0.3 for 10 bins at 30 rows): under
    # this many batch rows a PSI above rediscover_psi is reported but chooses no new features.
    rediscover_psi_min_rows: int = 500
    train_sample_rows: int = 200_000
    cutoff: float = 0.5
    scoring_udf: str = "arrow"
    # How the daily batch reaches the scoring tasks (numeric model, arrow udf): "files", each task reads its Parquet
    # files with pyarrow (loanpipe.ml.scoring.FileBatch); "spark", Spark's reader and its rows. Same scores.
    scoring_reader: str = "files"
    auc_floor: float = 0.75
    # The challenger is compared with the champion on the newest matured cohorts no model trained on: about this
    # share of those rows (whole cohorts); whether it replaces the champion is the promotion policy's rules.
    validation_fraction: float = 0.5
    promotion: PromotionConfig = field(default_factory=PromotionConfig)

    def __post_init__(self) -> None:
        if self.split_features < 0:
            raise ConfigError(f"model.split_features must be 0 (every column) or more (got {self.split_features})")
        for name in ("cv_folds", "calibration_folds"):
            if getattr(self, name) < 2:
                raise ConfigError(f"model.{name} must be at least 2 (got {getattr(self, name)})")
        if self.scoring_reader not in ("files", "spark"):
            raise ConfigError(f"model.scoring_reader must be files or spark (got {self.scoring_reader!r})")


DEFAULT_MASTER_SCALE = [0.0025, 0.005, 0.01, 0.02, 0.04, 0.07, 0.12, 0.20, 0.35, 1.0]


REASONS_FOR = ("all", "declined")


@dataclass(frozen=True)
class RiskConfig:
    """What the credit-risk team reads beside each PD (``loanpipe.ml.risk``)."""

    # reason_1..reason_N in the scores: the features that push each applicant's PD up most (CatBoost's SHAP
    # values, computed in the scoring pass); 0 turns them off. Adverse-action practice gives up to four.
    reason_codes: int = 4
    # Which scores get them: "all" (every score), or "declined" (only PD >= model.cutoff: the adverse-action
    # case; the others' reason columns are empty). Their cost is the SHAP values' (bench/results/reasons.json).
    reasons_for: str = "all"
    # The master scale: each grade's upper PD bound, grade 1 the safest; the last bound must be 1.0.
    master_scale: list[float] = field(default_factory=lambda: list(DEFAULT_MASTER_SCALE))

    def __post_init__(self) -> None:
        if not 0 <= self.reason_codes <= 10:
            raise ConfigError(f"risk.reason_codes must be between 0 (off) and 10 (got {self.reason_codes})")
        if self.reasons_for not in REASONS_FOR:
            raise ConfigError(f"risk.reasons_for must be one of {REASONS_FOR} (got {self.reasons_for!r})")
        bounds = self.master_scale
        if len(bounds) < 2 or bounds[-1] != 1.0 or any(not 0.0 < b <= 1.0 for b in bounds) \
                or any(a >= b for a, b in zip(bounds, bounds[1:])):
            raise ConfigError(f"risk.master_scale must be at least two strictly increasing PD upper bounds in (0, 1], "
                              f"the last 1.0 (got {bounds}); e.g. {DEFAULT_MASTER_SCALE}")


@dataclass(frozen=True)
class ClusterConfig:
    """The Spark cluster's master node as Airflow reaches it over SSH/SFTP, and how jobs are submitted there.

    On Yandex Data Proc: ``master: yarn``, ``python``/``spark_submit`` as installed on the node, ``remote_dir`` in
    the SSH user's home. ``env`` is exported before spark-submit (e.g. ``LOANPIPE__STORAGE__ROOT``); secrets
    are not set here but in the node's own environment.
    """

    ssh_conn_id: str = "loanpipe_ssh"
    remote_dir: str = "/home/loanpipe/loanpipe"
    python: str = "python3"
    spark_submit: str = "spark-submit"
    master: str = "yarn"
    deploy_mode: str = "client"
    driver_memory: str = "4g"
    # Cores per executor (--conf spark.executor.cores); with catboost-spark also spark.task.cpus (one training
    # task per executor). None: the cluster's own default.
    executor_cores: int | None = None
    packages: bool = True  # pass catboost-spark with --packages
    s3_packages: bool = True  # S3 mode: pass hadoop-aws + AWS SDK with --packages (false if the cluster ships them)
    env: dict[str, str] = field(default_factory=dict)
    # A file on the node sourced before spark-submit when it exists (e.g. the S3 keys, mode 600): secrets stay
    # on the node and never pass through Airflow's command lines or logs.
    env_file: str | None = None


@dataclass(frozen=True)
class AirflowConfig:
    """Schedules and task policies of the DAGs (read once when a DAG file is parsed)."""

    schedule_new_data: str | None = "0 6 * * *"  # None: manual runs only
    schedule_app: str | None = "30 6 * * *"
    timezone: str = "UTC"  # the schedules and the scores deadline are read in this time zone
    # The business reads the date's scores at this time (HH:MM): a scheduled date whose scores are not published
    # by then raises an alert at that minute, also when its run is stuck. None: no deadline.
    scores_deadline: str | None = "07:00"
    # batch.source inbox: the day's application files are expected by this time (HH:MM); none landed by then raises
    # the data-late alert at that minute, ahead of the scores deadline. None: no such alert.
    applications_deadline: str | None = "06:30"
    # The last date the DAGs are scheduled for (YYYY-MM-DD; None: no end). `make backfill` sets it to the end of
    # its range, so that unpausing the DAGs for the backfill starts no scheduled run beside it.
    end_date: str | None = None
    owner: str = "risk-ml"
    retries: int = 2
    retry_delay_seconds: int = 60
    max_retry_delay_seconds: int = 600
    execution_timeout_minutes: int = 60
    batch_wait_timeout_minutes: int = 60
    smtp_conn_id: str = "smtp_default"
    # Recipients are read at run time from this environment variable (or the Airflow Variable of that name).
    mail_to_variable: str = "LOANPIPE_MAIL_TO"

    def __post_init__(self) -> None:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"airflow.timezone {self.timezone!r} is not a time zone name (e.g. UTC, "
                              "Europe/Moscow)") from None
        if self.end_date is not None:
            try:
                dt.date.fromisoformat(self.end_date)
            except ValueError:
                raise ConfigError(f"airflow.end_date {self.end_date!r} is not a date in YYYY-MM-DD form") from None
        for key in ("scores_deadline", "applications_deadline"):
            value = getattr(self, key)
            try:
                if value is not None:
                    dt.time.fromisoformat(value)
            except ValueError:
                raise ConfigError(f"airflow.{key} {value!r} is not a time of day in HH:MM form (e.g. 07:00); set it "
                                  "to null for no deadline") from None
