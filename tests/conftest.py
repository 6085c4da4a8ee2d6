"""Example projects under tests/examples are inputs for pytester, never collected themselves."""

collect_ignore = ["examples"]
