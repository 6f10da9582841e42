"""The embedded default corpus and its held-out probe tasks, generated from a seed.

``generate_documents(num_words, seed)`` builds a mixed-genre pretraining corpus (biographies,
product reviews, news, narratives, and with ``lexical_share`` class-coherent ``lexical``
documents) over a world of generated entities (:func:`build_world`);
``generate_probe_tasks(seed, ...)`` draws fresh labelled examples (:data:`TASK_NAMES`) from
the same world. No network, no files: everything is a function of the arguments.
"""

from pretrainlab.embedded.corpus import GENRES, generate_documents
from pretrainlab.embedded.probes import TASK_NAMES, generate_probe_task, generate_probe_tasks
from pretrainlab.embedded.world import RELATIONS, Person, Product, World, build_world

__all__ = [
    "GENRES",
    "RELATIONS",
    "TASK_NAMES",
    "Person",
    "Product",
    "World",
    "build_world",
    "generate_documents",
    "generate_probe_task",
    "generate_probe_tasks",
]
