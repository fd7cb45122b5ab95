"""Join tokens: stored as hashes, single use, expiring, reserved while a join runs."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from microkube.cluster import tokens
from microkube.cluster.tokens import (
    RESERVATION_SECONDS,
    ExpiredToken,
    Holder,
    TokenInUse,
    TokenStore,
    TokenStoreError,
    UnknownToken,
    UsedToken,
)
from microkube.errors import UsageError

TOKEN = "t" * 32
OTHER = "o" * 32
W1 = Holder("worker-1", "192.0.2.11")
W2 = Holder("worker-2", "192.0.2.12")


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> TokenStore:
    s = TokenStore(tmp_path / "credentials" / "cluster-tokens.json", clock)
    s.add(TOKEN, 3600)
    return s


def test_new_tokens_are_32_url_safe_characters_and_differ() -> None:
    made = {tokens.new_token() for _ in range(50)}
    assert len(made) == 50
    for t in made:
        assert tokens.TOKEN_PATTERN.match(t) and len(t) == 32


def test_only_the_hash_is_stored_in_a_private_file(store: TokenStore) -> None:
    text = store.path.read_text()
    assert TOKEN not in text
    assert hashlib.sha256(TOKEN.encode()).hexdigest() in text
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    # Written through a temporary file and a rename: nothing else is left beside it.
    assert sorted(p.name for p in store.path.parent.iterdir()) == [
        ".cluster-tokens.json.lock", "cluster-tokens.json"]


def test_lookup_compares_every_hash_in_constant_time(
        store: TokenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.add(OTHER, 3600)
    store.add("x" * 40, 3600)
    calls: list[tuple[str, str]] = []
    real = tokens.hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    store.check(TOKEN)
    # Every stored hash is compared, even after the match (the first record).
    assert len(calls) == 3
    assert {b for _, b in calls} == {tokens.token_hash(TOKEN)}


def test_unknown_token_is_refused_without_changing_the_file(store: TokenStore) -> None:
    before = store.path.read_bytes()
    with pytest.raises(UnknownToken, match="does not know the token"):
        store.reserve(OTHER, W1)
    assert store.path.read_bytes() == before


def test_token_expires_after_its_ttl(store: TokenStore, clock: Clock) -> None:
    clock.now += 3599
    store.check(TOKEN)
    clock.now += 1
    with pytest.raises(ExpiredToken, match="expired at") as err:
        store.reserve(TOKEN, W1)
    assert err.value.status == 401


def test_reserve_then_consume_makes_it_single_use(store: TokenStore) -> None:
    record = store.reserve(TOKEN, W1)
    assert record.reserved_by == W1
    store.consume(TOKEN, W1)
    with pytest.raises(UsedToken, match="already used to join node 'worker-1'") as err:
        store.reserve(TOKEN, W2)
    assert err.value.status == 409
    with pytest.raises(UsedToken):
        store.reserve(TOKEN, W1)


def test_a_reserved_token_is_refused_to_another_joiner_with_the_reason(store: TokenStore) -> None:
    store.reserve(TOKEN, W1)
    with pytest.raises(TokenInUse, match=r"join of node 'worker-1' \(192.0.2.11\)"):
        store.check(TOKEN, W2)
    # The same joiner may take its reservation again: a retry after its joiner died.
    assert store.reserve(TOKEN, W1).reserved_by == W1


def test_release_makes_the_token_usable_again(store: TokenStore) -> None:
    store.reserve(TOKEN, W1)
    assert store.release(TOKEN) is True
    assert store.release(TOKEN) is False
    assert store.reserve(TOKEN, W2).reserved_by == W2
    with pytest.raises(UnknownToken):
        store.release(OTHER)


def test_a_reservation_lapses(store: TokenStore, clock: Clock) -> None:
    store.reserve(TOKEN, W1)
    clock.now += RESERVATION_SECONDS
    assert store.reserve(TOKEN, W2).reserved_by == W2


def test_a_join_reserved_in_time_may_complete_after_expiry(store: TokenStore, clock: Clock) -> None:
    clock.now += 3590
    store.reserve(TOKEN, W1)
    clock.now += 60
    store.consume(TOKEN, W1)
    with pytest.raises(UsedToken):
        store.check(TOKEN)


def test_consume_by_another_joiner_is_refused(store: TokenStore) -> None:
    store.reserve(TOKEN, W1)
    with pytest.raises(TokenInUse):
        store.consume(TOKEN, W2)


def test_joining_consumes_on_success_and_releases_on_failure(store: TokenStore) -> None:
    with pytest.raises(RuntimeError), store.joining(TOKEN, W1):
        raise RuntimeError("etcd refused the member")
    # Not burnt: another joiner may use it.
    with store.joining(TOKEN, W2) as record:
        assert record.reserved_by == W2
    with pytest.raises(UsedToken, match="worker-2"):
        store.check(TOKEN)


def test_spent_tokens_are_forgotten_a_day_later(store: TokenStore, clock: Clock) -> None:
    store.add(OTHER, 60)
    store.reserve(TOKEN, W1)
    store.consume(TOKEN, W1)
    clock.now += tokens.REMEMBER_SECONDS + 61
    store.add("n" * 32, 60)  # any write prunes
    doc = json.loads(store.path.read_text())
    assert [r["hash"] for r in doc["tokens"]] == [tokens.token_hash("n" * 32)]


@pytest.mark.parametrize("token, ttl, message", [
    ("short", 60, "32 to 128 characters long, not 5"),
    ("a" * 31 + "/", 60, "only letters, digits"),
    ("a" * 129, 60, "not 129"),
    ("a" * 32, 0, "between 1 and"),
    ("a" * 32, tokens.MAX_TTL + 1, "between 1 and"),
])
def test_add_refuses_malformed_tokens_and_lifetimes(
        tmp_path: Path, token: str, ttl: int, message: str) -> None:
    store = TokenStore(tmp_path / "t.json")
    with pytest.raises(UsageError, match=message):
        store.add(token, ttl)
    assert not store.path.exists()


def test_add_refuses_a_token_that_exists(store: TokenStore) -> None:
    with pytest.raises(UsageError, match="already exists"):
        store.add(TOKEN, 60)


@pytest.mark.parametrize("content", ["{not json", '{"version": 9, "tokens": []}', "[]",
                                     '{"version": 1, "tokens": [{"hash": "x"}]}'])
def test_a_damaged_file_is_one_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cluster-tokens.json"
    path.write_text(content)
    with pytest.raises(TokenStoreError, match=r"cluster-tokens\.json|damaged"):
        TokenStore(path).check(TOKEN)


def test_a_file_of_binary_bytes_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cluster-tokens.json"
    path.write_bytes(b"\xff{")
    with pytest.raises(TokenStoreError, match="not valid JSON"):
        TokenStore(path).check(TOKEN)


# --- admitted joins: a failure is undone before the token is used again ----------------------


def test_an_admitted_join_that_lapses_is_listed_for_undoing_and_blocks_other_joiners(
        store: TokenStore, clock: Clock) -> None:
    store.reserve(TOKEN, W1, seconds=45)
    record = store.admit(TOKEN, W1)
    assert record.admitted_at == clock.now and record.reserved_until == clock.now + 45
    assert store.lapsed_admissions() == []
    clock.now += 46
    [lapsed] = store.lapsed_admissions()
    assert lapsed.reserved_by == W1
    with pytest.raises(tokens.JoinBeingUndone, match="earlier join of node 'worker-1'"):
        store.reserve(TOKEN, W2)
    # The joiner's completion comes too late: the join is being undone.
    with pytest.raises(tokens.JoinLapsed, match="run the join again"):
        store.consume(TOKEN, W1)
    assert store.forget_admission(lapsed) is True
    assert store.lapsed_admissions() == []
    assert store.reserve(TOKEN, W2).reserved_by == W2


def test_the_same_joiner_may_retry_a_lapsed_admission_and_forgetting_it_then_changes_nothing(
        store: TokenStore, clock: Clock) -> None:
    store.reserve(TOKEN, W1, seconds=10)
    store.admit(TOKEN, W1)
    clock.now += 11
    [lapsed] = store.lapsed_admissions()
    again = store.reserve(TOKEN, W1, seconds=10)
    assert again.admitted_at == lapsed.admitted_at  # the retry's agent undoes it before admitting
    assert store.forget_admission(lapsed) is False
    assert store.hold(TOKEN, W1).reserved_until == again.reserved_until  # not extended
    assert store.admit(TOKEN, W1).admitted_at == clock.now
    assert store.consume(TOKEN, W1).admitted_at is None


def test_release_ends_an_admission(store: TokenStore) -> None:
    store.reserve(TOKEN, W1)
    store.admit(TOKEN, W1)
    reserved = store.reservation(TOKEN)
    assert reserved is not None and reserved.admitted_at is not None
    assert store.release(TOKEN) is True
    assert store.reservation(TOKEN) is None
    assert store.lapsed_admissions() == []


def test_two_tokens_cannot_admit_the_same_name_or_address_at_once(store: TokenStore) -> None:
    store.add(OTHER, 3600)
    store.reserve(TOKEN, W1)
    store.admit(TOKEN, W1)
    same_name = Holder(W1.name, "192.0.2.99")
    store.reserve(OTHER, same_name)
    with pytest.raises(tokens.JoinRunning, match="another join of node 'worker-1'"):
        store.admit(OTHER, same_name)
    store.consume(TOKEN, W1)
    assert store.admit(OTHER, same_name).admitted_at is not None


def test_an_admission_survives_in_the_file(store: TokenStore, tmp_path: Path,
                                           clock: Clock) -> None:
    store.reserve(TOKEN, W1)
    store.admit(TOKEN, W1)
    reread = TokenStore(store.path, clock).reservation(TOKEN)
    assert reread is not None and reread.admitted_at == clock.now
