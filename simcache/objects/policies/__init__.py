"""Object-cache policies and their registry.

``OBJECT_POLICIES`` maps the public name to the class; every class has ``summary``, ``params``
(:class:`~simcache.cache.policies.base.Param`) and ``family`` (``"object"``). To add a policy:
one module with an :class:`~simcache.objects.policies.base.ObjectPolicy` subclass, one entry
here, one test class; the engine needs no change.
"""

from __future__ import annotations

from simcache.objects.policies.acai import Acai
from simcache.objects.policies.base import FAMILY, ObjectPolicy, Setup
from simcache.objects.policies.duel import ObjectDuel
from simcache.objects.policies.grades import ObjectGrades
from simcache.objects.policies.greedy import Greedy
from simcache.objects.policies.lfu import ObjectLFU
from simcache.objects.policies.lru import ObjectLRU
from simcache.objects.policies.qlru_dc import ObjectQLRUDC
from simcache.objects.policies.sim_lru import ObjectSimLRU

OBJECT_POLICIES: dict[str, type[ObjectPolicy]] = {
    cls.name: cls
    for cls in (ObjectLRU, ObjectLFU, ObjectSimLRU, ObjectQLRUDC, Acai, ObjectDuel, ObjectGrades, Greedy)
}

__all__ = ["FAMILY", "Acai", "OBJECT_POLICIES", "Greedy", "ObjectDuel", "ObjectGrades", "ObjectLFU", "ObjectLRU",
           "ObjectPolicy", "ObjectQLRUDC", "ObjectSimLRU", "Setup"]  # fmt: skip
