"""The ECB's PD validation tests (loanpipe.ml.ecb) against values worked out by hand on small examples; the
arithmetic is in each test. Normal and chi-squared tail areas are the only values read from a table (scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from loanpipe.ml import ecb


@pytest.mark.parametrize(("p", "light"), [(0.0099, "red"), (0.01, "amber"), (0.0499, "amber"), (0.05, "green"),
                                          (1.0, "green"), (None, None)])
def test_a_p_value_s_light_at_its_bounds(p, light) -> None:  # noqa: ANN001
    assert ecb.p_light(p) == light


def test_auc_decline_on_four_applications() -> None:
    # defaults score .35 and .8, goods .1 and .4: 3 of the 4 (default, good) pairs ranked right, AUC .75.
    # DeLong: the defaults' placements .5 and 1, the goods' 1 and .5: each variance ((.25)^2 + (.25)^2) / 1 = .125,
    # so var(AUC) = .125 / 2 + .125 / 2 = .125, se = .353553; S = (.9 - .75) / .353553 = .424264
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    t = ecb.auc_decline(0.9, y, p)
    assert t["auc"] == pytest.approx(0.75) and t["se"] == pytest.approx(math.sqrt(0.125))
    assert t["statistic"] == pytest.approx(0.424264, abs=1e-6)
    assert t["p_value"] == pytest.approx(1 - stats.norm.cdf(0.424264), abs=1e-6) and t["light"] == "green"
    assert ecb.auc_decline(0.75, y, p)["p_value"] == pytest.approx(0.5)  # no decline: S = 0
    assert ecb.auc_decline(None, y, p) is None and ecb.auc_decline(0.9, np.zeros(4), p) is None


def test_concentration_of_three_grades() -> None:
    # shares .5 .3 .2 against 1/3: squares .027778 + .001111 + .017778 = .046667; CV = sqrt(3 * .046667) = .374166
    # HI = 1 + ln((.14 + 1) / 3) / ln 3 = 1 + ln(.38) / 1.098612 = 1 - .880733 = .119267
    c = ecb.concentration([50, 30, 20])
    assert c["cv"] == pytest.approx(0.374166, abs=1e-6) and c["herfindahl"] == pytest.approx(0.119267, abs=1e-6)
    assert ecb.concentration([10, 10, 10]) == pytest.approx({"cv": 0.0, "herfindahl": 0.0})
    assert ecb.concentration([0, 9, 0]) == pytest.approx({"cv": math.sqrt(2), "herfindahl": 1.0})


def test_concentration_test_against_an_even_start() -> None:
    # CV from 0 to .374166 over K = 3: S = sqrt(2) * .374166 / sqrt(.14 * (.5 + .14)) = .529150 / .299333 = 1.767767
    t = ecb.concentration_test([10, 10, 10], [50, 30, 20])
    assert t["statistic"] == pytest.approx(1.767767, abs=1e-6)
    assert t["p_value"] == pytest.approx(1 - stats.norm.cdf(1.767767), abs=1e-6) and t["light"] == "amber"
    assert ecb.concentration_test([50, 30, 20], [10, 10, 10])["p_value"] == 1.0  # spread out: no concentration
    assert ecb.concentration_test([50, 30, 20], [50, 30, 20])["p_value"] == pytest.approx(0.5)
    assert ecb.concentration_test([0, 0, 0], [50, 30, 20]) is None


MATRIX = [[5, 3, 2], [1, 6, 3], [0, 4, 6]]


def test_matrix_weighted_bandwidth() -> None:
    # farthest move per row: row 1 max(|1-3|, |1-1|) = 2, row 2: 1, row 3: 2.
    # upper: (3*1 + 2*2 + 3*1) / (2*(3+2) + 1*3) = 10 / 13; lower: (1*1 + 0*2 + 4*1) / (1*1 + 2*(0+4)) = 5 / 9
    assert ecb.bandwidth(MATRIX) == pytest.approx({"upper": 10 / 13, "lower": 5 / 9})
    assert ecb.bandwidth(np.diag([4, 5, 6])) == {"upper": None, "lower": None}
    assert ecb.bandwidth([[0, 0, 7], [0, 0, 0], [7, 0, 0]]) == pytest.approx({"upper": 1.0, "lower": 1.0})


def test_migration_stability_cell_by_cell() -> None:
    # row 1 (N = 10, shares .5 .3 .2): cell (1,2) against (1,1): z = (.5 - .3) / sqrt((.21 + .25 + .30) / 10)
    # = .2 / .275681 = .725476; cell (1,3) against (1,2): (.3 - .2) / sqrt((.16 + .21 + .12) / 10) = .451754
    # row 2 (.1 .6 .3): (2,1) against (2,2): .5 / sqrt(.045) = 2.357023; (2,3): .3 / sqrt(.081) = 1.054093
    # row 3 (0 .4 .6): (3,1) against (3,2): .4 / sqrt(.024) = 2.581989; (3,2) against (3,3): .2 / sqrt(.096) = .645497
    t = ecb.migration_stability(MATRIX)
    assert t["cells_tested"] == 6 and t["cells_under_5pct"] == 0
    assert t["worst"]["from"] == 1 and t["worst"]["to"] == 3 and t["worst"]["z"] == pytest.approx(0.451754, abs=1e-6)
    assert t["p_value"] == 1.0 and t["light"] == "green"  # min(1, 6 * Phi(.451754))


def test_a_cell_holding_more_than_its_neighbour_turns_the_matrix_red() -> None:
    # row 1 (.2 .1 .7): cell (1,3) against (1,2): (.1 - .7) / sqrt((.21 + .09 + .14) / 10) = -2.860388;
    # (1,2) against (1,1): (.2 - .1) / sqrt((.09 + .16 + .04) / 10) = .587220. Rows 2 and 3 stay put: a cell and
    # its neighbour with shares 0 and 1 (or 0 and 0) have no variance and are not tested. 2 cells tested.
    t = ecb.migration_stability([[2, 1, 7], [0, 10, 0], [0, 0, 10]])
    assert t["cells_tested"] == 2 and t["cells_under_5pct"] == 1
    assert t["worst"]["z"] == pytest.approx(-2.860388, abs=1e-6)
    assert t["p_value"] == pytest.approx(2 * stats.norm.cdf(-2.860388), abs=1e-6) and t["light"] == "red"


def test_binomial_test_of_a_grade() -> None:
    # P[X >= 3], X ~ Bin(10, .1) = 1 - .9^10 - 10 * .1 * .9^9 - 45 * .01 * .9^8
    # = 1 - .3486784401 - .387420489 - .1937102445 = .0701908264
    assert ecb.binomial_p(3, 10, 0.1) == pytest.approx(0.0701908264, abs=1e-10)
    assert ecb.binomial_p(0, 10, 0.1) == pytest.approx(1.0)
    assert ecb.p_light(ecb.binomial_p(5, 10, 0.1)) == "red"  # 1 - P[X <= 4] = .001635


def test_hosmer_lemeshow_over_the_grades() -> None:
    # (100 * .04 - 5)^2 / (100 * .04 * .96) + (50 * .1 - 6)^2 / (50 * .1 * .9) = 1 / 3.84 + 1 / 4.5 = .482639;
    # 2 grades tested (the empty one and the PD-0 one are left out): chi2 with 2 df, p = exp(-.482639 / 2) = .785590
    grades = [{"n": 100, "defaults": 5, "mean_pd": 0.04}, {"n": 50, "defaults": 6, "mean_pd": 0.1},
              {"n": 0, "defaults": 0, "mean_pd": None}, {"n": 20, "defaults": 0, "mean_pd": 0.0}]
    t = ecb.hosmer_lemeshow(grades)
    assert t["statistic"] == pytest.approx(0.482639, abs=1e-6) and t["degrees_of_freedom"] == 2
    assert t["p_value"] == pytest.approx(0.785590, abs=1e-6) and t["light"] == "green"
    assert ecb.hosmer_lemeshow(grades[2:3]) is None
