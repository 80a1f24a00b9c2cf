"""Object caches over an item catalogue: k-item answers under AÇAI's cost model.

The cache holds catalogue objects; a request (a user embedding) asks for its k best objects;
the cache serves the optimal answer from what it holds and fetches the rest. See
``docs/object-caches.md`` for the model and the metrics, and ``CONTRIBUTING.md`` for how to add a policy.

    from simcache.objects import ObjectReplayConfig, replay_objects, summarize_objects
    log = replay_objects(requests, catalogue, ObjectReplayConfig(policy="obj-lru", capacity=100, k=10))
    print(summarize_objects(log).table())
"""

from simcache.objects.catalogue import Catalogue, load_catalogue
from simcache.objects.config import ObjectReplayConfig
from simcache.objects.engine import replay_objects
from simcache.objects.log import ObjectReplayLog
from simcache.objects.policies import OBJECT_POLICIES
from simcache.objects.report import ObjectSummary, summarize_objects
from simcache.objects.server import server_answers

__all__ = ["OBJECT_POLICIES", "Catalogue", "ObjectReplayConfig", "ObjectReplayLog", "ObjectSummary", "load_catalogue",
           "replay_objects", "server_answers", "summarize_objects"]  # fmt: skip
