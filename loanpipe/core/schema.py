"""The data schema: one place that knows the id, target, label, features and their types.

Built from the configuration plus the columns actually present (a CSV header or a Parquet folder), it gives
the explicit Spark and Arrow schemas every job reads and writes with, and the checks that name what is wrong.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from loanpipe.core.config import SchemaConfig

DERIVED_ID = "row_id"  # the id ingest derives when the data has none (schema.id_column: null)
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne}


class SchemaError(ValueError):
    """Data does not match the configured schema; the message names the source, the column and the fix."""


@dataclass(frozen=True)
class DataSchema:
    id_column: str
    target_column: str
    label_column: str
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    id_is_string: bool = False
    target_is_integer: bool = True
    rule_op: str = ">"
    rule_threshold: float | str = 0.0

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_columns(cls, cfg: SchemaConfig, columns: list[str], source: str, id_is_string: bool = False) -> "DataSchema":
        """The schema of a data set with ``columns`` under config ``cfg``; ``source`` names it in errors.

        With ``cfg.id_column`` None the caller has added the derived id column (``DERIVED_ID``) to ``columns``.
        """
        id_column = cfg.id_column or DERIVED_ID
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        if dupes:
            raise SchemaError(f"{source}: duplicate column name(s) {dupes}; column names must be unique")
        for role, name in (("id", id_column), ("target", cfg.target_column)):
            if name not in columns:
                raise SchemaError(
                    f"{source}: the {role} column {name!r} is missing (columns start {columns[:5]}); "
                    f"fix the file or set schema.{role}_column in the configuration"
                )
        reserved = {id_column, cfg.target_column, cfg.label_column, *cfg.exclude_columns}
        if cfg.feature_columns is not None:
            missing = [c for c in cfg.feature_columns if c not in columns]
            if missing:
                raise SchemaError(f"{source}: configured feature column(s) {missing[:10]} are missing")
            features = [c for c in cfg.feature_columns if c not in reserved]
        else:
            features = [c for c in columns if c not in reserved]
        missing_cat = [c for c in cfg.categorical_columns if c not in features]
        if missing_cat:
            raise SchemaError(f"{source}: categorical column(s) {missing_cat} are not among the features")
        if not features:
            raise SchemaError(f"{source}: no feature columns left after removing id, target and excluded columns")
        return cls(
            id_column=id_column, target_column=cfg.target_column, label_column=cfg.label_column,
            features=tuple(features), categorical=tuple(c for c in features if c in set(cfg.categorical_columns)),
            id_is_string=id_is_string, target_is_integer=cfg.target_is_integer,
            rule_op=cfg.target_rule.op, rule_threshold=cfg.target_rule.threshold,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataSchema":
        data = dict(data)
        data["features"] = tuple(data["features"])
        data["categorical"] = tuple(data["categorical"])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id_column": self.id_column, "target_column": self.target_column, "label_column": self.label_column,
            "features": list(self.features), "categorical": list(self.categorical),
            "id_is_string": self.id_is_string, "target_is_integer": self.target_is_integer,
            "rule_op": self.rule_op, "rule_threshold": self.rule_threshold,
        }

    # -- derived -------------------------------------------------------------------------------------
    @property
    def numeric_features(self) -> tuple[str, ...]:
        cats = set(self.categorical)
        return tuple(c for c in self.features if c not in cats)

    @property
    def target_is_text(self) -> bool:
        return isinstance(self.rule_threshold, str)

    @property
    def rule_text(self) -> str:
        value = repr(self.rule_threshold) if self.target_is_text else f"{self.rule_threshold:g}"
        return f"{self.target_column} {self.rule_op} {value}"

    def binarise(self, target: Any) -> Any:
        """Apply the target rule to a scalar, numpy array or pandas Series (text targets compared trimmed)."""
        if self.target_is_text and hasattr(target, "str"):
            target = target.str.strip()
        return _OPS[self.rule_op](target, self.rule_threshold)

    def lake_columns(self) -> list[str]:
        """Column order in the lake: id, features, target, label."""
        return [self.id_column, *self.features, self.target_column, self.label_column]

    def application_columns(self) -> list[str]:
        """An application as it arrives, before any outcome: id, features (a daily batch's columns)."""
        return [self.id_column, *self.features]

    def arrow_type(self, column: str) -> pa.DataType:
        if column == self.id_column:
            return pa.string() if self.id_is_string else pa.int64()
        if column == self.target_column:
            if self.target_is_text:
                return pa.string()
            return pa.int64() if self.target_is_integer else pa.float64()
        if column == self.label_column:
            return pa.int32()
        if column in self.categorical:
            return pa.string()
        return pa.float64()

    def arrow_schema(self, columns: list[str] | None = None) -> pa.Schema:
        columns = self.lake_columns() if columns is None else columns
        return pa.schema([pa.field(c, self.arrow_type(c), nullable=(c != self.id_column)) for c in columns])

    def spark_schema(self, columns: list[str] | None = None) -> Any:
        """The explicit Spark StructType of the lake (or of ``columns``)."""
        from pyspark.sql import types as T

        mapping = {pa.string(): T.StringType(), pa.int64(): T.LongType(), pa.float64(): T.DoubleType(),
                   pa.int32(): T.IntegerType()}
        columns = self.lake_columns() if columns is None else columns
        return T.StructType([T.StructField(c, mapping[self.arrow_type(c)], c != self.id_column) for c in columns])

    def check_spark_frame(self, df: Any, source: str, need_target: bool = True) -> None:
        """Raise SchemaError when a Spark DataFrame lacks a column or has one of the wrong type."""
        from pyspark.sql import types as T

        fields = {f.name: f.dataType for f in df.schema.fields}
        needed = [self.id_column, *self.features] + ([self.target_column] if need_target else [])
        missing = [c for c in needed if c not in fields]
        if missing:
            raise SchemaError(
                f"{source}: missing column(s) {missing[:10]}{' ...' if len(missing) > 10 else ''} "
                f"({len(missing)} in all) expected by the configured schema; re-ingest the data or fix the config"
            )
        numeric = (T.DoubleType, T.FloatType, T.IntegerType, T.LongType, T.ShortType, T.DecimalType)
        wrong = []
        for c in self.features:
            want_string = c in self.categorical
            got = fields[c]
            if want_string and not isinstance(got, T.StringType):
                wrong.append(f"{c}: {got.simpleString()} (expected string, categorical)")
            elif not want_string and not isinstance(got, numeric):
                wrong.append(f"{c}: {got.simpleString()} (expected a number)")
        if wrong:
            raise SchemaError(f"{source}: column(s) of the wrong type: {wrong[:10]}; fix the data or schema.categorical_columns")
