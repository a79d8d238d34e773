"""Test and benchmark machinery (not installed): `reliability` drives real daemons for
tests/test_reliability_*.py and benchmarks/. Tests import it as `harness` (pytest puts tests/ on
sys.path); benchmarks/ add tests/ to sys.path themselves."""
