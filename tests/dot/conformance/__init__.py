"""A minimal Django OAuth Toolkit server for tokensmith's conformance tests (see docs/conformance.md)."""
