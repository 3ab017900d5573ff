"""Claims take turns across keys (start-time fair queueing), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from seqdream.auth.keys import KeyRing
from seqdream.db import Database
from seqdream.jobs.request import JobRequest
from seqdream.jobs.store import JobStore

REQUEST = JobRequest(prompt="p", size="1024*1024")


def queue(store: JobStore, key_id: str, count: int) -> list[str]:
    return [store.create(model="m", request=REQUEST, seed=i, api_key_id=key_id).id for i in range(count)]


def owners(store: JobStore, claims: int) -> list[str]:
    taken = []
    for _ in range(claims):
        job = store.claim("w")
        assert job is not None
        taken.append(job.api_key_id)
    return taken


def test_a_newcomer_is_served_next_not_after_the_backlog(db: Database) -> None:
    store, keys = JobStore(db), KeyRing(db)
    a, b = keys.create("a").id, keys.create("b").id
    backlog = queue(store, a, 30)
    first = store.claim("w")
    assert first is not None and first.id == backlog[0]
    (single,) = queue(store, b, 1)
    second = store.claim("w")
    assert second is not None and second.id == single
    rest = [store.claim("w") for _ in range(29)]
    assert [job.id for job in rest if job] == backlog[1:]  # a's own order is kept
    assert store.claim("w") is None


def test_keys_with_backlogs_take_turns_and_a_lone_key_is_first_in_first_out(db: Database) -> None:
    store, keys = JobStore(db), KeyRing(db)
    a, b, c = (keys.create(name).id for name in "abc")
    a_ids = queue(store, a, 10)
    queue(store, b, 10)
    queue(store, c, 3)
    order = owners(store, 23)
    # Round robin while all three have work: each three claims serve each key once.
    for start in range(0, 9, 3):
        assert sorted(order[start : start + 3]) == sorted([a, b, c]), order
    assert Counter(order) == {a: 10, b: 10, c: 3}
    # A lone key afterwards: claims follow submission order.
    later = queue(store, a, 5)
    claimed = [store.claim("w") for _ in range(5)]
    assert [job.id for job in claimed if job] == later
    assert a_ids[0] != later[0]


def test_a_heavier_key_gets_more_turns(db: Database) -> None:
    store, keys = JobStore(db), KeyRing(db)
    heavy, light = keys.create("heavy", weight=3.0).id, keys.create("light").id
    queue(store, heavy, 40)
    queue(store, light, 40)
    served = Counter(owners(store, 40))
    assert served[heavy] == 30 and served[light] == 10, served


def test_concurrent_claimers_take_each_job_once_across_keys(db: Database) -> None:
    store, keys = JobStore(db), KeyRing(db)
    ids = {job_id for name in "xyz" for job_id in queue(store, keys.create(name).id, 20)}

    def claim_all(worker: str) -> list[str]:
        mine = []
        while (job := JobStore(db).claim(worker)) is not None:
            mine.append(job.id)
        return mine

    with ThreadPoolExecutor(4) as pool:
        claimed = [job_id for batch in pool.map(claim_all, ["w1", "w2", "w3", "w4"]) for job_id in batch]
    assert sorted(claimed) == sorted(ids)
