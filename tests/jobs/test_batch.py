"""The daily batch's column check (``loanpipe.jobs.batch``) on tiny inline frames; the data contract's row checks
are ``tests/core/test_contract.py``'s, the whole check stage ``tests/jobs/test_app.py``'s."""

from __future__ import annotations

import pytest

from loanpipe.core.schema import DataSchema
from loanpipe.jobs.batch import BatchError, check_batch

pytestmark = pytest.mark.spark


def test_check_batch_checks_the_columns(spark, tiny_frame, tiny_schema: DataSchema) -> None:  # noqa: ANN001
    labelled = tiny_frame([(1, 0.1, None, 0, 0), (2, None, 0.3, 7, 1)])
    good = labelled.drop(tiny_schema.target_column, tiny_schema.label_column)  # an application has no outcome yet
    df, dropped = check_batch(good, tiny_schema, "batch")
    assert dropped == [] and df.columns == good.columns == tiny_schema.application_columns()
    with pytest.raises(BatchError, match=r"unexpected column\(s\) \['loss', 'default'\].*outcomes land separately"):
        check_batch(labelled, tiny_schema, "batch")
    # an empty id is a row's problem (the data contract sets the row aside), not the batch's
    empty_id = tiny_frame([(None, 0.1, 0.2, 0, 0), (2, 0.5, None, 0, 0)]).drop("loss", "default")
    assert check_batch(empty_id, tiny_schema, "batch")[1] == []
    with pytest.raises(BatchError, match=r"missing column\(s\) \['f2'\] \(1 in all, model features among them: "
                                             r"\['f2'\]\)"):
        check_batch(good.drop("f2"), tiny_schema, "batch")
    # no rows: found by the data contract's pass (tests/jobs/test_app.py, "no_rows")
