//! Cross-crate end-to-end tests of tokensmith live in `tests/`; this library is empty.
