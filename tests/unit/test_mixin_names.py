"""Host-call mixins must not shadow each other's helpers (a shadowed helper silently breaks a family)."""

from emulator.glue import ImportCalls


def test_no_mixin_attribute_is_defined_twice():
    seen: dict[str, str] = {}
    for cls in ImportCalls.__mro__[1:]:
        if cls is object:
            continue
        for name in vars(cls):
            if name.startswith("__"):
                continue
            assert name not in seen, f"{name} is defined in both {seen[name]} and {cls.__name__}"
            seen[name] = cls.__name__
