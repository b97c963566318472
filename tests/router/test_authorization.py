"""Static role permissions: deny unless a permission allows."""

from wampfabric.router.authorization import RouterRole


def perm(uri, match=None, disclose_caller=False, disclose_publisher=False, **allow):
    p = {"uri": uri, "allow": allow, "disclose": {"caller": disclose_caller, "publisher": disclose_publisher}}
    if match:
        p["match"] = match
    return p


def test_deny_by_default():
    role = RouterRole("r", [])
    for action in ("call", "register", "publish", "subscribe"):
        assert role.authorize("com.x", action) == (False, False)


def test_best_permission_wins_exact_over_prefix_over_wildcard():
    role = RouterRole("r", [
        perm("com.", "prefix", call=True),
        perm("com.secret", "exact"),
        perm("com..open", "wildcard", publish=True),
    ])
    assert role.authorize("com.app.proc", "call") == (True, False)
    assert role.authorize("com.secret", "call") == (False, False)  # exact entry allows nothing
    # prefix "com." beats the wildcard for com.x.open: publish is not allowed by it
    assert role.authorize("com.x.open", "publish") == (False, False)
    assert role.authorize("org.x.open", "publish") == (False, False)


def test_wildcard_permission():
    role = RouterRole("r", [perm("com.open..data", "wildcard", subscribe=True)])
    assert role.authorize("com.open.x.data", "subscribe") == (True, False)
    assert role.authorize("com.open.x.other", "subscribe") == (False, False)
    assert role.authorize("com.open.x.data", "publish") == (False, False)


def test_disclose_flags():
    role = RouterRole("r", [perm("", "prefix", True, True, call=True, publish=True, subscribe=True)])
    assert role.authorize("a.b", "call") == (True, True)
    assert role.authorize("a.b", "publish") == (True, True)
    assert role.authorize("a.b", "subscribe") == (True, False)


def test_legacy_star_means_prefix():
    role = RouterRole("r", [perm("com.example.*", call=True), perm("*", subscribe=True)])
    assert role.authorize("com.example.proc", "call") == (True, False)
    assert role.authorize("com.other", "call") == (False, False)
    assert role.authorize("any.thing", "subscribe") == (True, False)


def test_cache_does_not_change_answers():
    role = RouterRole("r", [perm("com.", "prefix", call=True)])
    for _ in range(3):
        assert role.authorize("com.a", "call") == (True, False)
        assert role.authorize("com.a", "register") == (False, False)
