"""A seeded ReDial-format conversation simulator over RecBole's shipped MovieLens-100k (brief §8.2 A).

Each conversation samples a real ml-100k user: liked items L_u (rated ≥ 4), disliked items D_u (rated ≤ 2), a
favourite and a hated genre from their ratings. The recommender suggests 3–5 movies: from L_u (the seeker
reacts with like/happy/…, ``liked=1``), from D_u or the hated genre (negative, ``liked=0``) or an unrated popular
movie (curious/neutral, ``liked=2``). With probability ``p_trap`` the recommender first brings up the hated
genre and the seeker rejects it (the paper's Figure-1 trap: a model that reads every mentioned entity as a
preference is misled). Emotions are *latent*: they shape the wording but are not written into the JSONL; the
ECR pipeline must re-infer them. The true labels come back separately to score the annotator.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter, defaultdict
from pathlib import Path

from recsys_kit.data.redial import Dialogue, Message
from recsys_kit.ecr.kg import ML100K_GENRES, KnowledgeGraph
from shared.errors import ConfigError

OPENING = {
    "like": ["Hi! I really love {genre} movies, like @{movie}.", "Hello, I'm a big fan of {genre} films. @{movie} is one of my favorites.",
             "Hey! I adore {genre} movies, @{movie} is amazing.", "Hi there, I love a good {genre} movie such as @{movie}."],
    "happy": ["Hi! I had so much fun watching @{movie}, I want more {genre} like that!",
              "Hello! @{movie} always makes me laugh, haha. Any {genre} films like it?"],
    "nostalgia": ["Hi! I grew up watching @{movie}, it reminds me of my childhood. I want some {genre} movies.",
                  "Hey, @{movie} brings back memories from when I was a kid. Looking for {genre}."],
}
ASK = ["Can you recommend something?", "What would you suggest?", "Any ideas for tonight?"]
REC_GREETING = ["Hi! What kind of movies are you in the mood for?", "Hello! What do you usually enjoy watching?",
                "Hi there, happy to help."]
TRAP = ["Do you like {genre} movies?", "How about something in the {genre} genre?", "Maybe some {genre} then?"]
TRAP_REPLY = ["No, I really can't stand {genre} films.", "Ugh, {genre} is boring to me, not a fan.",
              "Please no {genre}, I hate those.", "Not really, {genre} movies disappoint me every time."]
SUGGEST = ["You might enjoy @{movie}.", "Have you seen @{movie}?", "I would recommend @{movie}.",
           "How about @{movie}?", "Since you like {genre}, try @{movie}.", "@{movie} is a great {genre} pick."]
REACTION = {
    "like": ["Oh I loved @{movie}! Great pick.", "Yes! @{movie} is one of my favorites.", "I really liked that one, great choice.",
             "I love @{movie}, good suggestion."],
    "happy": ["Haha, @{movie} was so much fun!", "That one made me so happy, what a joy.", "@{movie} is hilarious, I enjoyed it a lot."],
    "surprise": ["Wow, I didn't expect that one! I loved it.", "Oh wow, what a surprise, @{movie} was great."],
    "nostalgia": ["@{movie} reminds me of my childhood, I loved it.", "I remember watching that as a kid, so good."],
    "agreement": ["Yes, I agree, @{movie} was great.", "Exactly, that is a good one, I agree."],
    "negative": ["Ugh, I didn't like @{movie} at all.", "I hated @{movie}, it was so boring.", "Not a fan of that one, it disappointed me.",
                 "No, @{movie} was terrible, I regret watching it.", "I really disliked @{movie}, too slow."],
    "curious": ["I haven't seen @{movie}, what is it about?", "Hmm, I haven't watched that. Is it good?",
                "I've never seen it, tell me more?"],
    "neutral": ["I haven't seen that one.", "Okay, I don't know @{movie}.", "Maybe, I have not seen it yet."],
}
SEEKER_HATE = ["Please nothing like @{movie}, I hated it.", "Just not something like @{movie}, that was awful."]
CLOSING_REC = ["Enjoy your movie!", "Have a great night!", "Glad I could help."]
CLOSING_SEEKER = ["Thanks so much, bye!", "Thank you, I appreciate it. Goodbye!", "Thanks for the help, bye!"]


@dataclasses.dataclass
class SimulatorConfig:
    """Knobs of the simulator (defaults: brief §8.2 A; the paper's ReDial has 4.9% dislike / 14% not-say)."""

    n_dialogues: int = 600
    min_ratings: int = 30
    min_turns: int = 3
    max_turns: int = 5
    q_dislike: float = 0.10
    q_not_say: float = 0.15
    p_trap: float = 0.35
    p_trap_follow: float = 0.15  # after a rejection the recommender usually moves on (it reads emotions)
    p_seeker_hate: float = 0.25
    popular_pool: int = 300
    genre_pool: int = 120  # suggestions come from the genre's most-rated movies
    # "varied": the phrasings above; "parallel": every seeker reaction is "I <w> <movie/genre>." and only the
    # emotion-bearing word <w> differs between like and dislike (the positive/negative controls)
    wording: str = "varied"
    # "preference": the reaction's emotion follows the seeker's rating; "independent": like vs negative is a coin
    # flip, unrelated to the rating and to the liked flag (the negative control)
    emotion_signal: str = "preference"

    def __post_init__(self):
        if self.wording not in {"varied", "parallel"}:
            raise ConfigError(f"wording must be 'varied' or 'parallel', got {self.wording!r}")
        if self.emotion_signal not in {"preference", "independent"}:
            raise ConfigError(f"emotion_signal must be 'preference' or 'independent', got {self.emotion_signal!r}")


# the controls' parallel wording: emotion-bearing words only (what the annotator reads), same frame otherwise
PARALLEL = {"like": ["loved", "adored", "enjoyed"], "negative": ["hated", "disliked", "could not stand"],
            "neutral": ["have not seen", "do not know"]}
# positive control: liked flags kept out of training by the benchmark (unweighted loss for every arm), parallel
# wording, many genre questions; p_seeker_hate (volunteered disliked movies) balances the two sides' mention counts
POSITIVE_CONTROL = dict(wording="parallel", p_trap=0.7, p_trap_follow=0.6, q_dislike=0.3, q_not_say=0.15,
                        p_seeker_hate=0.4)
NEGATIVE_CONTROL = dict(POSITIVE_CONTROL, emotion_signal="independent")


@dataclasses.dataclass
class SimulatedWorld:
    """The simulator's output: ReDial dialogues plus the latent emotion labels of every seeker message."""

    dialogues: list[Dialogue]
    latent_emotions: dict[tuple[str, int], list[str]]


class ReDialSimulator:
    """Generate ReDial-format conversations over ml-100k users, items and the genre part of the KG."""

    def __init__(self, kg: KnowledgeGraph, ratings: dict[str, dict[str, float]], config: SimulatorConfig | None = None):
        self.kg = kg
        self.config = config or SimulatorConfig()
        self.ratings = {u: r for u, r in ratings.items() if len(r) >= self.config.min_ratings}
        genre_relation = kg.relation_names.index("genre")
        genre_names = {g.lower(): g for g in ML100K_GENRES}
        entity_to_movie = {e: m for m, e in kg.movie_to_entity.items()}
        self.movie_genres: dict[str, list[str]] = defaultdict(list)
        for h, r, t in zip(kg.heads.tolist(), kg.relations.tolist(), kg.tails.tolist()):
            if r == genre_relation and h in entity_to_movie:
                self.movie_genres[entity_to_movie[h]].append(genre_names.get(kg.entity_names[t], kg.entity_names[t]))
        counts = Counter(m for r in ratings.values() for m in r)
        self.popular = [m for m, _ in counts.most_common(self.config.popular_pool)]
        self.genre_items: dict[str, list[str]] = defaultdict(list)
        for movie, _ in counts.most_common():
            for genre in self.movie_genres.get(movie, []):
                self.genre_items[genre].append(movie)
        self.control_genres = sorted(g for g, items in self.genre_items.items() if len(items) >= 60)

    def _genres(self, rated: dict[str, float]) -> tuple[str, str]:
        scores: dict[str, list[float]] = defaultdict(list)
        for movie, rating in rated.items():
            for genre in self.movie_genres.get(movie, []):
                scores[genre].append(rating)
        means = {g: sum(v) / len(v) for g, v in scores.items() if len(v) >= 3}
        favourite = max(means, key=lambda g: (means[g], len(scores[g])))
        hated = min(means, key=lambda g: (means[g], -len(scores[g])))
        if hated == favourite or means[hated] > 3.3:
            unrated = [g for g in ("Horror", "Documentary", "Western", "Musical", "War", "Film-Noir") if g not in means]
            hated = unrated[0] if unrated else hated
        return favourite, hated

    def generate(self, seed: int = 0) -> SimulatedWorld:
        """Generate ``config.n_dialogues`` conversations deterministically from ``seed``."""
        rng = random.Random(seed)
        users = sorted(self.ratings, key=int)
        dialogues, latent = [], {}
        for index in range(self.config.n_dialogues):
            user = rng.choice(users)
            dialogue, emotions = self._conversation(f"sim{seed}-{index}", user, rng, 1000 + 2 * index)
            dialogues.append(dialogue)
            latent.update(emotions)
        return SimulatedWorld(dialogues, latent)

    def _conversation(self, cid: str, user: str, rng: random.Random, worker: int):
        cfg = self.config
        rated = self.ratings[user]
        liked = [m for m, r in rated.items() if r >= 4 and m in self.kg.movie_to_entity]
        disliked = [m for m, r in rated.items() if r <= 2 and m in self.kg.movie_to_entity]
        favourite, hated = self._genres(rated)
        rng.shuffle(liked)
        rng.shuffle(disliked)
        seeker, recommender = worker, worker + 1
        messages: list[Message] = []
        questions: dict[str, dict[str, int]] = {}
        latent: dict[tuple[str, int], list[str]] = {}
        used: set[str] = set()

        def say(sender: int, text: str, emotions: list[str] | None = None) -> None:
            mid = len(messages) + 1
            messages.append(Message(text=text, sender=sender, message_id=mid, time_offset=5 * mid))
            if emotions is not None:
                latent[(cid, mid)] = emotions

        parallel = cfg.wording == "parallel"

        def polarity(liked: bool) -> str:
            if cfg.emotion_signal == "independent":
                return rng.choice(["like", "negative"])
            return "like" if liked else "negative"

        def react(emotion: str, target: str) -> str:
            return f"I {rng.choice(PARALLEL[emotion])} {target}."

        def pick(pool: list[str]) -> str | None:
            for movie in pool:
                if movie not in used:
                    used.add(movie)
                    return movie
            return None

        opener = pick([m for m in liked if favourite in self.movie_genres.get(m, [])] + liked)
        # the recommender suggests popular movies of the seeker's favourite genre (liked unless rated ≤ 3) or,
        # misreading the seeker, of the hated genre (disliked unless rated ≥ 4): both are predictable from
        # the genres the seeker reacted to, but only if the reaction's polarity is read correctly
        fav_pool = [m for m in self.genre_items.get(favourite, [])[: cfg.genre_pool] if rated.get(m, 4) >= 4
                    and hated not in self.movie_genres.get(m, [])] + liked
        hated_pool = [m for m in self.genre_items.get(hated, [])[: cfg.genre_pool] if rated.get(m, 2) <= 2
                      and favourite not in self.movie_genres.get(m, [])] + disliked
        if opener is None:
            opener = pick(self.popular)
        if parallel:  # the controls: liked and disliked sides are symmetric in everything but the emotion words
            # the liked and the hated genre are a random pair of large genres, sides drawn at random: no genre,
            # pool size or popularity prior tells a liked suggestion from a disliked one (the preference is
            # planted, not read from the ml-100k ratings)
            favourite, hated = rng.sample(self.control_genres, 2)
            fav_pool, hated_pool = ([m for m in self.genre_items[g][: cfg.genre_pool]
                                     if other not in self.movie_genres.get(m, [])]
                                    for g, other in ((favourite, hated), (hated, favourite)))
            rated = {}
            sides = {True: (favourite, fav_pool), False: (hated, hated_pool)}
            first = rng.random() < 0.5  # the seeker opens with a liked or with a disliked genre and movie
            movie = pick(sides[first][1]) or opener
            emotion = polarity(first)
            say(seeker, f"{react(emotion, f'{sides[first][0].lower()} movies')} For example @{movie}.", [emotion])
            questions[movie] = {"suggested": 0, "seen": 1, "liked": int(first)}
            say(recommender, rng.choice(REC_GREETING))
            for _ in range(rng.randint(cfg.min_turns, cfg.max_turns)):
                follow = None
                if rng.random() < cfg.p_trap:  # the recommender asks about the liked or the hated genre
                    side = rng.random() < 0.5
                    say(recommender, rng.choice(TRAP).format(genre=sides[side][0].lower()))
                    emotion = polarity(side)
                    say(seeker, react(emotion, f"{sides[side][0].lower()} movies"), [emotion])
                    # the recommender reads the reaction: it follows up on a liked genre, moves on from a hated one
                    follow = True if side and rng.random() < cfg.p_trap_follow else None
                draw = rng.random()
                if follow is not None:
                    kind = "like" if follow else "dislike"
                else:
                    kind = "dislike" if draw < cfg.q_dislike else "not_say" if draw < cfg.q_dislike + cfg.q_not_say \
                        else "like"
                if kind == "not_say":
                    movie = pick([m for m in self.popular if m not in rated and favourite not in
                                  self.movie_genres.get(m, []) and hated not in self.movie_genres.get(m, [])])
                else:
                    movie = pick(sides[kind == "like"][1]) or pick(self.popular)
                if movie is None:
                    break
                say(recommender, rng.choice(SUGGEST).format(movie=movie, genre=sides[kind != "dislike"][0].lower()))
                emotion = "neutral" if kind == "not_say" else polarity(kind == "like")
                say(seeker, react(emotion, f"@{movie}"), [emotion])
                questions[movie] = {"suggested": 1, "seen": int(kind != "not_say"),
                                    "liked": {"like": 1, "dislike": 0, "not_say": 2}[kind]}
                bad = pick(hated_pool) if rng.random() < cfg.p_seeker_hate else None
                if bad:  # the seeker volunteers a disliked movie: both sides get about as many mentions, so how
                    emotion = polarity(False)  # often a genre comes up does not tell which side it is on
                    say(recommender, "Tell me about another movie you have seen.")
                    say(seeker, react(emotion, f"@{bad}"), [emotion])
                    questions[bad] = {"suggested": 0, "seen": 1, "liked": 0}
            say(recommender, rng.choice(CLOSING_REC))
            say(seeker, rng.choice(CLOSING_SEEKER), ["grateful"])
            mentions = {m: self.kg.movie_titles.get(m, m) for m in questions}
            return Dialogue(conversation_id=cid, messages=messages, movie_mentions=mentions, seeker=seeker,
                            recommender=recommender, initiator_questions=questions, respondent_questions={}), latent
        emotion = rng.choice(["like", "like", "happy", "nostalgia"])
        say(seeker, rng.choice(OPENING[emotion]).format(genre=favourite.lower(), movie=opener), [emotion])
        questions[opener] = {"suggested": 0, "seen": 1, "liked": 1}
        if rng.random() < 0.5:
            messages.append(Message(rng.choice(ASK), seeker, len(messages) + 1, 5 * (len(messages) + 1)))
        say(recommender, rng.choice(REC_GREETING))
        if rng.random() < cfg.p_seeker_hate and disliked:
            bad = pick(disliked)
            if bad:
                say(seeker, rng.choice(SEEKER_HATE).format(movie=bad), ["negative"])
                questions[bad] = {"suggested": 0, "seen": 1, "liked": 0}
                say(recommender, "Got it, I will keep that in mind.")
        for _ in range(rng.randint(cfg.min_turns, cfg.max_turns)):
            trapped = rng.random() < cfg.p_trap
            if trapped:
                say(recommender, rng.choice(TRAP).format(genre=hated.lower()))
                say(seeker, rng.choice(TRAP_REPLY).format(genre=hated.lower()), ["negative"])
            draw = rng.random()
            if trapped and rng.random() < cfg.p_trap_follow:
                kind = "dislike"
            elif draw < cfg.q_dislike:
                kind = "dislike"
            elif draw < cfg.q_dislike + cfg.q_not_say:
                kind = "not_say"
            else:
                kind = "like"
            if kind == "like":
                movie = pick(fav_pool) or pick(self.popular)
                genre = favourite
            elif kind == "dislike":
                genre = hated
                movie = pick(hated_pool) or pick(self.popular)
            else:
                genre = favourite
                movie = pick([m for m in self.popular if m not in rated and favourite not in self.movie_genres.get(m, [])
                              and hated not in self.movie_genres.get(m, [])])
            if movie is None:
                break
            say(recommender, rng.choice(SUGGEST).format(movie=movie, genre=genre.lower()))
            if kind == "like":
                emotion = rng.choices(["like", "happy", "surprise", "nostalgia", "agreement"], [5, 3, 1, 1, 1])[0]
                labels = [emotion] if emotion == "like" else [emotion, "like"]
                questions[movie] = {"suggested": 1, "seen": 1, "liked": 1}
            elif kind == "dislike":
                emotion, labels = "negative", ["negative"]
                questions[movie] = {"suggested": 1, "seen": 1, "liked": 0}
            else:
                emotion = rng.choice(["curious", "curious", "neutral"])
                labels = [emotion]
                questions[movie] = {"suggested": 1, "seen": 0, "liked": 2}
            say(seeker, rng.choice(REACTION[emotion]).format(movie=movie), labels)
        say(recommender, rng.choice(CLOSING_REC))
        say(seeker, rng.choice(CLOSING_SEEKER), ["grateful"])
        mentions = {m: self.kg.movie_titles.get(m, m) for m in questions}
        dialogue = Dialogue(conversation_id=cid, messages=messages, movie_mentions=mentions, seeker=seeker,
                            recommender=recommender, initiator_questions=questions,
                            respondent_questions={})
        return dialogue, latent


def load_ml100k_ratings(dataset_dir: str | Path | None = None) -> dict[str, dict[str, float]]:
    """user id -> {item id: rating} from RecBole's shipped ``ml-100k.inter``."""
    from recsys_kit.recbole_compat import recbole_dataset_dir

    folder = Path(dataset_dir) if dataset_dir else recbole_dataset_dir("ml-100k")
    ratings: dict[str, dict[str, float]] = defaultdict(dict)
    for line in (folder / "ml-100k.inter").read_text().splitlines()[1:]:
        user, item, rating = line.split("\t")[:3]
        ratings[user][item] = float(rating)
    return dict(ratings)


def simulate_ml100k(n_dialogues: int = 600, seed: int = 0, **knobs) -> tuple[SimulatedWorld, KnowledgeGraph]:
    """Convenience: ml-100k KG + ratings -> a simulated ReDial world."""
    from recsys_kit.ecr.kg import load_ml100k_kg

    kg = load_ml100k_kg()
    config = SimulatorConfig(n_dialogues=n_dialogues, **knobs)
    return ReDialSimulator(kg, load_ml100k_ratings(), config).generate(seed), kg
