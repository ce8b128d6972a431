"""The benchmarks, one command: ``python -m bench`` (or ``make bench``), about 25 minutes on 2 cores.

    python -m bench [cycle] [scoring] [profile] [reasons] [ingest] [real_tables] [synthetic] [rsm] [contract] [jvm]
                    [growth] [inbox] [promotion] [--repeat N] [--sizes 6592,26368,105471] [--days 30] [--scales 16,160]

* cycle   -- the daily cycle at 1x, 4x, 16x the rows (16x = the Kaggle size): per step, total, peak memory;
             --sizes 6592,26368,105471,1054710 adds 160x (10x the Kaggle size), saved as cycle-1054710.json
* scoring -- rows/s read to write by each scoring path at 1x, 4x, 16x the Kaggle test size, vs the limit
* profile -- (not in the default run: writes a 5M-row input, 16 GB) the scoring path part by part at 506k and
             5.06M rows: Parquet decode, preprocessing, Arrow to Python, the matrix, CatBoost, the write
* reasons -- the cost of reason codes: scoring 506k rows without and with the grade and 4 SHAP reasons
* ingest  -- reading the same data as CSV (inferred / given schema) and as Parquet
* real_tables -- the champion vs plain CatBoost on real public credit tables (German credit, SBA loans 150k)
* synthetic -- how hard the synthetic data is: CatBoost on raw columns, with the pair differences, the oracle
* rsm     -- model.split_features: fit seconds and AUC with every column per split and with the random subspace
* contract -- the data contract at the Kaggle size: learning it from train/, checking a daily batch's rows
* jvm     -- a quick stack's short jobs (data_gen, app on 6,000 rows) with the JVM's default compilers and C1 only
* growth  -- (not in the default run: ~45 min) the daily cycle over --days simulated days at the Kaggle size:
             does it grow with history?
* inbox   -- (not in the default run) the SBA loans table as production data: 6 dates of application files
             through the inbox, outcomes 2 dates later; seconds per date to land, score and report
* promotion -- (not in the default run) the old and the new promotion rule on simulated streams of 60 run dates,
             stationary and with a change at date 20: how many proposals, how soon after the change

Tables are printed and written as JSON under bench/results/ (with the versions and the machine); the lakes and
inputs live under var/bench/ and are reused by the next run. Nothing here is a test: numbers, not verdicts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench import common

SECTIONS = ("cycle", "scoring", "profile", "reasons", "ingest", "real_tables", "synthetic", "rsm", "contract", "jvm",
            "growth", "inbox", "promotion")
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s not in ("profile", "growth", "inbox", "promotion"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", help=f"any of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per figure (median), default 3")
    parser.add_argument("--sizes", default="6592,26368,105471",
                        help="lake rows for the cycle: 1x, 4x, 16x (default: the Kaggle size is 16x)")
    parser.add_argument("--days", type=int, default=30, help="simulated days of the growth section, default 30")
    parser.add_argument("--scales", default="16,160",
                        help="copies of the Kaggle test set the profile section scores, default 16,160 (506k, 5.06M rows)")
    args = parser.parse_args(argv)
    sections = args.sections or list(DEFAULT_SECTIONS)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    sizes = [int(s) for s in args.sizes.split(",")]
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    common.WORK.mkdir(parents=True, exist_ok=True)
    info = common.machine()
    started = time.monotonic()
    kaggle_lake = str(common.WORK / f"lake-{sizes[-1]}")
    if "cycle" in sections:
        from bench import cycle

        # the Kaggle size's cycle is cycle.json; a run up to another size keeps its own (cycle-1054710.json: 10x)
        cycle.run(info, sizes, args.repeat, name="cycle" if sizes[-1] == cycle.KAGGLE_ROWS else f"cycle-{sizes[-1]}")
    # each section makes what it needs (the lake, a champion) when it is missing, and reuses it next time
    if "scoring" in sections:
        from bench import cycle, scoring

        cycle.ensure_champion(sizes[-1])
        scoring.run(info, kaggle_lake, args.repeat)
    if "profile" in sections:
        from bench import cycle, scoring

        cycle.ensure_champion(sizes[-1])
        scoring.run_profile(info, kaggle_lake, args.repeat, tuple(int(k) for k in args.scales.split(",")))
    if "reasons" in sections:
        from bench import cycle, scoring

        cycle.ensure_champion(sizes[-1])
        scoring.run_reasons(info, kaggle_lake, args.repeat)
    if "ingest" in sections:
        from bench import cycle, ingest_formats

        cycle.ensure_lake(sizes[-1])
        ingest_formats.run(info, kaggle_lake, args.repeat)
    if "real_tables" in sections:
        from bench import real_tables

        real_tables.run(info)
    if "synthetic" in sections:
        from bench import synthetic

        synthetic.run(info)
    if "rsm" in sections:
        from bench import rsm

        rsm.run(info)
    if "contract" in sections:
        from bench import contract

        contract.run(info, sizes[-1], args.repeat)
    if "jvm" in sections:
        from bench import jvm

        jvm.run(info, args.repeat)
    if "growth" in sections:
        from bench import cycle

        cycle.growth_run(info, sizes[-1], args.days)
    if "inbox" in sections:
        from bench import inbox

        inbox.run(info)
    if "promotion" in sections:
        from bench import promotion

        promotion.run(info)
    print(f"benchmarks done in {(time.monotonic() - started) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
