"""The knowledge graph behind ECR: UniCRS/DBpedia JSON files or RecBole's shipped ml-100k ``.kg``/``.link``.

A :class:`KnowledgeGraph` holds directed triples, the recommendable items, verbalisable entity names and
the ReDial movie-id -> entity map. Triples are verbalised as ``"<title>'s <relation> is <entity>"`` (brief
§2.5), which is also the pattern the generator's fact checker looks for.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from recsys_kit.data.redial import dbpedia_name
from shared.errors import DataError

# The five relations ECR uses for KG facts in the generation prompt (brief §2.1, imdb_review_entity_filter.py).
GENERATION_RELATIONS = ("starring", "writer", "productionCompany", "director", "musicComposer",
                        "actor", "written_by", "directed_by", "genre", "decade")

ML100K_GENRES = ("Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
                 "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
                 "Western")


@dataclasses.dataclass
class KnowledgeGraph:
    """Triples ``(head, relation, tail)`` over ``n_entities`` ids; items are the entities a recommender ranks."""

    n_entities: int
    heads: np.ndarray
    relations: np.ndarray
    tails: np.ndarray
    relation_names: list[str]
    entity_names: dict[int, str]
    item_ids: np.ndarray
    movie_to_entity: dict[str, int]
    movie_titles: dict[str, str] = dataclasses.field(default_factory=dict)
    name: str = "kg"

    def __post_init__(self) -> None:
        if self.n_entities <= 0 or len(self.item_ids) == 0:
            raise DataError(f"knowledge graph {self.name!r} has no entities or no items")
        if len(self.heads) and (max(self.heads.max(), self.tails.max()) >= self.n_entities):
            raise DataError(f"knowledge graph {self.name!r} has a triple pointing past n_entities={self.n_entities}")
        self._adjacency: dict[int, list[tuple[int, int]]] | None = None

    @property
    def n_relations(self) -> int:
        """Number of relation types."""
        return len(self.relation_names)

    def neighbours(self, entity: int, relations: tuple[str, ...] | None = None) -> list[tuple[str, int]]:
        """One-hop ``(relation name, neighbour)`` pairs of ``entity`` as head, optionally filtered by relation."""
        if self._adjacency is None:
            adjacency: dict[int, list[tuple[int, int]]] = defaultdict(list)
            for h, r, t in zip(self.heads.tolist(), self.relations.tolist(), self.tails.tolist()):
                adjacency[h].append((r, t))
            self._adjacency = adjacency
        out = [(self.relation_names[r], t) for r, t in self._adjacency.get(int(entity), [])]
        if relations is not None:
            out = [(r, t) for r, t in out if r in relations]
        return out

    def verbalise(self, head: int, relation: str, tail: int) -> str:
        """``"<head>'s <relation> is <tail>"`` (the triple format of ECR's generation prompt)."""
        return f"{self.entity_names.get(head, str(head))}'s {relation} is {self.entity_names.get(tail, str(tail))}"

    def item_index(self) -> dict[int, int]:
        """Entity id -> position in :attr:`item_ids`."""
        return {int(e): i for i, e in enumerate(self.item_ids.tolist())}


def _read_json(path: Path) -> object:
    if not path.is_file():
        raise DataError(f"knowledge-graph file {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"knowledge-graph file {path} is not valid JSON: {err}") from err


def _first(folder: Path, *names: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"none of {list(names)} exists in {folder}; expected the UniCRS KG files "
                    f"(dbpedia_subkg.json, entity2id.json, relation2id.json, item_ids.json)")


def load_unicrs_kg(folder: str | Path, movie_map: str | Path | None = None,
                   require_movie_map: bool = True) -> KnowledgeGraph:
    """Load the UniCRS/ECR DBpedia sub-graph (``dbpedia_subkg.json`` etc., optionally ``kg_``-prefixed).

    ``movie_map`` is a ReDial movie id -> DBpedia URI JSON (KGSF's ``id2entity``); by default
    ``kgsf_id2entity.json`` beside the KG. Raw ReDial names movies only as ``@id``, so without the map no movie
    links and no sample can be built: its absence is an error unless ``require_movie_map=False`` (data that
    carries ECR-processed ``movie`` URIs). Self-loop triples are dropped (the RGCN has a root weight).
    """
    folder = Path(folder)
    subkg = _read_json(_first(folder, "dbpedia_subkg.json", "kg_dbpedia_subkg.json"))
    entity2id = _read_json(_first(folder, "entity2id.json", "kg_entity2id.json"))
    relation2id = _read_json(_first(folder, "relation2id.json", "kg_relation2id.json"))
    items = _read_json(_first(folder, "item_ids.json", "kg_item_ids.json"))
    if not isinstance(subkg, dict) or not isinstance(entity2id, dict) or not isinstance(relation2id, dict):
        raise DataError(f"UniCRS KG files in {folder} have the wrong shape (expected JSON objects)")
    relation_names = [""] * (max(relation2id.values()) + 1)
    for uri, rid in relation2id.items():
        relation_names[rid] = uri.strip("<>").rsplit("/", 1)[-1]
    self_loop = relation2id.get("self_loop", -1)
    heads, rels, tails = [], [], []
    for head, edges in subkg.items():
        for rel, tail in edges:
            if rel != self_loop and int(head) != int(tail):
                heads.append(int(head))
                rels.append(int(rel))
                tails.append(int(tail))
    names = {int(i): dbpedia_name(uri) for uri, i in entity2id.items()}
    n_entities = max(entity2id.values()) + 1
    movie_to_entity: dict[str, int] = {}
    map_path = Path(movie_map) if movie_map else folder / "kgsf_id2entity.json"
    if map_path.is_file():
        for movie_id, uri in _read_json(map_path).items():
            if uri in entity2id:
                movie_to_entity[str(movie_id)] = int(entity2id[uri])
        if not movie_to_entity:
            raise DataError(f"movie map {map_path} links no ReDial movie id to an entity of {folder}'s entity2id; "
                            "it must map movie ids to the KG's DBpedia URIs")
    elif movie_map or require_movie_map:
        raise DataError(f"movie map {map_path} does not exist: raw ReDial names movies as @id, and without a movie "
                        "id -> DBpedia URI map (KGSF's id2entity as JSON) no movie links to the KG; pass movie_map= "
                        "(CLI --movie-map) or require_movie_map=False for ECR-processed data with 'movie' URIs")
    return KnowledgeGraph(n_entities=n_entities, heads=np.array(heads, dtype=np.int64),
                          relations=np.array(rels, dtype=np.int64), tails=np.array(tails, dtype=np.int64),
                          relation_names=relation_names, entity_names=names,
                          item_ids=np.array(sorted(int(i) for i in items), dtype=np.int64),
                          movie_to_entity=movie_to_entity, name=f"unicrs:{folder.name}")


def load_ml100k_kg(dataset_dir: str | Path | None = None, min_degree: int = 3) -> KnowledgeGraph:
    """MovieLens-100k as a CRS knowledge graph (brief §8.2 A).

    Entities: every movie (ReDial-style movie id = ml-100k item id), 18 named genre nodes, named decade nodes,
    and the Freebase entities of the shipped KG that touch at least ``min_degree`` movies (unnamed: they live
    only inside the RGCN). Relations: the ``film.film.*`` relations of the ``.kg`` file plus ``genre``/``decade``.
    """
    from recsys_kit.recbole_compat import recbole_dataset_dir

    folder = Path(dataset_dir) if dataset_dir else recbole_dataset_dir("ml-100k")
    item_path, kg_path, link_path = (folder / f"ml-100k.{ext}" for ext in ("item", "kg", "link"))
    for path in (item_path, kg_path, link_path):
        if not path.is_file():
            raise DataError(f"ml-100k file {path} is missing; expected RecBole atomic files .item/.kg/.link")
    movies = _read_items(item_path)
    movie_ids = sorted(movies, key=int)
    entity_of = {m: i for i, m in enumerate(movie_ids)}
    names = {i: movies[m][0] for m, i in entity_of.items()}
    relation_names = ["genre", "decade"]
    heads, rels, tails = [], [], []
    genre_entity = {}
    for genre in ML100K_GENRES:
        genre_entity[genre] = len(names)
        names[genre_entity[genre]] = genre.lower()
    decade_entity: dict[str, int] = {}
    for movie, (_, year, genres) in movies.items():
        for genre in genres:
            if genre in genre_entity:
                heads.append(entity_of[movie])
                rels.append(0)
                tails.append(genre_entity[genre])
        if year:
            decade = f"{year[:3]}0s"
            if decade not in decade_entity:
                decade_entity[decade] = len(names)
                names[decade_entity[decade]] = decade
            heads.append(entity_of[movie])
            rels.append(1)
            tails.append(decade_entity[decade])
    mid_to_movie = {}
    for line in link_path.read_text().splitlines()[1:]:
        item, mid = line.split("\t")[:2]
        if item in entity_of:
            mid_to_movie[mid] = item
    raw: list[tuple[str, str, str]] = []
    degree: Counter = Counter()
    for line in kg_path.read_text().splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) < 3 or not parts[1].startswith("film.film.") or parts[0] not in mid_to_movie:
            continue
        relation = parts[1].rsplit(".", 1)[-1]
        # the named genre relation comes from .item; Freebase's own genre edges point at unnamed MIDs
        raw.append((mid_to_movie[parts[0]], "freebase_genre" if relation == "genre" else relation, parts[2]))
        degree[parts[2]] += 1
    relation_index = {r: i for i, r in enumerate(relation_names)}
    other: dict[str, int] = {}
    n_named = len(names)
    for movie, relation, tail in raw:
        if tail in mid_to_movie:  # sequel/prequel point to another movie
            tail_entity = entity_of[mid_to_movie[tail]]
        elif degree[tail] >= min_degree:
            tail_entity = other.setdefault(tail, n_named + len(other))
        else:
            continue
        if relation not in relation_index:
            relation_index[relation] = len(relation_names)
            relation_names.append(relation)
        heads.append(entity_of[movie])
        rels.append(relation_index[relation])
        tails.append(tail_entity)
    titles = {m: f"{movies[m][0]} ({movies[m][1]})" if movies[m][1] else movies[m][0] for m in movie_ids}
    return KnowledgeGraph(n_entities=n_named + len(other), heads=np.array(heads, dtype=np.int64),
                          relations=np.array(rels, dtype=np.int64), tails=np.array(tails, dtype=np.int64),
                          relation_names=relation_names, entity_names=names,
                          item_ids=np.arange(len(movie_ids), dtype=np.int64), movie_to_entity=entity_of,
                          movie_titles=titles, name="ml-100k")


def _read_items(path: Path) -> dict[str, tuple[str, str, list[str]]]:
    header, *lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    columns = [c.split(":")[0] for c in header.split("\t")]
    movies = {}
    for line in lines:
        row = dict(zip(columns, line.split("\t")))
        title = row.get("movie_title", "").strip()
        if title.endswith(", The"):
            title = "The " + title[:-5]
        movies[row["item_id"]] = (title, row.get("release_year", "").strip(), row.get("class", "").split())
    return movies
