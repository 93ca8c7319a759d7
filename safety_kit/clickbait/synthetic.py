"""Embedded data: synthetic thumbnails, a seeded generator of headline-like posts with planted factors, and the
"disguised bait" construction of brief §8.2 (irrelevant non-bait content attached with label- and
environment-dependent probability).

Planted structure of the synthetic headlines (clearly synthetic; used when no real corpus is available):
- invariant factor: curiosity-gap phrasing ("You Won't Believe…", "…What Happens Next") in bait of every scenario;
- causal factor: a scenario-specific bait style (sports: listicle numbers, politics: 2nd-person questions,
  celebrity: superlatives/hyperbole);
- noise: the disguise (newsroom thumbnail + calm description) added later by :func:`disguise`.
Some bait carries no cue and some news carries a number or question, so text alone is informative but imperfect.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from safety_kit.clickbait.data import Posts

TOPICS = {
    "sports": (["the striker", "the coach", "the home team", "a rookie pitcher", "the champions", "the goalkeeper",
                "the league", "the captain"],
               ["wins", "loses", "signs", "suspends", "defeats", "hires", "trades", "fines"],
               ["the final", "a new contract", "the derby", "a transfer deal", "the playoffs", "the season opener"]),
    "politics": (["the senate", "the governor", "the prime minister", "a city council", "the ministry",
                  "parliament", "the mayor", "regulators"],
                 ["passes", "rejects", "delays", "approves", "debates", "announces", "blocks", "reviews"],
                 ["the budget bill", "a tax reform", "new trade rules", "the election law", "a climate plan",
                  "housing subsidies"]),
    "celebrity": (["the pop star", "a famous actor", "the director", "a reality star", "the singer",
                   "the film studio", "the comedian", "a supermodel"],
                  ["releases", "cancels", "announces", "wins", "joins", "leaves", "sells", "unveils"],
                  ["a new album", "the world tour", "a documentary", "the award show", "a fashion line",
                   "the sequel"]),
}
QUALIFIERS = ["after a long dispute", "on tuesday", "amid criticism", "this week", "in a close vote",
              "despite protests", "ahead of schedule", "for the second time"]
INVARIANT = ["you won't believe what {s} did", "what happens next will surprise you: {s} {v} {o}",
             "this is why {s} {v} {o}", "nobody expected {s} to do this", "{s} {v} {o} and you need to see it"]
CAUSAL = {
    "sports": ["{n} times {s} proved everyone wrong", "{n} reasons {s} {v} {o}", "{n} things only fans of {s} know"],
    "politics": ["can you guess why {s} {v} {o}?", "do you know what {s} just did?", "are you ready for {o}?"],
    "celebrity": ["the most shocking moment when {s} {v} {o}", "the absolute best reaction to {o} ever",
                  "the craziest thing {s} ever did"],
}


def _headline(rng: np.random.Generator, topic: str, bait: bool, p_invariant: float, p_causal: float) -> str:
    subjects, verbs, objects = TOPICS[topic]
    s, v, o = rng.choice(subjects), rng.choice(verbs), rng.choice(objects)
    fill = {"s": s, "v": v, "o": o, "n": int(rng.integers(5, 30))}
    if bait:
        use_inv, use_causal = rng.random() < p_invariant, rng.random() < p_causal
        if use_causal:
            text = rng.choice(CAUSAL[topic]).format(**fill)
            if use_inv:
                text += " — you won't believe it"
            return text.capitalize()
        if use_inv:
            return rng.choice(INVARIANT).format(**fill).capitalize()
    # hard bait (no cue) and news share one template, so text alone cannot be perfect
    text = f"{s} {v} {o} {rng.choice(QUALIFIERS)}" if rng.random() < 0.7 else f"{s} {v} {o}"
    if bait:
        return text.capitalize()
    if rng.random() < 0.1:  # news also uses numbers and questions sometimes
        text = f"{int(rng.integers(2, 12))} officials say {text}" if rng.random() < 0.5 else f"why {text}?"
    return text.capitalize()


def synthetic_headlines(n: int, seed: int = 0, p_invariant: float = 0.55, p_causal: float = 0.6,
                        bait_rate: float = 0.5) -> tuple[list[str], np.ndarray, np.ndarray]:
    """n synthetic headlines -> (texts, labels 1 = bait, scenario ids 0..2 = sports/politics/celebrity)."""
    rng = np.random.default_rng(seed)
    topics = list(TOPICS)
    scenario = rng.integers(0, len(topics), size=n)
    labels = (rng.random(n) < bait_rate).astype(np.int64)
    texts = [_headline(rng, topics[s], bool(y), p_invariant, p_causal) for s, y in zip(scenario, labels)]
    return texts, labels, scenario.astype(np.int64)


def make_thumbnail(style: str, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A (size, size, 3) uint8 synthetic thumbnail: ``newsroom`` (muted palette, text bar) or ``viral``
    (saturated background, skin-coloured face blobs, a bright arrow)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    if style == "newsroom":
        base = np.array([0.35, 0.40, 0.48]) + rng.normal(0, 0.04, 3)
        img = base + 0.08 * yy[..., None] + rng.normal(0, 0.02, (size, size, 3))
        top = int(size * rng.uniform(0.62, 0.75))
        img[top:top + size // 6] = np.array([0.1, 0.1, 0.15])  # lower-third text bar
        for row in range(top + 1, top + size // 6 - 1, 2):
            img[row, 2:int(size * rng.uniform(0.4, 0.9))] = 0.85  # "text" stripes
    elif style == "viral":
        hue = rng.uniform(0, 1)
        base = np.clip(np.abs((hue * 6 + np.array([0, 4, 2])) % 6 - 3) - 1, 0, 1)  # a saturated colour
        img = base * 0.9 + 0.1 + rng.normal(0, 0.05, (size, size, 3))
        for _ in range(int(rng.integers(1, 3))):
            cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.8), rng.uniform(0.12, 0.22)
            face = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
            img[face] = np.array([0.88, 0.65, 0.5]) + rng.normal(0, 0.03, 3)
        arrow = (np.abs(yy - xx + rng.uniform(-0.3, 0.3)) < 0.05) & (xx > 0.55)
        img[arrow] = np.array([1.0, 0.95, 0.1])
    else:
        raise ValueError(f"unknown thumbnail style {style!r}")
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@dataclasses.dataclass
class DisguiseRates:
    """P(disguise | bait) and P(disguise | non-bait) of one environment."""

    bait: float
    non_bait: float


TRAIN_RATES = (DisguiseRates(0.1, 0.9), DisguiseRates(0.2, 0.8), DisguiseRates(0.3, 0.7))  # brief §8.2
TEST_ID = DisguiseRates(0.2, 0.8)  # = training environment 2
TEST_OOD = DisguiseRates(0.9, 0.1)  # malicious creators dress bait up as news
TEST_CLEAN = DisguiseRates(0.5, 0.5)  # [recon] "no disguise": disguise independent of the label


def draw_disguise(labels: np.ndarray, rates: DisguiseRates | list[DisguiseRates], environments: np.ndarray | None,
                  rng: np.random.Generator) -> np.ndarray:
    """Bernoulli disguise flags with P(disguise) = rates[env].bait / .non_bait by label."""
    labels = np.asarray(labels)
    if isinstance(rates, DisguiseRates):
        p = np.where(labels == 1, rates.bait, rates.non_bait)
    else:
        p = np.array([rates[e].bait if y == 1 else rates[e].non_bait for y, e in zip(labels, environments)])
    return rng.random(len(labels)) < p


def disguise(texts: list[str], labels: np.ndarray, flags: np.ndarray, rng: np.random.Generator,
             news_pool: list[str], bait_pool: list[str], image_size: int = 32) -> Posts:
    """Posts whose thumbnail/description are "newsroom" + a real/neutral news description when disguised and
    "viral" + a bait-style description otherwise; the headline (the causal content) is untouched."""
    images = [make_thumbnail("newsroom" if f else "viral", rng, image_size) for f in flags]
    descriptions = [str(news_pool[rng.integers(len(news_pool))]) if f else str(bait_pool[rng.integers(len(bait_pool))])
                    for f in flags]
    return Posts(texts=list(texts), descriptions=descriptions, images=images, labels=np.asarray(labels))


@dataclasses.dataclass
class PlantedShortcut:
    """One draw of the planted-shortcut control (:func:`planted_shortcut`): features with named groups.

    ``X_train`` (n, d), ``y_train``, ``env_train`` (training scenario ids); ``tests`` maps ``"id"``/``"ood"`` to
    ``(X, y)``; ``feature_groups`` is ``[(name, start, stop)]`` for the classifiers' ``feature_groups``;
    ``disguise_train`` the planted flags of the training rows (for bias analysis: 1 = dressed up as news).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    env_train: np.ndarray
    disguise_train: np.ndarray
    tests: dict[str, tuple[np.ndarray, np.ndarray]]
    feature_groups: list[tuple[str, int, int]]

    def columns(self, *groups: str) -> np.ndarray:
        """Column indices of the named groups (e.g. ``"headline"`` for a text-only model)."""
        return np.concatenate([np.arange(a, b) for name, a, b in self.feature_groups if name in groups])


def planted_shortcut(n_train: int = 3000, n_test: int = 4000, *, shortcut: bool = True, seed: int = 0,
                     label_noise: float = 0.35, feature_noise: float = 0.35, disguise_strength: float = 1.5,
                     topic_scale: float = 3.0, dims: tuple[int, int, int] = (16, 16, 8),
                     train_rates: tuple[DisguiseRates, ...] = TRAIN_RATES, id_rates: DisguiseRates = TEST_ID,
                     ood_rates: DisguiseRates = TEST_OOD) -> PlantedShortcut:
    """The positive (``shortcut=True``) / negative (``False``) control of the debiasing claim, as features.

    The label needs both modalities: y = 1[c_text + c_image + label_noise·ε > 0] with c_text, c_image ~ N(0, 1),
    written into the ``headline`` group (c_text along a fixed direction, plus a per-scenario topic offset of
    size ``topic_scale`` that lets environments be inferred from the text, as in the real benchmark) and the
    ``image`` group (c_image); each group alone predicts y with ≈ 75% accuracy, both with ≈ 90%+, so a
    text-only model stays well below the ceiling. The ``disguise`` group is the planted shortcut: a flag drawn
    with the label- and scenario-dependent rates of brief §8.2 (``train_rates``, "news-like" content on
    non-bait), shifted by ``disguise_strength``; the OOD test flips the rates (bait dressed up as news). With
    ``shortcut=False`` the flag is drawn at rate 0.5 independently of the label everywhere: nothing to drop,
    so a debiasing method should match ERM.
    """
    rng = np.random.default_rng(seed)
    n_text, n_image, n_disguise = dims
    direction = {name: (v / np.linalg.norm(v)) for name, v in
                 (("text", rng.normal(size=n_text)), ("image", rng.normal(size=n_image)),
                  ("disguise", rng.normal(size=n_disguise)))}
    topics = rng.normal(size=(len(train_rates), n_text))
    topics -= np.outer(topics @ direction["text"], direction["text"])  # topic ⟂ the causal text direction
    topics *= topic_scale / np.linalg.norm(topics, axis=1, keepdims=True)
    neutral = DisguiseRates(0.5, 0.5)

    def draw(n: int, rates, env: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c_text, c_image = rng.normal(size=n), rng.normal(size=n)
        y = (c_text + c_image + label_noise * rng.normal(size=n) > 0).astype(np.int64)
        if not shortcut:
            rates = neutral
        flags = draw_disguise(y, rates, env, rng).astype(float)
        text = topics[env] + np.outer(c_text, direction["text"]) + feature_noise * rng.normal(size=(n, n_text))
        image = np.outer(c_image, direction["image"]) + feature_noise * rng.normal(size=(n, n_image))
        disguise_block = (np.outer(flags * disguise_strength, direction["disguise"])
                          + feature_noise * rng.normal(size=(n, n_disguise)))
        return np.hstack([text, image, disguise_block]).astype(np.float32), y, flags.astype(np.int64)

    env_train = rng.integers(0, len(train_rates), size=n_train)
    X_train, y_train, flags_train = draw(n_train, list(train_rates), env_train)
    tests = {}
    for name, rates in (("id", id_rates), ("ood", ood_rates)):
        env = rng.integers(0, len(train_rates), size=n_test)  # same scenarios (topics), new disguise rates
        tests[name] = draw(n_test, rates, env)[:2]
    a, b = n_text, n_text + n_image
    groups = [("headline", 0, a), ("image", a, b), ("disguise", b, b + n_disguise)]
    return PlantedShortcut(X_train, y_train, env_train.astype(np.int64), flags_train, tests, groups)
