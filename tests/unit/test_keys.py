from __future__ import annotations

import pytest

from flowbus.keys import InvalidApiKey, Scope, new_key, parse_token, verifies


def test_a_token_carries_its_id_and_a_secret_that_only_its_hash_knows():
    key, token = new_key("shop", "deploy", (Scope.ADMIN, Scope.INGEST, Scope.ADMIN))
    key_id, secret = parse_token(token)
    assert token.startswith("fbk_") and key_id == key.id
    assert key.scopes == (Scope.ADMIN, Scope.INGEST)
    assert secret not in key.secret_hash and len(key.secret_hash) == 64
    assert verifies(key, secret) and not verifies(key, "guess")


@pytest.mark.parametrize("token", ["", "fbk_", "fbk_abc", "xyz_abc_def", "Bearer fbk_a_b"])
def test_malformed_tokens_are_refused_with_their_shape_named(token):
    with pytest.raises(InvalidApiKey, match="fbk_<id>_<secret>"):
        parse_token(token)
