"""UriMap: exact/prefix/wildcard matching and precedence."""

from wampfabric.router.urimap import UriMap


def make(*entries):
    m = UriMap()
    for uri, match in entries:
        m.set(uri, match, (uri, match))
    return m


def test_exact_prefix_wildcard_match_all_order():
    m = make(("com.a.b", "exact"), ("com.a", "prefix"), ("com.", "prefix"), ("com..b", "wildcard"), ("x", "exact"))
    assert m.match_all("com.a.b") == [("com.a.b", "exact"), ("com.a", "prefix"), ("com.", "prefix"), ("com..b", "wildcard")]
    assert m.match_all("com.z.b") == [("com.", "prefix"), ("com..b", "wildcard")]
    assert m.match_all("org.a.b") == []


def test_prefix_is_a_string_prefix():
    # WAMP prefix matching is on the string, not on components
    m = make(("com.myapp", "prefix"))
    assert m.best("com.myapp2.foo") == ("com.myapp", "prefix")
    assert m.best("com.my") is None


def test_best_precedence():
    m = make(("a.b.c", "exact"), ("a.b", "prefix"), ("a", "prefix"), ("a..c", "wildcard"), ("..c", "wildcard"))
    assert m.best("a.b.c") == ("a.b.c", "exact")
    assert m.best("a.bx.c") == ("a.b", "prefix")
    assert m.best("ab.x.c") == ("a", "prefix")
    m2 = make(("a..c", "wildcard"), ("..c", "wildcard"), ("a.b.", "wildcard"))
    assert m2.best("a.x.c") == ("a..c", "wildcard")
    assert m2.best("z.x.c") == ("..c", "wildcard")
    assert m2.best("a.b.c") == ("a.b.", "wildcard")  # leftmost concrete components first


def test_wildcard_component_count_must_match():
    m = make(("a..c", "wildcard"))
    assert m.best("a.b.c") == ("a..c", "wildcard")
    assert m.best("a.b.c.d") is None
    assert m.best("a.c") is None


def test_pop_removes_and_prunes():
    m = make(("a", "prefix"), ("ab", "prefix"), ("a..c", "wildcard"), ("a.b", "exact"))
    assert len(m) == 4
    assert m.pop("ab", "prefix") == ("ab", "prefix")
    assert m.best("abc") == ("a", "prefix")
    assert m.pop("a..c", "wildcard") == ("a..c", "wildcard")
    assert m.best("a.x.c") == ("a", "prefix")
    assert m.pop("a..c", "wildcard") is None
    assert m.pop("a.b") == ("a.b", "exact")
    assert m.pop("a", "prefix") == ("a", "prefix")
    assert len(m) == 0 and m.match_all("a.x.c") == []
    assert list(m.values()) == []


def test_get_returns_pattern_entry_not_match():
    m = make(("a..c", "wildcard"), ("a", "prefix"))
    assert m.get("a..c", "wildcard") == ("a..c", "wildcard")
    assert m.get("a.b.c", "wildcard") is None
    assert m.get("a", "prefix") == ("a", "prefix")
    assert m.get("a", "exact") is None
    assert sorted(m.values()) == [("a", "prefix"), ("a..c", "wildcard")]
