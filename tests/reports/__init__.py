"""Tests of opsloop.reports (a package, so that test module names may repeat across folders)."""
