"""docs/tutorial.md, section 6: a small transformer collapses under GA, not under NPO+RT.

Runs the section's code blocks (after the page's imports) as written; split from
``test_tutorial.py`` so that the two halves of the page run on different test workers.
"""

from collections import Counter

import numpy as np
import pytest
from matplotlib.figure import Figure

from synthetic.worlds.tutorial import claims, config
from synthetic.worlds.tutorial import figures as tutorial_figures
from tutorial_page import LM_SECTION, PAGE, page_blocks


@pytest.fixture(scope="module")
def page():
    namespace = {"__name__": "docs_tutorial"}
    exec(compile(page_blocks(lambda title: title == LM_SECTION), str(PAGE), "exec"), namespace)
    return namespace


def test_ga_collapses_and_npo_rt_keeps_its_utility(page):
    lm = page["lm"]
    names = list(lm["methods"])
    assert names == ["GA", "NPO beta=0.1", "NPO beta=1", "NPO+RT beta=0.1"]
    utility, prob = lm["model_utility"], lm["forget_probability"]
    assert np.allclose(utility[:, 0], utility[0, 0]) and utility[0, 0] > 0.6   # one reference model
    assert utility[0, -1] < 0.01 and prob[0, -1] < 1e-4                         # GA: collapsed
    assert utility[3, -1] > 0.9 * utility[3, 0] and prob[3, -1] < 0.1           # NPO+RT: forgot, kept
    assert utility[1, -1] < 0.5 * utility[1, 0] < utility[2, -1]               # small beta behaves like GA
    assert isinstance(page["fig"], Figure)


def _top_share(answer: str) -> float:
    """The share of an answer's words that are its most common word (1: one word repeated)."""
    words = answer.split()
    return max(Counter(words).values()) / len(words)


def test_the_answers(page):
    lm = page["lm"]
    # before unlearning the model knows the facts; after GA every answer repeats one word
    assert sum(t.split()[-2] in r for t, r in zip(lm["truths"], lm["reference_answers"])) >= 4
    assert all(_top_share(a) >= 0.8 for a in lm["answers"][0])
    # NPO+RT's answers no longer name the truth, and do not repeat themselves
    assert not any(t.split()[-2] in a for t, a in zip(lm["truths"], lm["answers"][3]))
    assert all(_top_share(a) <= 0.5 for a in lm["answers"][3] if len(a.split()) > 2)
    table = next(iter(claims.answers_table(config.tutorial_config(), {"lm": lm}).values()))
    assert table.count("\n| ") == 1 + len(lm["questions"]) and "NPO+RT beta=0.1" in table


def test_the_figure_reads_the_arrays():
    lm = {"methods": np.array(["GA", "NPO beta=1", "NPO+RT beta=0.1"]), "steps": np.array([0, 5]),
          "model_utility": np.array([[0.7, 0.1], [0.7, 0.6], [0.7, 0.65]]),
          "forget_probability": np.array([[0.9, 1e-5], [0.9, 0.2], [0.9, 0.05]])}
    fig = tutorial_figures.lm_collapse(lm)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["GA", "NPO β=1", "NPO+RT β=0.1"]
    assert lines[2].get_linestyle() == "--" and fig.axes[1].get_yscale() == "log"
