"""Procedurally generated scenes of coloured shapes and the yes/no, colour and count questions about them.

This is the embedded dataset of the PIP miniature (brief §8.2): no download, a fresh sample for every seed.
Colours are mid-intensity and pixels carry Gaussian noise because saturated, noise-free scenes make a tiny
model nearly impossible to attack at ε = 8/255 (brief §8.4, lesson 2).
"""

from __future__ import annotations

import dataclasses

import numpy as np

SHAPES = ("circle", "square", "triangle", "star")
COLOURS = {
    "red": (0.75, 0.30, 0.30),
    "green": (0.30, 0.70, 0.35),
    "blue": (0.30, 0.40, 0.80),
    "yellow": (0.80, 0.75, 0.30),
    "purple": (0.60, 0.35, 0.70),
}
COUNT_WORDS = ("one", "two", "three")
SPECIALS = ("<pad>", "<bos>", "<unk>")
# question words first, then answers; one shared vocabulary for questions and answers
QUESTION_WORDS = ("is", "there", "a", "what", "color", "the", "how", "many", "shapes", "?", "any", "in", "image")
ANSWERS = ("yes", "no", *COLOURS, *COUNT_WORDS)
VOCAB: tuple[str, ...] = SPECIALS + QUESTION_WORDS + SHAPES + tuple(COLOURS) + ("yes", "no") + COUNT_WORDS
TOKEN_ID = {word: i for i, word in enumerate(VOCAB)}
PAD, BOS = TOKEN_ID["<pad>"], TOKEN_ID["<bos>"]
MAX_QUESTION_TOKENS = 7

# The default irrelevant probes (brief §8.2 item 4): yes/no questions about (colour, shape) pairs that never
# appear in any scene (``generate_scenes(exclude=...)`` keeps them absent), so the true answer is always "no"
# and the question has nothing to do with the task question an attacker targets.
DEFAULT_PROBES = ("is there a purple star ?", "is there a yellow star ?", "is there a red triangle ?")
PROBE_EXCLUDED = (("purple", "star"), ("yellow", "star"), ("red", "triangle"))


@dataclasses.dataclass
class Scene:
    """One image and the objects drawn in it (``objects``: list of (colour, shape))."""

    image: np.ndarray  # (3, S, S) float32 in [0, 1]
    objects: list[tuple[str, str]]


def tokenize(question: str) -> list[int]:
    """Word ids of a question (lower-cased, whitespace-split); unknown words map to ``<unk>``."""
    words = question.lower().replace("?", " ?").split()
    return [TOKEN_ID.get(w, TOKEN_ID["<unk>"]) for w in words]


def encode_questions(questions: list[str]) -> np.ndarray:
    """Right-padded question ids, shape (N, MAX_QUESTION_TOKENS)."""
    out = np.full((len(questions), MAX_QUESTION_TOKENS), PAD, dtype=np.int64)
    for i, q in enumerate(questions):
        ids = tokenize(q)[:MAX_QUESTION_TOKENS]
        out[i, : len(ids)] = ids
    return out


def _shape_mask(shape: str, size: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xx - cx, yy - cy
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "square":
        return (np.abs(dx) <= r * 0.85) & (np.abs(dy) <= r * 0.85)
    if shape == "triangle":  # apex up
        return (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    # star: radius modulated by angle (5 points)
    angle = np.arctan2(dy, dx)
    radius = r * (0.55 + 0.45 * np.cos(5 * angle) ** 2)
    return dx**2 + dy**2 <= radius**2


def render_scene(objects: list[tuple[str, str]], rng: np.random.Generator, size: int = 32,
                 noise: float = 0.06) -> np.ndarray:
    """Draw ``objects`` at random positions/sizes on a tinted background; returns (3, size, size) in [0, 1]."""
    background = 0.45 + rng.uniform(-0.08, 0.08, size=3)
    image = np.ones((3, size, size), dtype=np.float32) * background[:, None, None].astype(np.float32)
    cells = rng.permutation(4)[: len(objects)]  # one object per quadrant so shapes do not overlap
    for (colour, shape), cell in zip(objects, cells):
        r = rng.uniform(0.16, 0.22) * size
        cx = (cell % 2 + 0.5) * size / 2 + rng.uniform(-0.06, 0.06) * size
        cy = (cell // 2 + 0.5) * size / 2 + rng.uniform(-0.06, 0.06) * size
        mask = _shape_mask(shape, size, cx, cy, r)
        for c in range(3):
            image[c][mask] = COLOURS[colour][c]
    image += rng.normal(0.0, noise, size=image.shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0)


def generate_scenes(n: int, seed: int, size: int = 32, noise: float = 0.06,
                    exclude: tuple[tuple[str, str], ...] = PROBE_EXCLUDED) -> list[Scene]:
    """``n`` random scenes of 1–3 objects; (colour, shape) pairs in ``exclude`` never appear."""
    rng = np.random.default_rng(seed)
    pairs = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in exclude]
    scenes = []
    for _ in range(n):
        k = int(rng.integers(1, 4))
        chosen = [pairs[i] for i in rng.choice(len(pairs), size=k, replace=False)]
        scenes.append(Scene(render_scene(chosen, rng, size, noise), chosen))
    return scenes


def ask(scene: Scene, rng: np.random.Generator, pairs_pool: list[tuple[str, str]]) -> tuple[str, str]:
    """One random (question, answer) about ``scene``: presence (balanced yes/no), colour of a shape, or count."""
    kind = rng.choice(["presence", "colour", "count"], p=[0.5, 0.3, 0.2])
    if kind == "colour":
        colour, shape = scene.objects[int(rng.integers(len(scene.objects)))]
        shapes = [s for _, s in scene.objects]
        if shapes.count(shape) == 1:  # only ask when the answer is unique
            return f"what color is the {shape} ?", colour
        kind = "presence"
    if kind == "count":
        return "how many shapes ?", COUNT_WORDS[len(scene.objects) - 1]
    if rng.random() < 0.5:
        colour, shape = scene.objects[int(rng.integers(len(scene.objects)))]
        return f"is there a {colour} {shape} ?", "yes"
    absent = [p for p in pairs_pool if p not in scene.objects]
    colour, shape = absent[int(rng.integers(len(absent)))]
    return f"is there a {colour} {shape} ?", "no"


def make_qa(scenes: list[Scene], seed: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Images (N, 3, S, S), one question per scene, and answer token ids (N,)."""
    rng = np.random.default_rng(seed + 7919)
    pool = [(c, s) for c in COLOURS for s in SHAPES]
    questions, answers = [], []
    for scene in scenes:
        q, a = ask(scene, rng, pool)
        questions.append(q)
        answers.append(TOKEN_ID[a])
    images = np.stack([s.image for s in scenes]).astype(np.float32)
    return images, questions, np.asarray(answers, dtype=np.int64)
